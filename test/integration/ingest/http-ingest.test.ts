/**
 * POST /v1/traces against a real PostgreSQL: status codes, response bodies, idempotency, the
 * trace summary, queue refusals, and the HTTP rows of DESIGN.md's bad-input table.
 */
import { randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { gzipSync } from 'node:zlib';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../helpers/db.js';
import { buildRequest, realisticSpans, type FixtureSpan } from '../../helpers/otlp-fixtures.js';
import { counterValue, startTestServer, type TestServer } from '../../helpers/server.js';

const db = useTestDatabase();
let server: TestServer;
const MAX_BODY_BYTES = 8 * 1024 * 1024;

beforeAll(async () => {
  server = await startTestServer(
    db.connectionString,
    { receive: { maxBodyBytes: MAX_BODY_BYTES }, batch: { maxQueueSpans: 1000, maxBatchSpans: 1000 } },
    { listen: true },
  );
});
afterAll(async () => {
  await server?.close();
});

const nowNs = (): bigint => BigInt(Date.now()) * 1_000_000n;
const hex = (bytes: number): string => randomBytes(bytes).toString('hex');

function post(payload: Buffer | string, headers: Record<string, string>) {
  return server.app.inject({ method: 'POST', url: '/v1/traces', payload, headers });
}

const protobufHeaders = { 'content-type': 'application/x-protobuf' };
const jsonHeaders = { 'content-type': 'application/json' };

async function storedCount(traceIdHex: string): Promise<number> {
  const { rows } = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM spans WHERE trace_id = $1', [
    Buffer.from(traceIdHex, 'hex'),
  ]);
  return rows[0].n;
}

/** A hand-written OTLP/JSON body, for shapes the SDK serializers cannot produce. */
function jsonBody(spans: Array<Record<string, unknown>>, resourceAttributes: unknown[] = []): string {
  return JSON.stringify({
    resourceSpans: [
      {
        resource: { attributes: [{ key: 'service.name', value: { stringValue: 'hand' } }, ...resourceAttributes] },
        scopeSpans: [{ scope: { name: 'hand' }, spans }],
      },
    ],
  });
}

function jsonSpan(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const start = nowNs() - 1_000_000_000n;
  return {
    traceId: hex(16),
    spanId: hex(8),
    name: 'op',
    kind: 2,
    startTimeUnixNano: String(start),
    endTimeUnixNano: String(start + 1000n),
    ...overrides,
  };
}

describe('answers', () => {
  it('stores a protobuf request and answers 200 with an empty ExportTraceServiceResponse', async () => {
    const spans = realisticSpans(40, { nowMs: Date.now() });
    const response = await post(buildRequest({ spans }).protobuf, protobufHeaders);
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toBe('application/x-protobuf');
    expect(ProtobufTraceSerializer.deserializeResponse(response.rawPayload)).toEqual({});
    const traceIds = new Set(spans.map((span) => span.traceId));
    let stored = 0;
    for (const traceId of traceIds) stored += await storedCount(traceId);
    expect(stored).toBe(40);
  });

  it('accepts application/json with a charset parameter and answers in JSON', async () => {
    const span = jsonSpan();
    const response = await post(jsonBody([span]), { 'content-type': 'application/json; charset=utf-8' });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toContain('application/json');
    expect(response.json()).toEqual({});
    expect(await storedCount(span.traceId as string)).toBe(1);
  });

  it('answers an empty request with 200 (OTLP: an empty request is a success)', async () => {
    expect((await post(Buffer.alloc(0), protobufHeaders)).statusCode).toBe(200);
    expect((await post('{}', jsonHeaders)).statusCode).toBe(200);
  });

  it('answers 415 to an unknown Content-Type, listing the supported ones', async () => {
    const response = await post('hello', { 'content-type': 'text/plain' });
    expect(response.statusCode).toBe(415);
    expect(response.json().message).toContain('application/x-protobuf, application/json');
  });

  it('answers 415 to an unknown Content-Encoding, listing the supported ones', async () => {
    const response = await post(Buffer.from('x'), { ...protobufHeaders, 'content-encoding': 'br' });
    expect(response.statusCode).toBe(415);
    expect(response.rawPayload.toString()).toContain('gzip, identity');
  });

  it('answers 400 to undecodable protobuf with a google.rpc.Status, and stores nothing', async () => {
    const response = await post(Buffer.from([0x0a, 0xff, 0xff, 0xff]), protobufHeaders);
    expect(response.statusCode).toBe(400);
    expect(response.headers['retry-after']).toBeUndefined();
    expect(response.rawPayload.toString()).toContain('TH_ERR_DECODE_BAD_PROTOBUF');
  });

  it('answers 400 to invalid JSON and to a body that is not gzip despite Content-Encoding: gzip', async () => {
    expect((await post('{"resourceSpans": [', jsonHeaders)).statusCode).toBe(400);
    const notGzip = await post(Buffer.from('plainly not gzip'), { ...jsonHeaders, 'content-encoding': 'gzip' });
    expect(notGzip.statusCode).toBe(400);
    expect(notGzip.json().message).toContain('TH_ERR_RECEIVE_BAD_GZIP');
  });

  it('answers 400 to __proto__ and constructor keys without polluting any prototype', async () => {
    const polluted = '{"resourceSpans":[],"__proto__":{"polluted":true}}';
    const response = await post(polluted, jsonHeaders);
    expect(response.statusCode).toBe(400);
    expect(response.json().message).toContain('TH_ERR_DECODE_FORBIDDEN_KEY');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect((await post('{"constructor":{"prototype":{"x":1}}}', jsonHeaders)).statusCode).toBe(400);
  });

  it('answers 400 to AnyValue nesting 10,000 deep, quickly and without crashing', async () => {
    const deep = '{"arrayValue":{"values":['.repeat(10_000) + '{"stringValue":"leaf"}' + ']}}'.repeat(10_000);
    const body = jsonBody([{ ...jsonSpan(), attributes: [{ key: 'deep', value: 'DEEP' }] }]).replace('"DEEP"', deep);
    const startedAt = performance.now();
    const response = await post(body, jsonHeaders);
    expect(response.statusCode).toBe(400);
    expect(response.json().message).toContain('TH_ERR_DECODE_TOO_DEEP');
    expect(performance.now() - startedAt).toBeLessThan(1000);
  });
});

describe('body limits', () => {
  it('answers 413 to a body over the limit with Content-Length', async () => {
    const response = await post(Buffer.alloc(MAX_BODY_BYTES + 1), protobufHeaders);
    expect(response.statusCode).toBe(413);
  });

  it('answers 413 to a gzip bomb as soon as the inflated size crosses the limit', async () => {
    const bomb = gzipSync(Buffer.alloc(256 * 1024 * 1024)); // 256 MiB of zeros, ~256 KiB compressed
    const rssBefore = process.memoryUsage().rss;
    const response = await post(bomb, { ...protobufHeaders, 'content-encoding': 'gzip' });
    expect(response.statusCode).toBe(413);
    expect(response.rawPayload.toString()).toContain('TH_ERR_RECEIVE_BODY_TOO_LARGE');
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(MAX_BODY_BYTES + 64 * 1024 * 1024);
  });

  it('answers 413 to a chunked body without Content-Length that grows past the limit', async () => {
    const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const url = new URL(`${server.url}/v1/traces`);
      const req = httpRequest(
        { host: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers: protobufHeaders },
        (res) => {
          let text = '';
          res.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
        },
      );
      req.on('error', reject);
      const chunk = Buffer.alloc(256 * 1024);
      let sent = 0;
      const pump = (): void => {
        while (sent <= MAX_BODY_BYTES + chunk.length) {
          sent += chunk.length;
          if (!req.write(chunk)) {
            req.once('drain', pump);
            return;
          }
        }
        req.end();
      };
      pump();
    });
    expect(status).toBe(413);
    expect(body).toContain('TH_ERR_RECEIVE_BODY_TOO_LARGE');
  });

  it('stores a gzip body whose inflated size is under the limit', async () => {
    const spans = realisticSpans(20, { nowMs: Date.now() });
    const response = await post(gzipSync(buildRequest({ spans }).protobuf), {
      ...protobufHeaders,
      'content-encoding': 'gzip',
    });
    expect(response.statusCode).toBe(200);
    expect(await storedCount(spans[0].traceId)).toBeGreaterThan(0);
  });
});

describe('per-span rejects and sanitizing', () => {
  it('rejects bad ids and out-of-window timestamps per span with partialSuccess, storing the others', async () => {
    const rejectedBefore = await counterValue(server.metrics, 'tracehouse_spans_rejected_total');
    const good = jsonSpan();
    const old = nowNs() - 30n * 86_400_000_000_000n;
    const spans = [
      good,
      jsonSpan({ traceId: '00000000000000000000000000000000' }),
      jsonSpan({ spanId: hex(7) }),
      jsonSpan({ startTimeUnixNano: String(old), endTimeUnixNano: String(old + 1n) }),
      jsonSpan({ startTimeUnixNano: '0', endTimeUnixNano: '1' }),
      jsonSpan({ startTimeUnixNano: '18446744073709551615', endTimeUnixNano: '18446744073709551615' }),
    ];
    const response = await post(jsonBody(spans), jsonHeaders);
    expect(response.statusCode).toBe(200);
    const { partialSuccess } = response.json();
    expect(partialSuccess.rejectedSpans).toBe('5');
    expect(partialSuccess.errorMessage).toMatch(/invalid_trace_id/);
    expect(partialSuccess.errorMessage).toMatch(/invalid_span_id/);
    expect(partialSuccess.errorMessage).toMatch(/start_time_too_old/);
    expect(partialSuccess.errorMessage).toMatch(/start_time_too_new/);
    expect(await storedCount(good.traceId as string)).toBe(1);
    expect(await counterValue(server.metrics, 'tracehouse_spans_rejected_total')).toBe(rejectedBefore + 5);
  });

  it('sanitizes NUL bytes and lone surrogates, counts them, and commits the rest of the batch', async () => {
    const dirty = jsonSpan({
      name: 'nul\u0000name',
      attributes: [{ key: 'k\u0000', value: { stringValue: 'lone \ud800 surrogate' } }],
    });
    const clean = jsonSpan();
    const sanitizedBefore = await counterValue(server.metrics, 'tracehouse_values_sanitized_total');
    const response = await post(jsonBody([dirty, clean]), jsonHeaders);
    expect(response.statusCode).toBe(200);
    const { rows } = await db.query('SELECT span_name AS name, attributes FROM span_view WHERE trace_id = $1', [
      dirty.traceId,
    ]);
    expect(rows[0].name).toBe('nul\ufffdname');
    expect(rows[0].attributes).toEqual({ 'k\ufffd': 'lone \ufffd surrogate' });
    expect(await storedCount(clean.traceId as string)).toBe(1);
    expect(await counterValue(server.metrics, 'tracehouse_values_sanitized_total')).toBeGreaterThanOrEqual(
      sanitizedBefore + 3,
    );
  });

  it('caps 100,000 attributes on one span to the limit and records the rest as dropped', async () => {
    const attributes = Array.from({ length: 100_000 }, (_, i) => ({ key: `a${i}`, value: { intValue: String(i) } }));
    const span = jsonSpan({ attributes });
    const response = await post(jsonBody([span]), jsonHeaders);
    expect(response.statusCode).toBe(200);
    const { rows } = await db.query(
      `SELECT (SELECT count(*) FROM jsonb_object_keys(coalesce(a.attributes || s.attributes, s.attributes)))::int AS kept,
              s.dropped_attributes_count
         FROM spans s LEFT JOIN attribute_sets a USING (tenant, attribute_set_id) WHERE s.trace_id = $1`,
      [Buffer.from(span.traceId as string, 'hex')],
    );
    expect(rows[0]).toEqual({ kept: 128, dropped_attributes_count: 100_000 - 128 });
  });

  it('parses int64 timestamps given as JSON strings exactly, and accepts them as JSON numbers', async () => {
    const start = nowNs() - 123_456_789n;
    const exact = jsonSpan({ startTimeUnixNano: String(start), endTimeUnixNano: String(start + 987n) });
    const asNumber = jsonSpan({ startTimeUnixNano: Number(start), endTimeUnixNano: Number(start) + 4096 });
    expect((await post(jsonBody([exact, asNumber]), jsonHeaders)).statusCode).toBe(200);
    const { rows } = await db.query(
      'SELECT start_time_unix_nano::text AS start, (start_time_unix_nano + duration_ns)::text AS end FROM spans WHERE trace_id = $1',
      [Buffer.from(exact.traceId as string, 'hex')],
    );
    expect(rows).toEqual([{ start: String(start), end: String(start + 987n) }]);
    expect(await storedCount(asNumber.traceId as string)).toBe(1);
  });
});

describe('idempotency and the trace summary', () => {
  it('stores each span once when the same request is sent three times', async () => {
    const spans = realisticSpans(64, { nowMs: Date.now() });
    const body = buildRequest({ spans }).protobuf;
    const duplicatesBefore = await counterValue(server.metrics, 'tracehouse_spans_duplicate_total');
    const writes = async (path: string) => counterValue(server.metrics, 'tracehouse_storage_writes_total', { path });
    const [copyBefore, stagedBefore] = [await writes('copy'), await writes('staged')];
    for (let i = 0; i < 3; i += 1) expect((await post(body, protobufHeaders)).statusCode).toBe(200);
    // The first write goes straight in; the two replays meet stored keys and take the staging table.
    expect([(await writes('copy')) - copyBefore, (await writes('staged')) - stagedBefore]).toEqual([1, 2]);
    const traceIds = [...new Set(spans.map((span) => span.traceId))].map((id) => Buffer.from(id, 'hex'));
    const { rows } = await db.query(
      `SELECT (SELECT count(*) FROM spans WHERE trace_id = ANY($1))::int AS stored,
              (SELECT sum(span_count) FROM traces WHERE trace_id = ANY($1))::int AS summarized`,
      [traceIds],
    );
    expect(rows[0]).toEqual({ stored: 64, summarized: 64 });
    expect(await counterValue(server.metrics, 'tracehouse_spans_duplicate_total')).toBe(duplicatesBefore + 128);
  });

  it('keeps one correct traces row for a trace whose spans arrive over many requests, root last', async () => {
    const traceId = hex(16);
    const rootId = hex(8);
    const base = nowNs() - 5_000_000_000n;
    const children: FixtureSpan[] = Array.from({ length: 12 }, (_, i) => ({
      traceId,
      spanId: hex(8),
      parentSpanId: rootId,
      name: `child ${i}`,
      startTimeUnixNano: base + BigInt(i + 1) * 1000n,
      endTimeUnixNano: base + BigInt(i + 1) * 1000n + 500n,
      status: { code: i % 4 === 0 ? 2 : 0 },
      resource: { attributes: { 'service.name': 'worker' } },
    }));
    const root: FixtureSpan = {
      traceId,
      spanId: rootId,
      name: 'GET /root',
      kind: 2,
      startTimeUnixNano: base,
      endTimeUnixNano: base + 1_000_000n,
      resource: { attributes: { 'service.name': 'frontend' } },
    };
    for (let i = 0; i < children.length; i += 3) {
      expect((await post(buildRequest({ spans: children.slice(i, i + 3) }).protobuf, protobufHeaders)).statusCode).toBe(
        200,
      );
    }
    expect((await post(buildRequest({ spans: [root] }).protobuf, protobufHeaders)).statusCode).toBe(200);
    const { rows } = await db.query(
      `SELECT span_count::int, error_count::int, root_service_name, root_span_name,
              first_start_unix_nano::text AS first, last_end_unix_nano::text AS last
         FROM traces WHERE trace_id = $1`,
      [Buffer.from(traceId, 'hex')],
    );
    expect(rows).toEqual([
      {
        span_count: 13,
        error_count: 3,
        root_service_name: 'frontend',
        root_span_name: 'GET /root',
        first: String(base),
        last: String(base + 1_000_000n),
      },
    ]);
  });
});

describe('admission', () => {
  it('answers 503 with Retry-After while uncommitted spans fill the queue, and commits the admitted request', async () => {
    const locker = db.pool({ max: 1 });
    const client = await locker.connect();
    try {
      await client.query('BEGIN');
      await client.query('LOCK TABLE traces IN EXCLUSIVE MODE'); // blocks every commit of spans
      const first = post(buildRequest({ spans: realisticSpans(600, { nowMs: Date.now() }) }).protobuf, protobufHeaders);
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(server.app.tracehouse.batcher.depth.spans).toBe(600);
      const refused = await post(
        buildRequest({ spans: realisticSpans(600, { nowMs: Date.now() }) }).protobuf,
        protobufHeaders,
      );
      expect(refused.statusCode).toBe(503);
      expect(refused.headers['retry-after']).toBe('1');
      expect(refused.rawPayload.toString()).toContain('TH_ERR_BATCH_QUEUE_FULL');
      await client.query('COMMIT');
      expect((await first).statusCode).toBe(200);
    } finally {
      client.release();
    }
    expect(await counterValue(server.metrics, 'tracehouse_spans_refused_total', { reason: 'queue_full' })).toBe(600);
  });
});

describe('probes and metrics', () => {
  it('serves /health, /ready and /metrics with the accounting identity holding', async () => {
    expect((await server.app.inject('/health')).statusCode).toBe(200);
    const ready = await server.app.inject('/ready');
    expect(ready.statusCode).toBe(200);
    const metrics = await server.app.inject('/metrics');
    expect(metrics.statusCode).toBe(200);
    expect(metrics.body).toContain('tracehouse_spans_received_total');
    expect(metrics.body).toContain('tracehouse_batch_flush_duration_seconds_bucket');
    const received = await counterValue(server.metrics, 'tracehouse_spans_received_total');
    const accepted = await counterValue(server.metrics, 'tracehouse_spans_accepted_total');
    const rejected = await counterValue(server.metrics, 'tracehouse_spans_rejected_total');
    const refused = await counterValue(server.metrics, 'tracehouse_spans_refused_total');
    expect(received).toBeGreaterThan(0);
    expect(received).toBe(accepted + rejected + refused);
  });
});
