/**
 * Every trace-by-id path answers 404 for an unknown trace (in its API's error shape), and every
 * malformed parameter is a 400 that says what was wrong.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../helpers/db.js';
import { realisticSpans } from '../../helpers/otlp-fixtures.js';
import { startTestServer, type TestServer } from '../../helpers/server.js';
import { getJson, ingest } from './query-fixtures.js';

const db = useTestDatabase();
let server: TestServer;

beforeAll(async () => {
  server = await startTestServer(db.connectionString);
});
afterAll(async () => {
  await server?.close();
});

const PROTOBUF = { accept: 'application/protobuf' };

const unknownId = () => randomBytes(16).toString('hex');

describe('an unknown trace id', () => {
  it('is 404 on Jaeger v1 /api/traces/{id}, in Jaeger’s error shape', async () => {
    const { status, body } = await getJson(server.app, `/api/traces/${unknownId()}`);
    expect(status).toBe(404);
    expect(body).toEqual({
      data: null,
      total: 0,
      limit: 0,
      offset: 0,
      errors: [{ code: 404, msg: 'trace not found' }],
    });
  });

  it('is 404 on /api/traces/{id} with Accept: application/protobuf (Tempo)', async () => {
    const { status } = await getJson(server.app, `/api/traces/${unknownId()}`, PROTOBUF);
    expect(status).toBe(404);
  });

  it('is 404 on Jaeger api_v3 /api/v3/traces/{id}, in the grpc-gateway error shape', async () => {
    const { status, body } = await getJson(server.app, `/api/v3/traces/${unknownId()}`);
    expect(status).toBe(404);
    expect(body).toEqual({ error: { httpCode: 404, message: 'trace not found' } });
  });

  it('is 404 on Tempo /api/v2/traces/{id}, protobuf and JSON', async () => {
    expect((await getJson(server.app, `/api/v2/traces/${unknownId()}`, PROTOBUF)).status).toBe(404);
    expect((await getJson(server.app, `/api/v2/traces/${unknownId()}`)).status).toBe(404);
  });

  it('is 404 when the summary outlived its spans (partition dropped by retention)', async () => {
    const spans = realisticSpans(4, { nowMs: Date.now(), spansPerTrace: 4 });
    await ingest(server.app, spans);
    const id = spans[0].traceId;
    expect((await getJson(server.app, `/api/v3/traces/${id}`)).status).toBe(200);
    await db.query('DELETE FROM spans WHERE trace_id = $1', [Buffer.from(id, 'hex')]);
    for (const url of [`/api/traces/${id}`, `/api/v3/traces/${id}`, `/api/v2/traces/${id}`]) {
      expect((await getJson(server.app, url)).status, url).toBe(404);
    }
  });

  it('is skipped, not an error, in Jaeger’s /api/traces?traceID= list', async () => {
    const { status, body } = await getJson(server.app, `/api/traces?traceID=${unknownId()}`);
    expect(status).toBe(200);
    expect(body.data).toEqual([]);
  });

  it('accepts ids shorter than 32 hex digits (left-padded, as Tempo prints them)', async () => {
    const spans = realisticSpans(2, { nowMs: Date.now(), spansPerTrace: 2 });
    spans.forEach((s) => (s.traceId = `0000${s.traceId.slice(4)}`));
    await ingest(server.app, spans);
    const short = spans[0].traceId.replace(/^0+/, '');
    const { status, body } = await getJson(server.app, `/api/v3/traces/${short}`);
    expect(status).toBe(200);
    expect(body.result.resourceSpans[0].scopeSpans[0].spans[0].traceId).toBe(spans[0].traceId);
  });
});

describe('malformed parameters are 400 with a reason', () => {
  const cases: Array<{ url: string; message: RegExp; headers?: Record<string, string> }> = [
    { url: '/api/traces/not-hex', message: /trace id must be 1 to 32 hexadecimal digits/ },
    { url: `/api/traces/${'a'.repeat(33)}`, message: /trace id/ },
    { url: '/api/v3/traces/xyz', message: /trace id/ },
    { url: '/api/v2/traces/xyz', message: /trace id/ },
    { url: `/api/v3/traces/${'ab'.repeat(16)}?start_time=yesterday`, message: /RFC 3339/ },
    { url: '/api/traces', message: /parameter 'service' is required/ },
    { url: '/api/traces?service=a&minDuration=fast', message: /minDuration must be a duration/ },
    {
      url: '/api/traces?service=a&minDuration=2s&maxDuration=1s',
      message: /'maxDuration' should be greater than 'minDuration'/,
    },
    { url: '/api/traces?service=a&start=soon', message: /start must be a unix timestamp/ },
    { url: '/api/traces?service=a&tags=[1]', message: /tags must be a JSON object/ },
    { url: '/api/traces?service=a&tag=novalue', message: /expecting key:value/ },
    { url: '/api/traces?service=a&limit=-1', message: /limit must be a positive integer/ },
    { url: '/api/operations?service=a&spanKind=sideways', message: /spanKind must be one of/ },
    { url: `/api/search?q=${encodeURIComponent('{ a = 1 }')}`, message: /unknown field 'a'.*span\.a/ },
    { url: `/api/search?q=${encodeURIComponent('{ name = "a" || name = "b" }')}`, message: /\|\| is not supported/ },
    { url: `/api/search?q=${encodeURIComponent('{ name = "a" } | count() > 1')}`, message: /only one spanset/ },
    {
      url: `/api/search?q=${encodeURIComponent('{ status = broken }')}`,
      message: /status takes one of unset, ok, error/,
    },
    { url: `/api/search?q=${encodeURIComponent('{ span.x =~ "(" }')}`, message: /invalid regular expression/ },
    { url: `/api/search?q=${encodeURIComponent('{ duration > "slow" }')}`, message: /durations take a value/ },
    { url: '/api/search?tags=a', message: /logfmt/ },
    { url: `/api/search?q=%7B%7D&tags=${encodeURIComponent('a=b')}`, message: /either q .* or tags/ },
    { url: '/api/search?start=200&end=100', message: /start of the time range is after its end/ },
    { url: '/api/dependencies?lookback=forever', message: /lookback must be a duration/ },
  ];

  it.each(cases)('$url', async ({ url, message, headers }) => {
    const response = await server.app.inject({ method: 'GET', url, headers });
    expect(response.statusCode, response.body).toBe(400);
    expect(response.body).toMatch(message);
  });
});
