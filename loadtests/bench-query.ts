/**
 * Query benchmark (issue #5): latency of trace-by-id on the three APIs and of a search, on at
 * least 5 million spans over 7 daily partitions, while ingest runs at half its sustained maximum.
 *
 *   npm run bench:query -- [--spans 5000000] [--samples 300] [--keep] [--log-slow-ms 100]
 *
 * 1. Creates th_bench_query_<pid> on BENCH_DATABASE_URL (else TEST_DATABASE_URL, else the local
 *    default), migrates it and seeds it in SQL (INSERT … SELECT over generate_series, two sessions
 *    at once): 10-span traces one every ~1.1 s from midnight UTC six days ago until two minutes ago,
 *    8 services, realistic attributes; the traces summaries and the operations catalog are written
 *    by the same statements, as the writer does.
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
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { pino } from 'pino';
import { migrate } from '../server/storage/migrate.js';
import { PgPartitionManager } from '../server/storage/partitions.js';
import { ensureDistBuilt } from '../test/helpers/build-dist.js';
import { spawnTracehouse, type TracehouseProcess } from '../test/helpers/tracehouse-process.js';
import { IngestLoad, SPANS_PER_REQUEST } from './ingest-load.js';

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
const SPANS_PER_TRACE = 10;
const SERVICES = 8;
const TENANT = 'default';
const DAY_MS = 86_400_000;
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

// ---- seeding ----------------------------------------------------------------------------------

/** The resource of a seeded span of service `svc` on host number `host` (SQL expressions). */
function resourceSql(svc: string, host: string): string {
  return `jsonb_build_object(
           'service.name', ${svc}, 'service.version', '2.14.3', 'service.namespace', 'shop',
           'service.instance.id', ${svc} || '-7d9f8c6b5-x2k4p', 'deployment.environment', 'production',
           'host.name', 'ip-10-0-12-' || (${host}) || '.eu-west-1.compute.internal',
           'telemetry.sdk.language', 'nodejs', 'telemetry.sdk.version', '2.12.1')`;
}

const SCOPE_SQL = `'@opentelemetry/instrumentation-http', '0.57.2', '{}'`;

function resourceIdSql(svc: string, host: string): string {
  return `tracehouse_resource_id(${resourceSql(svc, host)}, ${SCOPE_SQL})`;
}

/** Every resource the seed uses (each service on each of 50 hosts), before the spans that point at them. */
const SEED_RESOURCES = `
INSERT INTO resources (tenant, resource_id, attributes, scope_name, scope_version, scope_attributes)
SELECT $1, ${resourceIdSql("'svc-' || n", 'h')}, ${resourceSql("'svc-' || n", 'h')}, ${SCOPE_SQL}
  FROM generate_series(0, ${SERVICES} - 1) AS n, generate_series(0, 49) AS h
ON CONFLICT DO NOTHING`;

/**
 * Traces $2 … $2+$3-1 of the seed: trace t starts at $4 + t * $5 ms; its span k starts k ms
 * later. Inserts the spans, then the traces summaries and the catalog from the inserted rows.
 * $1 tenant, $6 a seed string (fresh ids per run).
 */
const SEED_CHUNK = `
WITH ins AS (
  INSERT INTO spans (tenant, trace_id, span_id, parent_span_id, flags, name, kind, service_name, start_time,
                     start_time_unix_nano, duration_ns, status_code, status_message,
                     attributes, resource_id, events)
  SELECT $1, v.trace_id, substring(decode(md5($6 || ':s:' || t || ':' || k), 'hex') FROM 1 FOR 8),
         CASE WHEN k = 0 THEN NULL ELSE substring(decode(md5($6 || ':s:' || t || ':0'), 'hex') FROM 1 FOR 8) END,
         1, v.name, CASE WHEN k = 0 THEN 2 ELSE (ARRAY[1, 3, 3, 4])[1 + k % 4] END, v.svc,
         tracehouse_nanos_to_timestamptz(v.st_ns), v.st_ns, v.dur,
         CASE WHEN v.err THEN 2 ELSE 0 END, CASE WHEN v.err THEN 'upstream returned 500' ELSE '' END,
         jsonb_build_object(
           'http.request.method', (ARRAY['GET', 'POST', 'PUT', 'DELETE'])[1 + h % 4],
           'http.route', v.route,
           'http.response.status_code', CASE WHEN v.err THEN 500 ELSE 200 END,
           'url.full', 'https://shop.example.com' || v.route || '?page=' || (h % 100),
           'server.address', 'shop.example.com',
           'server.port', 443,
           'user_agent.original', 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36',
           'app.cart.items', h % 20,
           'app.sampling.ratio', (h % 1000) / 1000.0 + 0.0005,
           'app.feature_flags', jsonb_build_array('new-checkout', (ARRAY['a', 'b', 'c'])[1 + h % 3])),
         ${resourceIdSql('v.svc', 't % 50')},
         CASE WHEN h % 10 < 3 THEN jsonb_build_array(jsonb_build_object(
           'timeUnixNano', (v.st_ns + v.dur / 2)::text, 'name', CASE WHEN v.err THEN 'exception' ELSE 'cache.miss' END,
           'attributes', jsonb_build_object('cache.key', 'cart:' || h))) ELSE '[]' END
    FROM generate_series($2::bigint, $2::bigint + $3::bigint - 1) AS t
   CROSS JOIN generate_series(0, ${SPANS_PER_TRACE - 1}) AS k
   CROSS JOIN LATERAL (SELECT abs(hashtext($6 || ':' || t || ':' || k))::bigint AS h) hh
   CROSS JOIN LATERAL (
     SELECT decode(md5($6 || ':t:' || t), 'hex') AS trace_id,
            'svc-' || CASE WHEN k % 3 = 0 THEN t % ${SERVICES} ELSE (t + 1 + k % 3) % ${SERVICES} END AS svc,
            CASE WHEN k = 0 THEN 'GET ' || r.route
                 ELSE (ARRAY['SELECT orders', 'INSERT orders', 'redis GET', 'render cart', 'charge card'])[1 + hh.h % 5] END AS name,
            r.route,
            hh.h % 100 < 5 AS err,
            ($4::bigint + t * $5::bigint + k) * 1000000 + hh.h % 1000 AS st_ns,
            CASE WHEN k = 0 THEN 260000000 + (hh.h % 100) * 1000000 ELSE (hh.h % 250000) * 1000 + 1000 END::bigint AS dur
       FROM (SELECT (ARRAY['/api/orders', '/api/orders/:id', '/api/users/:id', '/api/cart', '/health', '/api/search'])[1 + (hh.h / 4) % 6] AS route) r
   ) v
  RETURNING tenant, trace_id, span_id, parent_span_id, name, kind, service_name, start_time,
            start_time_unix_nano, duration_ns, status_code
), summaries AS (
  INSERT INTO traces (tenant, trace_id, first_start, last_end, first_start_unix_nano, last_end_unix_nano,
                      span_count, error_count, root_service_name, root_span_name)
  SELECT tenant, trace_id, min(start_time), tracehouse_nanos_to_timestamptz(max(start_time_unix_nano + duration_ns)),
         min(start_time_unix_nano), max(start_time_unix_nano + duration_ns), count(*), count(*) FILTER (WHERE status_code = 2),
         (array_agg(service_name) FILTER (WHERE parent_span_id IS NULL))[1],
         (array_agg(name) FILTER (WHERE parent_span_id IS NULL))[1]
    FROM ins GROUP BY tenant, trace_id
)
INSERT INTO operations AS o (tenant, service_name, span_name, span_kind, first_seen, last_seen)
SELECT tenant, service_name, name, kind, min(start_time), max(start_time) FROM ins
 GROUP BY tenant, service_name, name, kind ORDER BY 1, 2, 3, 4
ON CONFLICT (tenant, service_name, span_name, span_kind) DO UPDATE
  SET first_seen = least(o.first_seen, excluded.first_seen), last_seen = greatest(o.last_seen, excluded.last_seen)`;

async function adminQuery(text: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(text);
  } finally {
    await client.end();
  }
}

async function seed(pool: pg.Pool): Promise<{ seconds: number; partitions: number; firstMs: number }> {
  const now = Date.now();
  const firstMs = Math.floor(now / DAY_MS - 6) * DAY_MS; // midnight UTC six days ago: 7 partitions
  const lastMs = now - 120_000;
  const traces = Math.ceil(SPANS / SPANS_PER_TRACE);
  const spacingMs = Math.floor((lastMs - firstMs) / traces);
  const seedText = randomBytes(6).toString('hex');
  await pool.query('SELECT 1');
  const startedAt = Date.now();
  await new PgPartitionManager(pool, pino({ level: 'warn' })).ensureRange(
    new Date(firstMs),
    new Date(now + 2 * DAY_MS),
  );
  await pool.query(SEED_RESOURCES, [TENANT]);
  const chunk = 25_000;
  let next = 0;
  const worker = async () => {
    const client = await pool.connect();
    try {
      await client.query("SET synchronous_commit = off; SET work_mem = '256MB'");
      while (next < traces) {
        const from = next;
        next += chunk;
        const count = Math.min(chunk, traces - from);
        await client.query(SEED_CHUNK, [TENANT, from, count, firstMs, spacingMs, seedText]);
        process.stdout.write(`\r  seeded ${Math.min(next, traces) * SPANS_PER_TRACE} spans`);
      }
    } finally {
      client.release();
    }
  };
  await Promise.all([worker(), worker()]);
  process.stdout.write('\n');
  await pool.query('ANALYZE spans');
  await pool.query('ANALYZE traces');
  await pool.query('ANALYZE operations');
  const seconds = (Date.now() - startedAt) / 1000;
  const { rows } = await pool.query<{ partition: string; n: string }>(
    'SELECT tableoid::regclass::text AS partition, count(*)::text AS n FROM spans GROUP BY 1 ORDER BY 1',
  );
  console.log(`  per partition: ${rows.map((r) => `${r.partition} ${r.n}`).join(', ')}`);
  return { seconds, partitions: rows.length, firstMs };
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
    const seeded = await seed(pool);
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
