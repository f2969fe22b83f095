/**
 * Closing the app (what SIGTERM does) with WebSocket frames in flight: connections stop taking new
 * frames (503 shutting-down acks, new connections closed with 1001), frames already admitted are
 * committed and acked, and only then does each socket close with 1001 (going away). Commits are
 * held back with a real PostgreSQL lock, so "in flight" is a fact, not a race. The process-level
 * SIGTERM, with a client reconnecting to the next instance, is in ws-process-faults.test.ts.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../helpers/db.js';
import { lockSpans, type SpansLock } from '../../helpers/lock-spans.js';
import { buildRequest, realisticSpans, type FixtureSpan } from '../../helpers/otlp-fixtures.js';
import { startTestServer, type TestServer } from '../../helpers/server.js';
import { RawWsClient, binaryFrame, wsUrl } from '../../helpers/ws-client.js';

const db = useTestDatabase();
const servers: TestServer[] = [];
const clients: RawWsClient[] = [];
const locks: SpansLock[] = [];

afterAll(async () => {
  await Promise.all(locks.map((lock) => lock.release()));
  await Promise.all(clients.map((client) => client.close()));
  await Promise.all(servers.map((server) => server.close()));
});

async function start(drainTimeoutMs: number): Promise<TestServer> {
  const server = await startTestServer(db.connectionString, { lifecycle: { drainTimeoutMs } }, { listen: true });
  servers.push(server);
  return server;
}

async function connect(server: TestServer): Promise<RawWsClient> {
  const client = await RawWsClient.connect(wsUrl(server.url));
  clients.push(client);
  return client;
}

async function storedCount(spans: FixtureSpan[]): Promise<number> {
  const ids = [...new Set(spans.map((span) => span.traceId))].map((id) => Buffer.from(id, 'hex'));
  const { rows } = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM spans WHERE trace_id = ANY($1)', [
    ids,
  ]);
  return rows[0].n;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('shutdown', () => {
  it('refuses new frames with 503, commits and acks the frames in flight, then closes with 1001', async () => {
    const server = await start(10_000);
    const client = await connect(server);
    const inFlight = [1, 2, 3, 4, 5].map(() => realisticSpans(8, { nowMs: Date.now() }));
    const lock = await lockSpans(db);
    locks.push(lock);
    inFlight.forEach((spans, i) => client.send(binaryFrame(i + 1, buildRequest({ spans }).protobuf)));
    await sleep(200); // admitted; their commit waits for the lock

    const closing = server.close();
    await expect.poll(() => server.app.tracehouse.state.draining).toBe(true);
    const late = realisticSpans(4, { nowMs: Date.now() });
    client.send(binaryFrame(6, buildRequest({ spans: late }).protobuf));
    expect(await client.ack(6)).toEqual({
      seq: 6,
      status: 503,
      code: 'TH_ERR_BATCH_SHUTTING_DOWN',
      message: expect.any(String),
      retryable: true,
      retryAfterS: 1,
    });
    const newcomer = await connect(server);
    expect(await newcomer.waitClosed()).toEqual({ code: 1001, reason: 'server shutting down' });
    await sleep(200);
    expect(client.socket.readyState).toBe(client.socket.OPEN); // still waiting for the commits
    expect([1, 2, 3, 4, 5].filter((seq) => client.ackCounts.has(seq))).toEqual([]);

    await lock.release();
    expect(await client.waitClosed()).toEqual({ code: 1001, reason: 'server shutting down' });
    // Every frame in flight was acked 200, before the close frame arrived.
    for (const seq of [1, 2, 3, 4, 5]) {
      expect(client.acks.filter((ack) => ack.seq === seq)).toEqual([
        { seq, status: 200, accepted: 8, rejectedSpans: 0 },
      ]);
    }
    await closing;
    expect(await storedCount(inFlight.flat())).toBe(40);
    expect(await storedCount(late)).toBe(0);
  });

  it('closes with 1001 at the drain deadline even when a commit never comes; those frames stay unacked for the client to resend', async () => {
    const server = await start(500);
    const client = await connect(server);
    const lock = await lockSpans(db);
    locks.push(lock);
    client.send(binaryFrame(1, buildRequest({ spans: realisticSpans(4, { nowMs: Date.now() }) }).protobuf));
    await sleep(100);
    const startedAt = Date.now();
    const closing = server.close();
    expect(await client.waitClosed()).toEqual({ code: 1001, reason: 'server shutting down' });
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(450);
    expect(client.acks).toEqual([]);
    await lock.release();
    await closing;
  });
});
