/**
 * Query benchmark (issue #5): latency of trace-by-id on the three APIs and of a search, on at
 * least 5 million spans over 7 daily partitions, while ingest runs at half its sustained maximum.
 *
 *   npm run bench:query -- [--spans 5000000] [--samples 300] [--keep] [--log-slow-ms 100]
 *
 * 1. Creates th_bench_query_<pid> on BENCH_DATABASE_URL (else TEST_DATABASE_URL, else the local
 *    default), migrates it and seeds it in SQL (INSERT … SELECT over generate_series, two sessions
 *    at once): 10-span traces one every ~1.1 s from midnight UTC six days ago until two minutes ago,
 *    8 services, realistic attributes; the traces summaries, the operations catalog and the
 *    resources are written by the same statements, as the writer does (load/query-seed.ts).
 * 2. Starts the real server (`tracehouse serve`, a child process) on that database.
 * 3. Measures the sustained ingest maximum: 8 loops posting 512-span OTLP protobuf requests
 *    (pre-encoded, so the client costs little CPU) for --max-seconds; spans acknowledged per second.
 * 4. Runs ingest at half that rate (open loop) and, once it has run --warmup-seconds (75 by default:
 *    longer than the server's one-minute planner-statistics refresh, so the measurement sees a
 *    server in its steady state rather than the first minute of a burst), measures the
 *    queries one at a time, round-robin, --samples each: trace by id on Jaeger v1 (JSON), Jaeger
 *    api_v3 (OTLP/JSON) and Tempo v2 (protobuf) for random seeded traces of all seven days, and the
 *    search "service + one attribute + minimum duration over the last hour" on Jaeger v1 and Tempo,
 *    once matching and once matching nothing. The ingest spans go to the same services.
 * 5. Prints a table (ms) and drops the database (--keep leaves it).
 * --log-slow-ms N sets log_min_duration_statement on the benchmark database only, so the statements
 * behind a slow tail appear in the PostgreSQL server log.
 */
import { parseArgs } from 'node:util';
import pg from 'pg';
import { migrate } from '../server/storage/migrate.js';
import { ensureDistBuilt } from '../test/helpers/build-dist.js';
import { spawnTracehouse, type TracehouseProcess } from '../test/helpers/tracehouse-process.js';
import { IngestLoad, SPANS_PER_REQUEST } from './ingest-load.js';
import { SERVICES, seedSpans } from './load/query-seed.js';

const { values: args } = parseArgs({
  options: {
    spans: { type: 'string', default: '5000000' },
    samples: { type: 'string', default: '300' },
    'max-seconds': { type: 'string', default: '20' },
    'warmup-seconds': { type: 'string', default: '75' },
    keep: { type: 'boolean', default: false },
    'log-slow-ms': { type: 'string' },
  },
});
const SPANS = Number(args.spans);
const SAMPLES = Number(args.samples);
const MAX_SECONDS = Number(args['max-seconds']);
const WARMUP_SECONDS = Number(args['warmup-seconds']);
const SEARCH_SERVICE = 'svc-3';
const SEARCH_ROUTE = '/api/cart';

const adminUrl =
  process.env.BENCH_DATABASE_URL || process.env.TEST_DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/postgres';
const database = `th_bench_query_${process.pid}`;
const databaseUrl = (() => {
  const url = new URL(adminUrl);
  url.pathname = `/${database}`;
  return url.toString();
})();

async function adminQuery(text: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(text);
  } finally {
    await client.end();
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// ---- queries ----------------------------------------------------------------------------------

interface Scenario {
  name: string;
  target: number;
  request: (i: number) => { url: string; headers?: Record<string, string> };
  check: (status: number, body: Buffer) => boolean;
  latencies: number[];
  errors: number;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

async function timed(base: string, request: { url: string; headers?: Record<string, string> }) {
  const started = performance.now();
  const response = await fetch(base + request.url, { headers: request.headers });
  const body = Buffer.from(await response.arrayBuffer());
  return { ms: performance.now() - started, status: response.status, body };
}

function scenarios(traceIds: string[]): Scenario[] {
  const id = (i: number) => traceIds[i % traceIds.length];
  const jaegerSearch = (route: string) =>
    `/api/traces?service=${SEARCH_SERVICE}&tags=${encodeURIComponent(JSON.stringify({ 'http.route': route }))}` +
    '&minDuration=100ms&limit=20';
  const tempoSearch = (route: string) =>
    `/api/search?limit=20&q=${encodeURIComponent(
      `{ resource.service.name = "${SEARCH_SERVICE}" && span.http.route = "${route}" && duration >= 100ms }`,
    )}`;
  const json = (status: number, body: Buffer, has: (v: Record<string, unknown[]>) => boolean) =>
    status === 200 && has(JSON.parse(body.toString()));
  const scenario = (
    name: string,
    target: number,
    request: Scenario['request'],
    check: Scenario['check'],
  ): Scenario => ({
    name,
    target,
    request,
    check,
    latencies: [],
    errors: 0,
  });
  return [
    scenario(
      'trace by id: Jaeger v1 /api/traces/{id}',
      50,
      (i) => ({ url: `/api/traces/${id(i)}` }),
      (s, b) => json(s, b, (v) => v.data.length === 1),
    ),
    scenario(
      'trace by id: Jaeger v3 /api/v3/traces/{id}',
      50,
      (i) => ({ url: `/api/v3/traces/${id(i + 7)}` }),
      (s) => s === 200,
    ),
    scenario(
      'trace by id: Tempo /api/v2/traces/{id} protobuf',
      50,
      (i) => ({ url: `/api/v2/traces/${id(i + 13)}`, headers: { accept: 'application/protobuf' } }),
      (s, b) => s === 200 && b.length > 0,
    ),
    scenario(
      'search: Jaeger v1, matching',
      300,
      () => ({ url: jaegerSearch(SEARCH_ROUTE) }),
      (s, b) => json(s, b, (v) => v.data.length > 0),
    ),
    scenario(
      'search: Jaeger v1, matching nothing',
      300,
      () => ({ url: jaegerSearch('/api/none') }),
      (s, b) => json(s, b, (v) => v.data.length === 0),
    ),
    scenario(
      'search: Tempo TraceQL, matching',
      300,
      () => ({ url: tempoSearch(SEARCH_ROUTE) }),
      (s, b) => json(s, b, (v) => v.traces.length > 0),
    ),
    scenario(
      'search: Tempo TraceQL, matching nothing',
      300,
      () => ({ url: tempoSearch('/api/none') }),
      (s, b) => json(s, b, (v) => v.traces.length === 0),
    ),
  ];
}

// ---- server-side latency --------------------------------------------------------------------

/** The query routes, and the latency bound (s, a histogram bucket) their share is reported for. */
const SERVER_ROUTES: Array<[string, number]> = [
  ['/api/traces/:traceId', 0.05],
  ['/api/v3/traces/:traceId', 0.05],
  ['/api/v2/traces/:traceId', 0.05],
  ['/api/traces', 0.25],
  ['/api/search', 0.25],
];

type Buckets = Map<number, number>;

/** Cumulative bucket counts of GET 200 answers per route, from /metrics. */
async function routeHistograms(base: string): Promise<Map<string, Buckets>> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const out = new Map<string, Buckets>();
  const line = /^tracehouse_http_request_duration_seconds_bucket\{([^}]*)\} (\d+)/gm;
  for (const m of text.matchAll(line)) {
    const labels = Object.fromEntries([...m[1].matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1], l[2]]));
    if (labels.method !== 'GET' || labels.status_code !== '200') continue;
    const buckets = out.get(labels.route) ?? new Map<number, number>();
    buckets.set(labels.le === '+Inf' ? Infinity : Number(labels.le), Number(m[2]));
    out.set(labels.route, buckets);
  }
  return out;
}

function shareWithin(before: Buckets | undefined, after: Buckets | undefined, bound: number): string {
  if (after === undefined) return 'no requests';
  const count = (b: Buckets | undefined, le: number) => b?.get(le) ?? 0;
  const total = count(after, Infinity) - count(before, Infinity);
  const within = count(after, bound) - count(before, bound);
  return `${((100 * within) / total).toFixed(1)} % of ${total} within ${bound * 1000} ms`;
}

// ---- main -------------------------------------------------------------------------------------

async function main(): Promise<void> {
  console.log(`creating ${database}`);
  await adminQuery(`CREATE DATABASE ${database} TEMPLATE template0 ENCODING 'UTF8'`);
  let server: TracehouseProcess | undefined;
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 3 });
  try {
    await migrate(pool);
    const seeded = await seedSpans(pool, SPANS);
    if (args['log-slow-ms'] !== undefined) {
      await pool.query(`ALTER DATABASE ${database} SET log_min_duration_statement = ${Number(args['log-slow-ms'])}`);
    }
    const size = await pool.query<{ spans: string; bytes: string }>(
      'SELECT count(*)::text AS spans, pg_size_pretty(pg_database_size(current_database())) AS bytes FROM spans',
    );
    console.log(
      `seeded ${size.rows[0].spans} spans over ${seeded.partitions} daily partitions in ${seeded.seconds.toFixed(0)} s ` +
        `(database ${size.rows[0].bytes})`,
    );
    const sample = await pool.query<{ id: string }>(
      `SELECT encode(trace_id, 'hex') AS id FROM traces TABLESAMPLE SYSTEM (2) ORDER BY random() LIMIT ${SAMPLES * 3}`,
    );
    const traceIds = sample.rows.map((r) => r.id);

    await ensureDistBuilt();
    server = await spawnTracehouse({
      DATABASE_URL: databaseUrl,
      LOG_LEVEL: 'warn',
      RETENTION_DAYS: '8',
      RATE_LIMIT_SPANS_PER_S: '0',
      RATE_LIMIT_BYTES_PER_S: '0',
    });
    await server.waitReady(60_000);
    const ingestUrl = `${server.url}/v1/traces`;

    console.log(`measuring the sustained ingest maximum for ${MAX_SECONDS} s (8 loops, flat out)`);
    const flatOut = new IngestLoad();
    await flatOut.start({
      url: ingestUrl,
      requests: Math.ceil((MAX_SECONDS * 25_000) / SPANS_PER_REQUEST),
      services: SERVICES,
      concurrency: 8,
      intervalMs: 0,
    });
    await sleep(3000); // ramp up
    const before = flatOut.acknowledged;
    const t0 = performance.now();
    await sleep((MAX_SECONDS - 3) * 1000);
    const maxRate = ((flatOut.acknowledged - before) * 1000) / (performance.now() - t0);
    const maxStarved = flatOut.bodiesLeft === 0;
    await flatOut.stop();
    if (maxStarved) console.log('  (ran out of request bodies: the maximum is a lower bound)');
    const halfRate = maxRate / 2;
    console.log(`  sustained maximum ${maxRate.toFixed(0)} spans/s; half: ${halfRate.toFixed(0)} spans/s`);

    const list = scenarios(traceIds);
    const expectedSeconds = 1.5 * (WARMUP_SECONDS + list.length * SAMPLES * 0.05 + 30);
    const load = new IngestLoad();
    const concurrency = 4;
    await load.start({
      url: ingestUrl,
      requests: Math.ceil((expectedSeconds * halfRate) / SPANS_PER_REQUEST) + 100,
      services: SERVICES,
      concurrency,
      intervalMs: (concurrency * SPANS_PER_REQUEST * 1000) / halfRate,
    });
    console.log(`ingesting at ${halfRate.toFixed(0)} spans/s; measuring after ${WARMUP_SECONDS} s`);
    await sleep(WARMUP_SECONDS * 1000);
    const serverBefore = await routeHistograms(server.url);
    const ingestBefore = load.acknowledged;
    const m0 = performance.now();
    for (let i = 0; i < SAMPLES; i++) {
      for (const scenario of list) {
        const result = await timed(server.url, scenario.request(i));
        if (scenario.check(result.status, result.body)) scenario.latencies.push(result.ms);
        else scenario.errors++;
      }
    }
    const measuredSeconds = (performance.now() - m0) / 1000;
    const ingestRate = (load.acknowledged - ingestBefore) / measuredSeconds;
    const starved = load.bodiesLeft === 0;
    const serverAfter = await routeHistograms(server.url);
    await load.stop();

    console.log('');
    console.log(`| query (ms, ${SAMPLES} each, one client) | p50 | p90 | p99 | max | p99 target | met |`);
    console.log('| --- | --- | --- | --- | --- | --- | --- |');
    for (const s of list) {
      const sorted = [...s.latencies].sort((a, b) => a - b);
      const p99 = percentile(sorted, 99);
      const row = [50, 90, 99].map((p) => percentile(sorted, p).toFixed(1));
      const errors = s.errors > 0 ? ` (${s.errors} wrong answers)` : '';
      console.log(
        `| ${s.name}${errors} | ${row.join(' | ')} | ${sorted.at(-1)!.toFixed(1)} | ≤ ${s.target} | ${p99 <= s.target ? 'yes' : 'NO'} |`,
      );
    }
    console.log('');
    console.log('server-side (tracehouse_http_request_duration_seconds, this phase only): share of requests');
    for (const [route, target] of SERVER_ROUTES) {
      const share = shareWithin(serverBefore.get(route), serverAfter.get(route), target);
      console.log(`  ${route}: ${share}`);
    }
    const failures = Object.entries(load.failures)
      .map(([status, n]) => `${n}×${status === '0' ? 'connection error' : status}`)
      .join(', ');
    console.log('');
    console.log(
      `ingest while measuring: ${ingestRate.toFixed(0)} spans/s acknowledged (target ${halfRate.toFixed(0)} = half of the ` +
        `measured ${maxRate.toFixed(0)})${failures ? `; non-200 answers: ${failures}` : ''}` +
        `${starved ? '; ran out of request bodies before the end' : ''}`,
    );
    const after = await pool.query<{ n: string }>('SELECT count(*)::text AS n FROM spans');
    console.log(`spans stored at the end: ${after.rows[0].n}; measurement took ${measuredSeconds.toFixed(0)} s`);
  } finally {
    await server?.stop();
    await pool.end();
    if (!args.keep) {
      await adminQuery(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
      console.log(`dropped ${database}`);
    }
  }
}

await main();
