/**
 * The query benchmark's seed (bench-query.ts): realistic spans written in SQL (INSERT … SELECT over
 * generate_series, two sessions at once), 10-span traces one every ~1.1 s from midnight UTC six
 * days ago until two minutes ago, 8 services; the traces summaries, the operations catalog and the
 * resources are written by the same statements, as the writer does.
 */
import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import { pino } from 'pino';
import { PgPartitionManager } from '../../server/storage/partitions.js';

export const SPANS_PER_TRACE = 10;
export const SERVICES = 8;
export const TENANT = 'default';
const DAY_MS = 86_400_000;

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

export async function seedSpans(
  pool: pg.Pool,
  spans: number,
): Promise<{ seconds: number; partitions: number; firstMs: number }> {
  const now = Date.now();
  const firstMs = Math.floor(now / DAY_MS - 6) * DAY_MS; // midnight UTC six days ago: 7 partitions
  const lastMs = now - 120_000;
  const traces = Math.ceil(spans / SPANS_PER_TRACE);
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
