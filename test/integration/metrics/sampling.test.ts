/**
 * Server-side sampling end to end: two instances on one database with the same configuration keep
 * and drop the same traces (never half a trace), at the configured rate; kept spans are stored with
 * their weight and counted weighted in red_minute and in traces_spanmetrics_*; sampled-out spans are
 * answered 200 without partial success and counted: received = accepted + sampled out.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../helpers/db.js';
import { buildRequest, createRng, type FixtureSpan } from '../../helpers/otlp-fixtures.js';
import { counterValue, startTestServer, type TestServer } from '../../helpers/server.js';

const RATE = 0.25;
const TRACES = 2000;
const db = useTestDatabase();
let a: TestServer;
let b: TestServer;

function hex(rng: () => number, bytes: number): string {
  let out = '';
  for (let i = 0; i < bytes; i++) {
    out += Math.floor(rng() * 256)
      .toString(16)
      .padStart(2, '0');
  }
  return out.replace(/^00/, '01');
}

/** The specification's rule, computed independently: keep when the lowest 56 bits ≥ (1 − rate) · 2^56. */
const kept = (traceId: string) => BigInt(`0x${traceId.slice(18)}`) >= BigInt((1 - RATE) * 2 ** 56);

const rng = createRng(0x5a3);
const traceIds = Array.from({ length: TRACES }, () => hex(rng, 16));
const nowNs = BigInt(Date.now()) * 1_000_000n;

/** Two spans per trace (a server span and its client child); `salt` makes the span ids differ per instance. */
function spansOf(ids: string[], salt: number, errorEvery = 0): FixtureSpan[] {
  return ids.flatMap((traceId, i) => {
    const root = `${salt.toString(16).padStart(2, '0')}${i.toString(16).padStart(14, '0')}`;
    return [
      { traceId, spanId: root, name: 'GET /', kind: 2, startTimeUnixNano: nowNs, endTimeUnixNano: nowNs + 5_000_000n },
      {
        traceId,
        spanId: `${salt.toString(16).padStart(2, '0')}${(i + 0x100000).toString(16).padStart(14, '0')}`,
        parentSpanId: root,
        name: 'SELECT',
        kind: 3,
        startTimeUnixNano: nowNs + 1000n,
        endTimeUnixNano: nowNs + 2_000_000n,
        status: errorEvery > 0 && i % errorEvery === 0 ? { code: 2 as const } : undefined,
      },
    ];
  });
}

async function post(server: TestServer, spans: FixtureSpan[]): Promise<void> {
  for (let i = 0; i < spans.length; i += 500) {
    const response = await server.app.inject({
      method: 'POST',
      url: '/v1/traces',
      payload: buildRequest({ spans: spans.slice(i, i + 500) }).json,
      headers: { 'content-type': 'application/json' },
    });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({}); // sampled-out spans are not a partial success
  }
}

beforeAll(async () => {
  const overrides = { sampling: { rate: RATE, keepErrors: true } };
  a = await startTestServer(db.connectionString, overrides);
  b = await startTestServer(db.connectionString, overrides);
});

afterAll(async () => {
  await a?.close();
  await b?.close();
});

describe('consistent sampling across instances', () => {
  it('keeps the same traces on both instances, whole, at the configured rate', async () => {
    // The same traces reach both instances, with different span ids (as two halves of a trace would).
    await post(a, spansOf(traceIds, 0xa1));
    await post(b, spansOf(traceIds, 0xb2));
    const { rows } = await db.query<{ trace_id: string; n: number }>(
      "SELECT encode(trace_id, 'hex') AS trace_id, count(*)::int AS n FROM spans GROUP BY 1",
    );
    expect(rows.every((r) => r.n === 4)).toBe(true); // both instances kept both spans of every stored trace
    const stored = new Set(rows.map((r) => r.trace_id));
    expect([...stored].sort()).toEqual(traceIds.filter(kept).sort());
    expect(Math.abs(stored.size / TRACES - RATE) / RATE).toBeLessThan(0.1);
  });

  it('stores kept spans with weight 1 / rate, and counts them weighted in red_minute and /metrics', async () => {
    const weights = await db.query<{ w: number; n: number }>(
      'SELECT sampling_weight AS w, count(*)::int AS n FROM spans GROUP BY 1',
    );
    expect(weights.rows).toEqual([{ w: 1 / RATE, n: expect.any(Number) }]);
    const stored = weights.rows[0].n;
    const red = await db.query<{ calls: number; spans: string }>(
      'SELECT sum(calls) AS calls, sum(spans)::text AS spans FROM red_minute',
    );
    expect(red.rows[0]).toEqual({ calls: stored / RATE, spans: String(stored) });
    const calls =
      (await counterValue(a.metrics, 'traces_spanmetrics_calls_total')) +
      (await counterValue(b.metrics, 'traces_spanmetrics_calls_total'));
    expect(calls).toBe(stored / RATE);
  });

  it('answers 200 for sampled-out spans and counts them: received = accepted + sampled out', async () => {
    for (const server of [a, b]) {
      const received = await counterValue(server.metrics, 'tracehouse_spans_received_total');
      const accepted = await counterValue(server.metrics, 'tracehouse_spans_accepted_total');
      const sampledOut = await counterValue(server.metrics, 'tracehouse_spans_sampled_out_total');
      const rejected = await counterValue(server.metrics, 'tracehouse_spans_rejected_total');
      const refused = await counterValue(server.metrics, 'tracehouse_spans_refused_total');
      expect(received).toBe(TRACES * 2);
      expect(sampledOut).toBeGreaterThan(0);
      expect(accepted + sampledOut + rejected + refused).toBe(received);
    }
  });

  it('keeps error spans of dropped traces, with weight 1', async () => {
    const others = Array.from({ length: 200 }, () => hex(rng, 16)).filter((id) => !kept(id));
    await post(a, spansOf(others, 0xc3, 1)); // every client span has status error
    const { rows } = await db.query<{ name: string; status_code: number; sampling_weight: number }>(
      "SELECT name, status_code, sampling_weight FROM spans WHERE encode(trace_id, 'hex') = ANY($1) GROUP BY 1, 2, 3",
      [others],
    );
    expect(rows).toEqual([{ name: 'SELECT', status_code: 2, sampling_weight: 1 }]);
  });
});
