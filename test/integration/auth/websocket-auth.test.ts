/**
 * The WebSocket ingest route behind real JWT authentication (reliability catalog row 33): the token
 * is checked before the upgrade (header, `bearer.<token>` subprotocol or `?access_token=`), the
 * connection writes as the token's tenant, and it is closed when the token expires.
 */
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WS_SUBPROTOCOL } from '../../../server/receive/ws-envelope.js';
import { TEST_SECRET, nowS, secretKey, signToken } from '../../helpers/auth.js';
import { useTestDatabase } from '../../helpers/db.js';
import { realisticSpans, toReadableSpans, type FixtureSpan } from '../../helpers/otlp-fixtures.js';
import { counterValue, startTestServer, type TestServer } from '../../helpers/server.js';
import { RawWsClient, binaryFrame, wsUrl } from '../../helpers/ws-client.js';

const db = useTestDatabase();
let server: TestServer;

beforeAll(async () => {
  server = await startTestServer(
    db.connectionString,
    {
      auth: { jwtSecret: TEST_SECRET, clockToleranceS: 0 },
      limits: { overrides: { slow: { spansPerS: 10, burstSpans: 10 } } },
    },
    { listen: true },
  );
});
afterAll(async () => {
  await server?.close();
});

const token = (tenant: string, claims: Record<string, unknown> = {}) =>
  signToken({ key: secretKey(), alg: 'HS256', claims: { tenant, ...claims } });
const frameOf = (spans: FixtureSpan[], seq: number) =>
  binaryFrame(seq, ProtobufTraceSerializer.serializeRequest(toReadableSpans({ spans }))!);

async function storedByTenant(traceId: string): Promise<Record<string, number>> {
  const { rows } = await db.query<{ tenant: string; n: number }>(
    'SELECT tenant, count(*)::int AS n FROM spans WHERE trace_id = $1 GROUP BY tenant',
    [Buffer.from(traceId, 'hex')],
  );
  return Object.fromEntries(rows.map((row) => [row.tenant, row.n]));
}

describe('WebSocket authentication', () => {
  it('refuses the upgrade with 401 for a missing, forged or expired token, and 403 without traces:write', async () => {
    const url = wsUrl(server.url);
    await expect(RawWsClient.connect(url)).rejects.toMatchObject({ status: 401 });
    await expect(RawWsClient.connect(url, { protocols: [WS_SUBPROTOCOL, 'bearer.not.a.token'] })).rejects.toMatchObject(
      {
        status: 401,
      },
    );
    const expired = await token('acme', { exp: nowS() - 5 });
    await expect(RawWsClient.connect(url, { headers: { authorization: `Bearer ${expired}` } })).rejects.toMatchObject({
      status: 401,
    });
    const readOnly = await token('acme', { scope: 'traces:read' });
    await expect(RawWsClient.connect(wsUrl(server.url, `?access_token=${readOnly}`))).rejects.toMatchObject({
      status: 403,
    });
    expect(await counterValue(server.metrics, 'tracehouse_websocket_connections')).toBe(0);
  });

  it('takes the token from the Authorization header, a bearer.<token> subprotocol or ?access_token, and writes as its tenant', async () => {
    const spans = realisticSpans(3, { nowMs: Date.now() });
    const traceId = spans[0].traceId;
    const clients = [
      await RawWsClient.connect(wsUrl(server.url), {
        headers: { authorization: `Bearer ${await token('acme')}`, 'x-scope-orgid': 'globex' },
      }),
      await RawWsClient.connect(wsUrl(server.url), { protocols: [WS_SUBPROTOCOL, `bearer.${await token('globex')}`] }),
      await RawWsClient.connect(wsUrl(server.url, `?access_token=${await token('initech')}&tenant=acme`)),
    ];
    try {
      expect(clients[1].socket.protocol).toBe(WS_SUBPROTOCOL); // the token is never echoed back
      for (const [i, client] of clients.entries()) {
        client.send(frameOf(spans.slice(0, i + 1), 1));
        expect(await client.ack(1)).toMatchObject({ status: 200, accepted: i + 1 });
      }
    } finally {
      for (const client of clients) await client.close();
    }
    expect(await storedByTenant(traceId)).toEqual({ acme: 1, globex: 2, initech: 3 });
  });

  it('closes the connection with 1008 when the token expires', async () => {
    const exp = nowS() + 2;
    const client = await RawWsClient.connect(wsUrl(server.url), {
      headers: { authorization: `Bearer ${await token('acme', { exp })}` },
    });
    const spans = realisticSpans(1, { nowMs: Date.now() });
    client.send(frameOf(spans, 1));
    expect(await client.ack(1)).toMatchObject({ status: 200 });
    const closed = await client.waitClosed(5000);
    expect(closed).toEqual({ code: 1008, reason: 'token expired' });
    expect(Date.now()).toBeGreaterThanOrEqual(exp * 1000);
    expect(Date.now()).toBeLessThan(exp * 1000 + 2000); // the timer fires at exp; leeway for a busy machine
  });

  it('applies the tenant’s rate limit to frames: a refused frame gets a 429 ack with retryAfterS', async () => {
    const client = await RawWsClient.connect(wsUrl(server.url), {
      headers: { authorization: `Bearer ${await token('slow')}` },
    });
    try {
      client.send(frameOf(realisticSpans(10, { nowMs: Date.now() }), 1));
      expect(await client.ack(1)).toMatchObject({ status: 200, accepted: 10 });
      client.send(frameOf(realisticSpans(10, { nowMs: Date.now() }), 2));
      const refused = await client.ack(2);
      expect(refused).toMatchObject({ status: 429, code: 'TH_ERR_AUTH_RATE_LIMITED', retryable: true });
      expect(refused.retryAfterS).toBeGreaterThanOrEqual(1);
      expect(refused.retryAfterS).toBeLessThanOrEqual(2);
    } finally {
      await client.close();
    }
  });
});
