/**
 * Search on a seeded data set over several day partitions: every API returns exactly the traces
 * the oracle (seeded-traces.ts) expects — by service, operation, attribute, duration bounds, time
 * range and limit — newest first.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../helpers/db.js';
import { startTestServer, type TestServer } from '../../helpers/server.js';
import { getJson, NS_PER_MS, type Json } from './query-fixtures.js';
import { expectedTraces, ingestSeed, seedTraces, traceDurationNs, type SeedSpan } from './seeded-traces.js';

const db = useTestDatabase();
let server: TestServer;
const nowMs = Date.now();
const nowNs = BigInt(nowMs) * NS_PER_MS;
const traces = seedTraces(nowMs);
const DAY_NS = 86_400_000n * NS_PER_MS;
const ALL = { fromNs: nowNs - 4n * DAY_NS, toNs: nowNs };

beforeAll(async () => {
  server = await startTestServer(db.connectionString);
  await ingestSeed(server.app, traces);
});
afterAll(async () => {
  await server?.close();
});

const micros = (ns: bigint) => (ns / 1000n).toString();
const seconds = (ns: bigint) => (ns / 1_000_000_000n).toString();
const rfc3339 = (ns: bigint) => new Date(Number(ns / NS_PER_MS)).toISOString();

async function jaegerV1(params: Record<string, string>): Promise<string[]> {
  const { status, body } = await getJson(server.app, `/api/traces?${new URLSearchParams(params)}`);
  expect(status, JSON.stringify(body)).toBe(200);
  return body.data.map((t: Json) => t.traceID);
}

async function tempo(params: Record<string, string>): Promise<string[]> {
  const { status, body } = await getJson(server.app, `/api/search?${new URLSearchParams(params)}`);
  expect(status, JSON.stringify(body)).toBe(200);
  return body.traces.map((t: Json) => t.traceID);
}

async function jaegerV3(params: Record<string, string>): Promise<string[]> {
  const response = await server.app.inject({ method: 'GET', url: `/api/v3/traces?${new URLSearchParams(params)}` });
  if (response.statusCode === 404) return [];
  expect(response.statusCode, response.body).toBe(200);
  const ids: string[] = [];
  for (const rs of response.json().result.resourceSpans) {
    for (const ss of rs.scopeSpans) for (const s of ss.spans) if (!ids.includes(s.traceId)) ids.push(s.traceId);
  }
  return ids;
}

const sortIds = (ids: string[]) => [...ids].sort();

describe('the seeded data set', () => {
  it('spans at least four day partitions', async () => {
    const { rows } = await db.query<{ n: number }>(
      "SELECT count(DISTINCT tableoid)::int AS n FROM spans WHERE tenant = 'default'",
    );
    expect(rows[0].n).toBeGreaterThanOrEqual(4);
  });
});

describe('Jaeger v1 search', () => {
  const window = { start: micros(ALL.fromNs), end: micros(ALL.toNs) };

  it('by service returns every trace with a span of that service, newest first', async () => {
    const expected = expectedTraces(traces, { ...ALL, match: (s) => s.service === 'orders' });
    expect(expected.length).toBeGreaterThan(20);
    expect(await jaegerV1({ service: 'orders', ...window, limit: '100' })).toEqual(expected);
  });

  it('by service and operation', async () => {
    const match = (s: SeedSpan) => s.service === 'orders' && s.name === 'create order';
    const expected = expectedTraces(traces, { ...ALL, match });
    expect(expected.length).toBeGreaterThan(3);
    expect(await jaegerV1({ service: 'orders', operation: 'create order', ...window, limit: '100' })).toEqual(expected);
  });

  it('by a tag given as JSON, matching an int attribute by its text, and error=true', async () => {
    const match = (s: SeedSpan) => s.service === 'frontend' && s.attributes['http.response.status_code'] === 500;
    const expected = expectedTraces(traces, { ...ALL, match });
    expect(expected.length).toBeGreaterThan(1);
    const tags = JSON.stringify({ 'http.response.status_code': '500' });
    expect(await jaegerV1({ service: 'frontend', tags, ...window, limit: '100' })).toEqual(expected);
    expect(await jaegerV1({ service: 'frontend', tags: '{"error":"true"}', ...window, limit: '100' })).toEqual(
      expected,
    );
    expect(await jaegerV1({ service: 'frontend', tag: 'http.response.status_code:500', ...window })).toEqual(expected);
  });

  it('by span duration bounds', async () => {
    const match = (s: SeedSpan) =>
      s.service === 'payments' && s.durationNs >= 100n * NS_PER_MS && s.durationNs <= 250n * NS_PER_MS;
    const expected = expectedTraces(traces, { ...ALL, match });
    expect(expected.length).toBeGreaterThan(2);
    const params = { service: 'payments', minDuration: '100ms', maxDuration: '0.25s', ...window, limit: '100' };
    expect(await jaegerV1(params)).toEqual(expected);
  });

  it('by time range: only traces with a matching span inside it (one day partition)', async () => {
    const range = { fromNs: nowNs - 2n * DAY_NS, toNs: nowNs - DAY_NS };
    const expected = expectedTraces(traces, { ...range, match: (s) => s.service === 'frontend' });
    expect(expected.length).toBeGreaterThan(2);
    const params = { service: 'frontend', start: micros(range.fromNs), end: micros(range.toNs), limit: '100' };
    expect(await jaegerV1(params)).toEqual(expected);
    // Grafana sends milliseconds; read by magnitude.
    const ms = { start: (range.fromNs / NS_PER_MS).toString(), end: (range.toNs / NS_PER_MS).toString() };
    expect(await jaegerV1({ service: 'frontend', ...ms, limit: '100' })).toEqual(expected);
  });

  it('honours the limit, keeping the newest', async () => {
    const expected = expectedTraces(traces, { ...ALL, match: (s) => s.service === 'frontend', limit: 3 });
    expect(await jaegerV1({ service: 'frontend', ...window, limit: '3' })).toEqual(expected);
  });

  it('defaults to the last hour without start and end', async () => {
    const lastHour = { fromNs: nowNs - 3_600_000n * NS_PER_MS, toNs: nowNs + 60_000n * NS_PER_MS };
    const expected = expectedTraces(traces, { ...lastHour, match: (s) => s.service === SERVICES_IN_LAST_HOUR[0] });
    expect(expected.length).toBeGreaterThan(0);
    expect(await jaegerV1({ service: SERVICES_IN_LAST_HOUR[0] })).toEqual(expected);
  });

  it('returns nothing for an unknown service or a tag no span has', async () => {
    expect(await jaegerV1({ service: 'nope', ...window })).toEqual([]);
    expect(await jaegerV1({ service: 'orders', tags: '{"http.route":"/nowhere"}', ...window })).toEqual([]);
  });
});

/** The newest trace's root service: the last hour holds at least that trace. */
const SERVICES_IN_LAST_HOUR = [traces[0][0].service];

describe('Jaeger api_v3 search', () => {
  it('by service, operation, attributes and durations in an RFC 3339 window', async () => {
    const match = (s: SeedSpan) => s.service === 'orders' && s.durationNs >= 20n * NS_PER_MS;
    const expected = expectedTraces(traces, { ...ALL, match });
    const params = {
      'query.service_name': 'orders',
      'query.duration_min': '20ms',
      'query.start_time_min': rfc3339(ALL.fromNs),
      'query.start_time_max': rfc3339(ALL.toNs),
      'query.num_traces': '100',
    };
    expect(sortIds(await jaegerV3(params))).toEqual(sortIds(expected));
    const camel = {
      'query.serviceName': 'orders',
      'query.operationName': 'create order',
      'query.attributes': JSON.stringify({ 'db.system': 'redis' }),
      'query.startTimeMin': rfc3339(ALL.fromNs),
      'query.startTimeMax': rfc3339(ALL.toNs),
      'query.searchDepth': '100',
    };
    const expectedCamel = expectedTraces(traces, {
      ...ALL,
      match: (s) => s.service === 'orders' && s.name === 'create order' && s.attributes['db.system'] === 'redis',
    });
    expect(expectedCamel.length).toBeGreaterThan(0);
    expect(sortIds(await jaegerV3(camel))).toEqual(sortIds(expectedCamel));
  });

  it('answers 404 {"error":…} when nothing matches, as Jaeger does', async () => {
    const response = await server.app.inject({
      method: 'GET',
      url: `/api/v3/traces?query.service_name=nope&query.start_time_min=${rfc3339(ALL.fromNs)}&query.start_time_max=${rfc3339(ALL.toNs)}`,
    });
    expect(response.statusCode).toBe(404);
    expect(response.json()).toEqual({ error: { httpCode: 404, message: 'No traces found' } });
  });
});

describe('Tempo search', () => {
  const window = { start: seconds(ALL.fromNs), end: seconds(ALL.toNs + 1_000_000_000n), limit: '100' };

  const cases: Array<{ q: string; match: (s: SeedSpan) => boolean; trace?: (spans: SeedSpan[]) => boolean }> = [
    {
      q: '{ resource.service.name = "payments" && duration > 50ms }',
      match: (s) => s.service === 'payments' && s.durationNs > 50n * NS_PER_MS,
    },
    {
      q: '{ span.http.response.status_code >= 500 }',
      match: (s) => Number(s.attributes['http.response.status_code']) >= 500,
    },
    { q: '{ name =~ "GET .*" && kind = server }', match: (s) => s.name.startsWith('GET ') && s.kind === 2 },
    {
      q: '{ name !~ "GET .*" && kind = server && resource.service.name = "frontend" }',
      match: (s) => !s.name.startsWith('GET ') && s.kind === 2 && s.service === 'frontend',
    },
    { q: '{ status = error }', match: (s) => s.status === 2 },
    {
      q: '{ .db.system = "postgresql" && resource.service.name != "orders" }',
      match: (s) => s.attributes['db.system'] === 'postgresql' && s.service !== 'orders',
    },
    {
      q: '{ span.peer.service =~ "pay.*" }',
      match: (s) => String(s.attributes['peer.service'] ?? '').startsWith('pay'),
    },
    {
      q: '{ resource.deployment.environment = "test" && span.http.route = "/cart" }',
      match: (s) => s.attributes['http.route'] === '/cart',
    },
    { q: '{}', match: () => true },
    {
      q: '{ resource.service.name = "orders" && traceDuration >= 200ms }',
      match: (s) => s.service === 'orders',
      trace: (spans) => traceDurationNs(spans) >= 200n * NS_PER_MS,
    },
    { q: '{ rootServiceName = "payments" }', match: () => true, trace: (spans) => spans[0].service === 'payments' },
  ];

  it.each(cases)('$q returns exactly the expected traces, newest first', async ({ q, match, trace }) => {
    const expected = expectedTraces(traces, { ...ALL, match, trace });
    expect(await tempo({ q, ...window })).toEqual(expected);
  });

  it('legacy tags and trace-duration bounds', async () => {
    const expected = expectedTraces(traces, {
      ...ALL,
      match: (s) => s.service === 'frontend' && s.attributes['http.route'] === '/home',
      trace: (spans) => traceDurationNs(spans) >= 100n * NS_PER_MS && traceDurationNs(spans) <= 300n * NS_PER_MS,
    });
    expect(expected.length).toBeGreaterThan(0);
    const params = {
      tags: 'service.name=frontend http.route="/home"',
      minDuration: '100ms',
      maxDuration: '300ms',
      ...window,
    };
    expect(await tempo(params)).toEqual(expected);
  });

  it('a time range and a limit', async () => {
    const range = { fromNs: nowNs - 3n * DAY_NS, toNs: nowNs - DAY_NS };
    const expected = expectedTraces(traces, { ...range, match: (s) => s.service === 'orders', limit: 5 });
    const params = {
      q: '{ resource.service.name = "orders" }',
      start: seconds(range.fromNs),
      end: seconds(range.toNs),
      limit: '5',
    };
    // Tempo's start / end are whole seconds: the oracle's range is widened to them.
    const widened = expectedTraces(traces, {
      fromNs: (range.fromNs / 1_000_000_000n) * 1_000_000_000n,
      toNs: (range.toNs / 1_000_000_000n) * 1_000_000_000n,
      match: (s) => s.service === 'orders',
      limit: 5,
    });
    expect(widened).toEqual(expected);
    expect(await tempo(params)).toEqual(expected);
  });
});

describe('catalog, tags and dependencies', () => {
  it('dependencies count parent → child calls between services in the window', async () => {
    const counts = new Map<string, number>();
    for (const spans of traces) {
      for (const span of spans) {
        const parent = spans.find((p) => p.spanId === span.parentSpanId);
        if (parent && parent.service !== span.service) {
          const key = `${parent.service}>${span.service}`;
          counts.set(key, (counts.get(key) ?? 0) + 1);
        }
      }
    }
    const expected = [...counts]
      .map(([key, callCount]) => ({ parent: key.split('>')[0], child: key.split('>')[1], callCount }))
      .sort((a, b) => `${a.parent}>${a.child}`.localeCompare(`${b.parent}>${b.child}`));
    const { body } = await getJson(server.app, `/api/dependencies?endTs=${nowMs + 60_000}&lookback=${5 * 86_400_000}`);
    expect(body.data).toEqual(expected);
  });

  it('tag names and values for the search builder', async () => {
    const window = `start=${seconds(ALL.fromNs)}&end=${seconds(ALL.toNs + 1_000_000_000n)}`;
    const v1 = await getJson(server.app, `/api/search/tags?${window}`);
    expect(v1.body.tagNames).toEqual(
      expect.arrayContaining(['http.route', 'db.system', 'peer.service', 'service.name', 'deployment.environment']),
    );
    const v2 = await getJson(server.app, `/api/v2/search/tags?${window}`);
    const scopes = Object.fromEntries(v2.body.scopes.map((s: Json) => [s.name, s.tags]));
    expect(scopes.span).toEqual(expect.arrayContaining(['http.route', 'http.response.status_code', 'db.system']));
    expect(scopes.resource).toEqual(['deployment.environment', 'service.name']);
    expect(scopes.intrinsic).toEqual(expect.arrayContaining(['name', 'status', 'duration', 'kind']));

    const services = await getJson(server.app, `/api/v2/search/tag/resource.service.name/values?${window}`);
    expect(services.body.tagValues).toEqual(SERVICE_VALUES);
    const routes = await getJson(server.app, `/api/v2/search/tag/span.http.route/values?${window}`);
    expect(sortValues(routes.body.tagValues)).toEqual(
      ['/cart', '/checkout', '/home'].map((value) => ({ type: 'string', value })),
    );
    const codes = await getJson(server.app, `/api/v2/search/tag/span.http.response.status_code/values?${window}`);
    expect(sortValues(codes.body.tagValues)).toEqual([
      { type: 'int', value: '200' },
      { type: 'int', value: '500' },
    ]);
    const status = await getJson(server.app, `/api/v2/search/tag/status/values?${window}`);
    expect(status.body.tagValues).toContainEqual({ type: 'keyword', value: 'error' });
    const q = encodeURIComponent('{ resource.service.name = "orders" }');
    const names = await getJson(server.app, `/api/v2/search/tag/name/values?q=${q}&${window}`);
    expect(names.body.tagValues.map((v: Json) => v.value)).toEqual(
      [
        ...new Set(
          traces
            .flat()
            .filter((s) => s.service === 'orders')
            .map((s) => s.name),
        ),
      ].sort(),
    );
    const dbValues = await getJson(server.app, `/api/search/tag/db.system/values?${window}`);
    expect(dbValues.body.tagValues).toEqual(['postgresql', 'redis']);
  });
});

const SERVICE_VALUES = ['frontend', 'orders', 'payments'].map((value) => ({ type: 'string', value }));
const sortValues = (values: Json[]) => [...values].sort((a, b) => String(a.value).localeCompare(String(b.value)));
