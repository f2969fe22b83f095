/**
 * GET /v1/traces/ws against a real PostgreSQL: acks after commit, the same answers as HTTP (partial
 * success, 400, retryable 503), the bad-frame rows of the protocol (oversized → 1009, unreadable
 * sequence id → 1007, reused id → 1008, no subprotocol → 1002), the connection limit (1013),
 * keepalive, the anonymous path and a pre-upgrade refusal (how auth plugs in), and the metrics.
 * Every bad frame is followed by proof that the connection (or the server) keeps serving.
 */
import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { buildApp } from '../../../server/app.js';
import { loadConfig } from '../../../server/config.js';
import { createMetrics } from '../../../server/ops/metrics.js';
import { createStorage } from '../../../server/storage/index.js';
import { useTestDatabase } from '../../helpers/db.js';
import { lockSpans } from '../../helpers/lock-spans.js';
import { buildRequest, realisticSpans, type FixtureSpan } from '../../helpers/otlp-fixtures.js';
import { counterValue, startTestServer, type TestServer } from '../../helpers/server.js';
import { RawWsClient, binaryFrame, textFrame, wsUrl, type CloseInfo } from '../../helpers/ws-client.js';

const db = useTestDatabase();
let server: TestServer;
const MAX_FRAME_BYTES = 256 * 1024;
const MAX_CONNECTIONS = 4;
const PING_INTERVAL_MS = 300;
const open: RawWsClient[] = [];

beforeAll(async () => {
  server = await startTestServer(
    db.connectionString,
    {
      batch: { maxQueueSpans: 200, maxBatchSpans: 200 },
      websocket: { maxFrameBytes: MAX_FRAME_BYTES, maxConnections: MAX_CONNECTIONS, pingIntervalMs: PING_INTERVAL_MS },
    },
    { listen: true },
  );
});
afterEach(async () => {
  await Promise.all(open.splice(0).map((client) => client.close()));
  // The server learns of each close a moment later: wait until the slots are free again.
  await expect.poll(() => counterValue(server.metrics, 'tracehouse_websocket_connections')).toBe(0);
});
afterAll(async () => {
  await server?.close();
});

async function connect(options?: Parameters<typeof RawWsClient.connect>[1]): Promise<RawWsClient> {
  const client = await RawWsClient.connect(wsUrl(server.url), options);
  open.push(client);
  return client;
}

function frameOf(spans: FixtureSpan[], seq: number): Buffer {
  return binaryFrame(seq, buildRequest({ spans }).protobuf);
}

async function storedCount(traceIdHex: string, tenant = 'default'): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    'SELECT count(*)::int AS n FROM spans WHERE trace_id = $1 AND tenant = $2',
    [Buffer.from(traceIdHex, 'hex'), tenant],
  );
  return rows[0].n;
}

/** Proof that a connection still serves: a fresh frame is acked 200 and stored. */
async function expectServes(client: RawWsClient, seq: number): Promise<void> {
  const spans = realisticSpans(3, { nowMs: Date.now() });
  client.send(frameOf(spans, seq));
  expect(await client.ack(seq)).toMatchObject({ seq, status: 200, accepted: 3, rejectedSpans: 0 });
  expect(await storedCount(spans[0].traceId)).toBe(3);
}

const frames = (outcome: string): Promise<number> =>
  counterValue(server.metrics, 'tracehouse_websocket_frames_total', { outcome });

describe('frames and acks', () => {
  it('acks a binary protobuf frame and a text OTLP/JSON frame with 200, storing the spans under the anonymous tenant', async () => {
    const client = await connect();
    expect(client.socket.protocol).toBe('tracehouse.otlp.v1');
    const binary = realisticSpans(16, { nowMs: Date.now() });
    const text = realisticSpans(16, { nowMs: Date.now() });
    client.send(frameOf(binary, 1));
    client.send(textFrame(2, buildRequest({ spans: text }).json));
    expect(await client.ack(1)).toEqual({ seq: 1, status: 200, accepted: 16, rejectedSpans: 0 });
    expect(await client.ack(2)).toEqual({ seq: 2, status: 200, accepted: 16, rejectedSpans: 0 });
    expect(await storedCount(binary[0].traceId, 'default')).toBe(16);
    expect(await storedCount(text[0].traceId, 'default')).toBe(16);
  });

  it('sends the ack only after the commit: none while PostgreSQL blocks the insert, 200 once it commits', async () => {
    const client = await connect();
    const spans = realisticSpans(4, { nowMs: Date.now() });
    const lock = await lockSpans(db);
    try {
      client.send(frameOf(spans, 10));
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(client.ackCounts.has(10)).toBe(false);
    } finally {
      await lock.release();
    }
    expect(await client.ack(10)).toMatchObject({ status: 200, accepted: 4 });
    expect(await storedCount(spans[0].traceId)).toBe(4);
  });

  it('answers a frame that finds the queue full with a retryable 503 ack, and commits it when it is sent again', async () => {
    const client = await connect();
    const first = realisticSpans(200, { nowMs: Date.now() }); // fills MAX_QUEUE_SPANS while the insert waits
    const second = realisticSpans(5, { nowMs: Date.now() });
    const lock = await lockSpans(db);
    try {
      client.send(frameOf(first, 1));
      await new Promise((resolve) => setTimeout(resolve, 100));
      client.send(frameOf(second, 2));
      expect(await client.ack(2)).toEqual({
        seq: 2,
        status: 503,
        code: 'TH_ERR_BATCH_QUEUE_FULL',
        message: expect.stringMatching(/queue is full/),
        retryable: true,
        retryAfterS: 1,
      });
    } finally {
      await lock.release();
    }
    expect(await client.ack(1)).toMatchObject({ status: 200, accepted: 200 });
    client.send(frameOf(second, 2)); // the id is free again once acked
    await client.waitFor(() => client.ackCounts.get(2) === 2, 10_000, 'the second ack of frame 2');
    expect(client.acks.at(-1)).toMatchObject({ seq: 2, status: 200, accepted: 5 });
    expect(await storedCount(second[0].traceId)).toBe(5);
    expect(await frames('refused')).toBeGreaterThanOrEqual(1);
  });
});

describe('bad frames', () => {
  it('answers an undecodable protobuf frame with a 400 ack and keeps serving the connection', async () => {
    const client = await connect();
    const rejectedBefore = await frames('rejected');
    client.send(binaryFrame(1, Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01])));
    expect(await client.ack(1)).toEqual({
      seq: 1,
      status: 400,
      code: 'TH_ERR_DECODE_BAD_PROTOBUF',
      message: expect.any(String),
      retryable: false,
    });
    await expectServes(client, 2);
    expect(await frames('rejected')).toBe(rejectedBefore + 1);
  });

  it('answers an undecodable or poisoned JSON text frame with a 400 ack and keeps serving the connection', async () => {
    const client = await connect();
    client.send(textFrame(1, '{"resourceSpans": ['));
    client.send(textFrame(2, '{"resourceSpans": [], "__proto__": {"polluted": true}}'));
    expect(await client.ack(1)).toMatchObject({ status: 400, code: 'TH_ERR_DECODE_BAD_JSON', retryable: false });
    expect(await client.ack(2)).toMatchObject({ status: 400, code: 'TH_ERR_DECODE_FORBIDDEN_KEY', retryable: false });
    await expectServes(client, 3);
  });

  it('stores the good spans of a frame with bad ids and reports the others as rejectedSpans in a 200 ack', async () => {
    const client = await connect();
    const spans = realisticSpans(6, { nowMs: Date.now(), spansPerTrace: 6 });
    spans[1].spanId = randomBytes(7).toString('hex'); // 7-byte span id
    spans[2].spanId = '0000000000000000'; // all-zero span id
    spans[3].traceId = randomBytes(15).toString('hex'); // 15-byte trace id
    client.send(frameOf(spans, 1));
    const ack = await client.ack(1);
    expect(ack).toMatchObject({ seq: 1, status: 200, accepted: 3, rejectedSpans: 3 });
    expect(ack.errorMessage).toMatch(/invalid_span_id/);
    expect(ack.errorMessage).toMatch(/invalid_trace_id/);
    expect(await storedCount(spans[0].traceId)).toBe(3);
    await expectServes(client, 2);
  });

  it('closes with 1009 on a frame over WS_MAX_FRAME_BYTES; other connections and new ones keep being served', async () => {
    const bystander = await connect();
    const client = await connect();
    const tooLargeBefore = await frames('too_large');
    client.send(binaryFrame(1, randomBytes(MAX_FRAME_BYTES))); // 8 bytes over with the envelope
    expect(await client.waitClosed()).toMatchObject({ code: 1009 });
    expect(client.ackCounts.size).toBe(0);
    expect(await frames('too_large')).toBe(tooLargeBefore + 1);
    await expectServes(bystander, 1);
    await expectServes(await connect(), 1);
    const fits = realisticSpans(1, { nowMs: Date.now() });
    const padded = frameOf(fits, 2);
    expect(padded.length).toBeLessThan(MAX_FRAME_BYTES);
    bystander.send(padded);
    expect(await bystander.ack(2)).toMatchObject({ status: 200 });
  });

  it.each([
    { what: 'a binary frame shorter than its 8-byte id', frame: Buffer.from([0, 0, 0, 1]) },
    { what: 'a text frame without a newline', frame: '{"resourceSpans":[]}' },
    { what: 'a text frame whose id is not decimal', frame: '0x1f\n{"resourceSpans":[]}' },
    { what: 'a text frame with an empty id', frame: '\n{"resourceSpans":[]}' },
    { what: 'a binary frame whose id is above 2^53 - 1', frame: binaryFrame(2n ** 53n, new Uint8Array()) },
  ])('closes with 1007 and a reason on $what, without an ack', async ({ frame }) => {
    const client = await connect();
    client.send(frame);
    const closed: CloseInfo = await client.waitClosed();
    expect(closed.code).toBe(1007);
    expect(closed.reason).toMatch(/sequence id|2\^53/);
    expect(client.acks).toEqual([]);
    await expectServes(await connect(), 1);
  });

  it('closes with 1008 when a sequence id is reused while its frame is still unacknowledged', async () => {
    const client = await connect();
    const spans = realisticSpans(2, { nowMs: Date.now() });
    const lock = await lockSpans(db);
    let closed: CloseInfo;
    try {
      client.send(frameOf(spans, 5));
      client.send(frameOf(realisticSpans(2, { nowMs: Date.now() }), 5));
      closed = await client.waitClosed();
    } finally {
      await lock.release();
    }
    expect(closed).toEqual({ code: 1008, reason: 'sequence id 5 is already unacknowledged' });
    await expect.poll(() => storedCount(spans[0].traceId)).toBe(2); // the first frame still commits; its ack has nowhere to go
  });

  it('closes with 1002 when the client does not offer the tracehouse.otlp.v1 subprotocol', async () => {
    const client = await connect({ protocols: [] });
    expect(await client.waitClosed()).toEqual({ code: 1002, reason: 'subprotocol tracehouse.otlp.v1 is required' });
  });
});

describe('connections', () => {
  it('selects tracehouse.otlp.v1 and never echoes another offered subprotocol, such as a browser token', async () => {
    const client = await connect({ protocols: ['bearer.eyJhbGciOi.e30.c2ln', 'tracehouse.otlp.v1'] });
    expect(client.socket.protocol).toBe('tracehouse.otlp.v1');
    await expectServes(client, 1);
  });

  it('closes with 1013 past WS_MAX_CONNECTIONS and accepts again once a connection closes', async () => {
    const clients = await Promise.all(Array.from({ length: MAX_CONNECTIONS }, () => connect()));
    const extra = await connect();
    expect(await extra.waitClosed()).toEqual({ code: 1013, reason: 'too many WebSocket connections; retry later' });
    expect(await counterValue(server.metrics, 'tracehouse_websocket_connections')).toBe(MAX_CONNECTIONS);
    await clients[0].close();
    await expect.poll(() => counterValue(server.metrics, 'tracehouse_websocket_connections')).toBe(MAX_CONNECTIONS - 1);
    await expectServes(await connect(), 1);
    await expectServes(clients[1], 1);
    expect(await counterValue(server.metrics, 'tracehouse_websocket_closes_total', { code: '1013' })).toBe(1);
  });

  it('terminates a connection that stops answering pings, and keeps one that answers', async () => {
    const silent = new WebSocket(wsUrl(server.url), ['tracehouse.otlp.v1'], { autoPong: false });
    const answering = await connect();
    const silentClosed = new Promise<number>((resolve) => silent.once('close', (code) => resolve(code)));
    silent.on('error', () => undefined);
    const startedAt = Date.now();
    expect(await silentClosed).toBe(1006); // terminated: no close frame
    expect(Date.now() - startedAt).toBeLessThan(PING_INTERVAL_MS * 4);
    await new Promise((resolve) => setTimeout(resolve, PING_INTERVAL_MS * 3));
    expect(answering.socket.readyState).toBe(WebSocket.OPEN);
    await expectServes(answering, 1);
  });

  it('counts frames by outcome and closes by code', async () => {
    expect(await frames('committed')).toBeGreaterThan(10);
    expect(await frames('protocol_error')).toBeGreaterThanOrEqual(6);
    expect(
      await counterValue(server.metrics, 'tracehouse_websocket_closes_total', { code: '1007' }),
    ).toBeGreaterThanOrEqual(5);
    expect(
      await counterValue(server.metrics, 'tracehouse_spans_accepted_total', { transport: 'websocket' }),
    ).toBeGreaterThan(0);
  });
});

describe('authentication before the upgrade', () => {
  it('refuses the upgrade with 401 when an onRequest hook refuses, before any frame is read; uses the tenant it sets; closes with 1008 at token expiry', async () => {
    // How auth plugs in: a root onRequest hook that answers 401, or sets request.tenant and authExpiresAt.
    const config = loadConfig({}, { storage: { databaseUrl: db.connectionString } });
    const log = pino({ level: 'silent' });
    const storage = await createStorage({ ...config.storage, connectionString: db.connectionString }, log);
    const app = await buildApp(config, { storage, metrics: createMetrics(new Registry()), log });
    app.addHook('onRequest', async (request, reply) => {
      if (request.headers.authorization !== 'Bearer tenant-a') return reply.code(401).send({ error: 'unauthorized' });
      request.tenant = 'tenant-a';
      const expiresInMs = Number(request.headers['x-test-expires-in-ms'] ?? NaN);
      if (Number.isFinite(expiresInMs)) request.authExpiresAt = Date.now() + expiresInMs;
    });
    try {
      const url = await app.listen({ host: '127.0.0.1', port: 0 });
      await expect(RawWsClient.connect(wsUrl(url))).rejects.toMatchObject({ status: 401 });
      const client = await RawWsClient.connect(wsUrl(url), { headers: { authorization: 'Bearer tenant-a' } });
      const spans = realisticSpans(2, { nowMs: Date.now() });
      client.send(frameOf(spans, 1));
      expect(await client.ack(1)).toMatchObject({ status: 200, accepted: 2 });
      await client.close();
      expect(await storedCount(spans[0].traceId, 'tenant-a')).toBe(2);
      expect(await storedCount(spans[0].traceId, 'default')).toBe(0);

      const expiring = await RawWsClient.connect(wsUrl(url), {
        headers: { authorization: 'Bearer tenant-a', 'x-test-expires-in-ms': '400' },
      });
      const openedAt = Date.now();
      expiring.send(frameOf(realisticSpans(1, { nowMs: Date.now() }), 1));
      expect(await expiring.ack(1)).toMatchObject({ status: 200 });
      expect(await expiring.waitClosed()).toEqual({ code: 1008, reason: 'token expired' });
      expect(Date.now() - openedAt).toBeGreaterThanOrEqual(350);
    } finally {
      await app.close();
      await storage.stop();
    }
  });
});
