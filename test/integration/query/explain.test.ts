/**
 * The plans of the statements the reader sends, on 240,000 generated spans over three days (four
 * day partitions; ANALYZEd, so the planner works from real statistics): no common search and no trace
 * lookup reads a spans partition sequentially, and trace-by-id reads only the partitions the trace
 * lives in. Dependencies are left out: they aggregate every span of their window by design.
 */
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  SELECT_OPERATIONS,
  SELECT_TRACE,
  SELECT_SPANS_OF_TRACES,
  SELECT_TRACE_SPANS,
} from '../../../server/storage/query-sql.js';
import type { SearchQuery, SpanCondition } from '../../../server/storage/reader-types.js';
import {
  buildCatalogMatches,
  catalogMatchesFrom,
  nanosToTimestamptz,
  type CatalogMatches,
  type Statement,
} from '../../../server/storage/search-conditions.js';
import {
  buildMatchingSpans,
  buildSearchPage,
  buildTagNames,
  buildTagValues,
  buildTraceSummaries,
} from '../../../server/storage/search-sql.js';
import { searchPageSize } from '../../../server/storage/trace-reader.js';
import type { Storage } from '../../../server/storage/types.js';
import { useTestDatabase } from '../../helpers/db.js';
import { useStorage } from '../storage/storage-fixture.js';

const db = useTestDatabase();
const newStorage = useStorage(db);
let storage: Storage;
let pool: pg.Pool;

const DAY_MS = 86_400_000;
/** Noon UTC two days ago: the data covers the three days before the following midnight. */
const BASE_MS = Math.floor(Date.now() / DAY_MS - 2) * DAY_MS + DAY_MS / 2;
const SPANS = 240_000;
const SPANS_PER_TRACE = 8;
const SERVICES = 12;
const TENANT = 'default';

/** 8-span traces, one every 1.08 s over three days, services svc-0…svc-11, typed attributes. */
const GENERATE = `
INSERT INTO spans (tenant, trace_id, span_id, parent_span_id, name, kind, service_name, start_time,
                   start_time_unix_nano, duration_ns, status_code, attributes, resource_id)
SELECT $1, decode(md5('trace' || t), 'hex'), substring(decode(md5('span' || g), 'hex') FROM 1 FOR 8),
       CASE WHEN g % ${SPANS_PER_TRACE} = 0 THEN NULL ELSE substring(decode(md5('span' || (g - g % ${SPANS_PER_TRACE})), 'hex') FROM 1 FOR 8) END,
       'op-' || (g % 9), CASE WHEN g % ${SPANS_PER_TRACE} = 0 THEN 2 ELSE 3 END, 'svc-' || (t % ${SERVICES}),
       start_ts, (extract(epoch FROM start_ts) * 1e9)::bigint, dur_ns,
       CASE WHEN g % 50 = 0 THEN 2 ELSE 0 END,
       jsonb_build_object('http.route', '/r/' || (g % 40), 'http.response.status_code', CASE WHEN g % 50 = 0 THEN 500 ELSE 200 END),
       t % ${SERVICES}
  FROM generate_series(0, $2::int - 1) AS g,
       LATERAL (SELECT g / ${SPANS_PER_TRACE} AS t) tr,
       LATERAL (SELECT to_timestamp($3::double precision / 1000) - make_interval(secs => tr.t * 8.64) + make_interval(secs => (g % ${SPANS_PER_TRACE}) * 0.001) AS start_ts,
                       ((g * 7919) % 400000000)::bigint + 1000 AS dur_ns) x`;

/** One resource per service: resource_id = the service's number. */
const RESOURCES = `
INSERT INTO resources (tenant, resource_id, attributes)
SELECT $1, n, jsonb_build_object('service.name', 'svc-' || n) FROM generate_series(0, ${SERVICES} - 1) AS n`;

const SUMMARIZE = `
INSERT INTO traces (tenant, trace_id, first_start, last_end, first_start_unix_nano, last_end_unix_nano, span_count)
SELECT tenant, trace_id, min(start_time), tracehouse_nanos_to_timestamptz(max(start_time_unix_nano + duration_ns)),
       min(start_time_unix_nano), max(start_time_unix_nano + duration_ns), count(*)
  FROM spans GROUP BY tenant, trace_id`;

const CATALOG = `
INSERT INTO operations (tenant, service_name, span_name, span_kind, first_seen, last_seen)
SELECT tenant, service_name, name, kind, min(start_time), max(start_time) FROM spans GROUP BY 1, 2, 3, 4`;

beforeAll(async () => {
  storage = await newStorage();
  await storage.partitions.ensureRange(new Date(BASE_MS - 3 * DAY_MS), new Date(BASE_MS + DAY_MS));
  pool = db.pool({ max: 1 });
  await pool.query(GENERATE, [TENANT, SPANS, BASE_MS + DAY_MS / 2 - 60_000]);
  await pool.query(RESOURCES, [TENANT]);
  await pool.query(SUMMARIZE);
  await pool.query(CATALOG);
  await pool.query('ANALYZE spans');
  await pool.query('ANALYZE traces');
  await pool.query('ANALYZE operations');
}, 300_000);
afterAll(async () => {
  await pool?.end();
});

async function plan(statement: Statement | { text: string; values: unknown[] }): Promise<string> {
  const { rows } = await pool.query({ text: `EXPLAIN ${statement.text}`, values: statement.values });
  const text = rows.map((r) => r['QUERY PLAN']).join('\n');
  if (process.env.SHOW_PLANS) console.log(`${statement.text}\n${text}\n`);
  return text;
}

function expectNoSequentialSpanScan(text: string): void {
  expect(text, text).not.toMatch(/Seq Scan on spans/);
}

/**
 * For statements whose time range comes from another row (run-time partition pruning): the plan
 * lists every partition, and may pick a sequential scan for a near-empty one; EXPLAIN ANALYZE must
 * show that no sequential scan of a spans partition ever ran.
 */
async function expectNoSequentialSpanScanExecuted(statement: Statement): Promise<void> {
  const { rows } = await pool.query({ text: `EXPLAIN (ANALYZE) ${statement.text}`, values: statement.values });
  const text = rows.map((r) => r['QUERY PLAN']).join('\n');
  const executed = text.split('\n').filter((line) => /Seq Scan on spans/.test(line) && !/never executed/.test(line));
  expect(executed, text).toEqual([]);
  expect(text).toMatch(/Index Scan using spans_\d{8}_pkey/);
}

function partitionsIn(text: string): string[] {
  return [...new Set(text.match(/spans_\d{8}/g) ?? [])];
}

const newestNs = BigInt(BASE_MS + DAY_MS / 2 - 60_000) * 1_000_000n;
const lastHour = { startUnixNano: newestNs - 3_600_000_000_000n, endUnixNano: newestNs };

function query(conditions: SpanCondition[]): SearchQuery {
  return { window: lastHour, spanConditions: conditions, traceConditions: [], limit: 20 };
}

/** The tenant's resources and attribute sets meeting each condition, as the reader looks them up first. */
async function catalogMatches(conditions: SpanCondition[]): Promise<CatalogMatches | undefined> {
  const statement = buildCatalogMatches(TENANT, conditions);
  if (statement === undefined) return undefined;
  return catalogMatchesFrom(conditions, (await pool.query(statement)).rows);
}

async function page(q: SearchQuery, services: string[]): Promise<Statement> {
  const from = q.window.startUnixNano / 1000n;
  const to = q.window.endUnixNano / 1000n + 1n;
  const catalogs = await catalogMatches(q.spanConditions);
  return buildSearchPage(TENANT, q, services, from, to, searchPageSize(q.limit), catalogs);
}

const allServices = Array.from({ length: SERVICES }, (_, i) => `svc-${i}`);

describe('search plans', () => {
  it('service + common attribute + minimum duration over the last hour: newest first on the service index', async () => {
    const q = query([
      { target: 'intrinsic', intrinsic: 'service', op: '=', value: 'svc-3' },
      { target: 'tag', key: 'http.route', value: '/r/7' },
      { target: 'intrinsic', intrinsic: 'duration', op: '>=', value: 100_000_000n },
    ]);
    const text = await plan(await page(q, ['svc-3']));
    expectNoSequentialSpanScan(text);
    expect(text).toMatch(/Index Scan Backward using spans_\d{8}_tenant_service_name_expr_idx/);
    // Taken WITH TIES in bucket order: no sort under the per-service limit, so the read stops early.
    expect(text).not.toMatch(/Sort Key: \(\(s\.start_time_unix_nano/);
    expect(partitionsIn(text)).toHaveLength(1);
  });

  it('a value no span has, over two days, is answered by the GIN index instead of reading 14,000 spans', async () => {
    const q = query([
      { target: 'intrinsic', intrinsic: 'service', op: '=', value: 'svc-3' },
      { target: 'tag', key: 'http.route', value: '/nowhere' },
      { target: 'intrinsic', intrinsic: 'duration', op: '>=', value: 100_000_000n },
    ]);
    // (from the first full day: the oldest partition holds only the data's first minute)
    const threeDays = {
      ...q,
      window: { startUnixNano: newestNs - 2n * 86_400_000_000_000n - 3_600_000_000_000n, endUnixNano: newestNs },
    };
    const text = await plan(await page(threeDays, ['svc-3']));
    expectNoSequentialSpanScan(text);
    expect(text).toMatch(/Bitmap Index Scan on spans_\d{8}_attributes_idx/);
  });

  it('service + operation, and a typed TraceQL attribute comparison', async () => {
    const q = query([
      { target: 'intrinsic', intrinsic: 'service', op: '=', value: 'svc-5' },
      { target: 'intrinsic', intrinsic: 'name', op: '=', value: 'op-2' },
      { target: 'attribute', scope: 'span', key: 'http.response.status_code', op: '>=', value: 500n },
    ]);
    expectNoSequentialSpanScan(await plan(await page(q, ['svc-5'])));
  });

  it('an attribute-only search (every service of the catalog) still goes through the indexes', async () => {
    const q = query([{ target: 'attribute', scope: 'any', key: 'http.route', op: '=', value: '/r/1' }]);
    expectNoSequentialSpanScan(await plan(await page(q, allServices)));
  });

  it('a search over the whole three days stays on the indexes', async () => {
    const q = query([{ target: 'intrinsic', intrinsic: 'service', op: '=', value: 'svc-1' }]);
    const wide = { ...q, window: { startUnixNano: newestNs - 3n * 86_400_000_000_000n, endUnixNano: newestNs } };
    expectNoSequentialSpanScan(await plan(await page(wide, ['svc-1'])));
  });

  it('the catalog lookup that picks candidate services reads operations, not spans', async () => {
    const text = await plan({
      text: SELECT_OPERATIONS,
      values: [
        TENANT,
        nanosToTimestamptz(lastHour.startUnixNano),
        nanosToTimestamptz(lastHour.endUnixNano),
        ['svc-3'],
        null,
        null,
      ],
    });
    expect(text).not.toMatch(/spans/);
  });
});

describe('trace lookup plans', () => {
  it('spans fetched within a known window come from the trace’s partitions only', async () => {
    const { rows } = await pool.query(
      `SELECT trace_id, first_start_unix_nano, last_end_unix_nano FROM traces ORDER BY first_start DESC OFFSET 1000 LIMIT 1`,
    );
    const { trace_id: id, first_start_unix_nano: first, last_end_unix_nano: last } = rows[0];
    const text = await plan({
      text: SELECT_TRACE_SPANS,
      values: [TENANT, id, nanosToTimestamptz(BigInt(first)), nanosToTimestamptz(BigInt(last))],
    });
    expectNoSequentialSpanScan(text);
    expect(partitionsIn(text)).toHaveLength(1);
    expect(text).toMatch(/Index Scan using spans_\d{8}_pkey/);
  });

  it('the one-round-trip trace lookup reads the summary by key and only the trace’s partition at run time', async () => {
    const { rows } = await pool.query(`SELECT trace_id FROM traces ORDER BY first_start DESC OFFSET 5000 LIMIT 1`);
    const { rows: plan } = await pool.query({
      text: `EXPLAIN (ANALYZE) ${SELECT_TRACE}`,
      values: [TENANT, rows[0].trace_id],
    });
    const text = plan.map((r) => r['QUERY PLAN']).join('\n');
    expect(text).toMatch(/Index Scan using traces_pkey/);
    const executed = text.split('\n').filter((line) => /on spans_\d{8}/.test(line) && !/never executed/.test(line));
    expect(executed, text).toHaveLength(1);
    expect(executed[0]).toMatch(/Index Scan using spans_\d{8}_pkey/);
  });

  it('spans of a page of search hits, their matching spans and per-service stats use the primary key', async () => {
    const { rows } = await pool.query(
      `SELECT trace_id, first_start_unix_nano::text AS first, last_end_unix_nano::text AS last
         FROM traces ORDER BY first_start DESC LIMIT 20`,
    );
    const ids = rows.map((r) => r.trace_id as Buffer);
    const summaries = rows.map((r) => ({
      traceId: r.trace_id as Buffer,
      firstStartUnixNano: BigInt(r.first),
      lastEndUnixNano: BigInt(r.last),
      spanCount: 8,
      errorCount: 0,
      rootServiceName: null,
      rootSpanName: null,
      updatedAt: new Date(),
    }));
    const bounds = [nanosToTimestamptz(BigInt(rows.at(-1).first)), nanosToTimestamptz(BigInt(rows[0].last))];
    expectNoSequentialSpanScan(await plan({ text: SELECT_SPANS_OF_TRACES, values: [TENANT, ids, ...bounds] }));
    expect(await plan(buildTraceSummaries(TENANT, ids, [{ field: 'duration', op: '>', value: 1n }]))).toMatch(
      /Index Scan using traces_pkey|Bitmap Index Scan on traces_pkey/,
    );
    const q = query([{ target: 'tag', key: 'http.route', value: '/r/3' }]);
    await expectNoSequentialSpanScanExecuted(buildMatchingSpans(TENANT, q, summaries, 3));
  });
});

describe('tag sampling plans', () => {
  it('tag names and values read the newest spans of each service through the service index', async () => {
    const names = await plan(
      buildTagNames(TENANT, allServices, lastHour.startUnixNano / 1000n, lastHour.endUnixNano / 1000n, 1000),
    );
    expectNoSequentialSpanScan(names);
    expect(names).toMatch(/Index Scan Backward using spans_\d{8}_tenant_service_name_expr_idx/);
    const values = buildTagValues(
      TENANT,
      { scope: 'span', key: 'http.route' },
      {
        services: allServices,
        fromMicros: lastHour.startUnixNano / 1000n,
        toMicros: lastHour.endUnixNano / 1000n,
        conditions: [],
      },
      1000,
      1000,
    );
    const valuesPlan = await plan(values);
    expectNoSequentialSpanScan(valuesPlan);
    expect(valuesPlan).toMatch(/Index Scan Backward using spans_\d{8}_tenant_service_name_expr_idx/);
  });
});
