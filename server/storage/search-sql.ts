/**
 * The statements whose WHERE clause depends on the search conditions or reads a service's newest
 * spans through the service index (search pages, tag names, tag values). They are assembled from the
 * constant fragments below and the conditions of search-conditions.ts; every value (tenant, keys,
 * literals, patterns, times) is a parameter, so the only run-time text is which fragments appear
 * and their parameter numbers.
 *
 * Every statement reaches spans through the service index (tenant, service_name, start bucket;
 * serviceWindow) — the catalog supplies the candidate services — through the GIN indexes on the
 * attribute maps (equalities are written as containment for them), or through the primary key
 * (tenant, trace_id, …) with a time range, so partitions outside the window are pruned and no
 * statement scans a partition sequentially.
 */
import type { AttributeRef, SearchQuery, SpanCondition, TraceCondition, TraceSummary } from './reader-types.js';
import { ATTRIBUTE_SET_JOIN, RESOURCE_JOIN, SPAN_COLUMNS_FOR_READ, SPAN_JOINS, SUMMARY_COLUMNS } from './query-sql.js';
import {
  andAll,
  microsToTimestamptz,
  nanosToTimestamptz,
  Params,
  spanConditionSql,
  traceConditionSql,
  type CatalogMatches,
  type Statement,
} from './search-conditions.js';

/**
 * The service index's time key (migrations/000008): the span's start in 10 ms buckets. A read of a
 * service's newest spans bounds it as it bounds start_time (startBucketRange), orders by it alone
 * and takes its rows WITH TIES: the index gives that order with no sort, so the read stops after
 * the bucket that completes the page, and the page holds every span of that bucket. The newest
 * `n` spans by start_time are then among them (a newer span never has an older bucket), for the
 * caller to order. The text must be the index's expression exactly.
 */
const START_BUCKET = '(s.start_time_unix_nano / 10000000)';
const START_BUCKET_NS = 10_000_000n;

/**
 * The buckets holding start times from `firstMicros` to `lastMicros`, both unix µs and inclusive:
 * the buckets of the first and last nanosecond. Integer division truncates in JavaScript as in
 * PostgreSQL, and a bucket never decreases as the time grows, so every span between is within.
 */
export function startBucketRange(firstMicros: bigint, lastMicros: bigint): [bigint, bigint] {
  return [(firstMicros * 1000n) / START_BUCKET_NS, (lastMicros * 1000n + 999n) / START_BUCKET_NS];
}

/**
 * The spans of the lateral service `svc` that start from `firstMicros` to `lastMicros` (unix µs,
 * inclusive; start_time has microsecond precision): the conditions the service index answers, the
 * bucket bounded as start_time is, which still bounds the partitions and the exact range.
 */
function serviceWindow(params: Params, $tenant: string, firstMicros: bigint, lastMicros: bigint): string {
  const [first, last] = startBucketRange(firstMicros, lastMicros);
  return (
    `s.tenant = ${$tenant} AND s.service_name = svc.name` +
    `\n         AND s.start_time >= ${params.add(microsToTimestamptz(firstMicros))}::timestamptz` +
    ` AND s.start_time <= ${params.add(microsToTimestamptz(lastMicros))}::timestamptz` +
    `\n         AND ${START_BUCKET} >= ${params.add(String(first))}::bigint` +
    ` AND ${START_BUCKET} <= ${params.add(String(last))}::bigint`
  );
}

/**
 * One page of a search: the newest `pageSize` spans that meet the span conditions, among
 * `services`, starting in [fromMicros, toMicros). Each service's spans are read newest first from
 * the service index (START_BUCKET) and the read stops at the page size, unless the planner finds
 * a GIN index cheaper (values that match little or nothing); the services' pages are then merged.
 */
export function buildSearchPage(
  tenant: string,
  query: SearchQuery,
  services: readonly string[],
  fromMicros: bigint,
  toMicros: bigint,
  pageSize: number,
  catalogs?: CatalogMatches,
): Statement {
  const params = new Params();
  params.catalogs = catalogs;
  const $tenant = params.add(tenant);
  params.tenant = $tenant;
  const $services = params.add(services);
  const where = serviceWindow(params, $tenant, fromMicros, toMicros - 1n) + andAll(query.spanConditions, params);
  const $pageSize = params.add(pageSize);
  const text = `
SELECT x.trace_id, x.start_time_unix_nano
  FROM unnest(${$services}::text[]) AS svc(name)
  CROSS JOIN LATERAL (
    SELECT s.trace_id, s.start_time, s.start_time_unix_nano
      FROM spans s
     WHERE ${where}
     ORDER BY ${START_BUCKET} DESC
     FETCH FIRST ${$pageSize} ROWS WITH TIES) x
 ORDER BY x.start_time DESC
 LIMIT ${$pageSize}`;
  return { text, values: params.values };
}

/** The summaries of `traceIds` that meet the trace conditions. */
export function buildTraceSummaries(
  tenant: string,
  traceIds: readonly Buffer[],
  conditions: readonly TraceCondition[],
): Statement {
  const params = new Params();
  const where =
    `t.tenant = ${params.add(tenant)} AND t.trace_id = ANY(${params.add(traceIds)}::bytea[])` +
    conditions.map((c) => ` AND ${traceConditionSql(c, params)}`).join('');
  return { text: `SELECT ${SUMMARY_COLUMNS} FROM traces t WHERE ${where}`, values: params.values };
}

/**
 * For each trace, its spans matching the query's span conditions within the trace's own
 * [first start, last end] ∩ the query window: the first `perTrace`, and how many. Each trace is
 * read by its primary key, then filtered: `OFFSET 0` keeps the conditions out of that lookup, so
 * the planner cannot trade it for an attribute index scan repeated for every trace.
 */
export function buildMatchingSpans(
  tenant: string,
  query: SearchQuery,
  traces: readonly TraceSummary[],
  perTrace: number,
  catalogs?: CatalogMatches,
): Statement {
  const params = new Params();
  params.catalogs = catalogs;
  const $ids = params.add(traces.map((t) => t.traceId));
  const $firsts = params.add(traces.map((t) => nanosToTimestamptz(t.firstStartUnixNano)));
  const $lasts = params.add(traces.map((t) => nanosToTimestamptz(t.lastEndUnixNano)));
  const $tenant = params.add(tenant);
  params.tenant = $tenant;
  const $from = params.add(nanosToTimestamptz(query.window.startUnixNano));
  const $to = params.add(nanosToTimestamptz(query.window.endUnixNano));
  const conditions = query.spanConditions.map((c) => spanConditionSql(c, params));
  const where = conditions.length > 0 ? `\n     WHERE ${conditions.join('\n       AND ')}` : '';
  const text = `
SELECT x.*
  FROM unnest(${$ids}::bytea[], ${$firsts}::timestamptz[], ${$lasts}::timestamptz[]) AS tr(id, first_start, last_end)
  CROSS JOIN LATERAL (
    SELECT ${SPAN_COLUMNS_FOR_READ},
           row_number() OVER (ORDER BY s.start_time_unix_nano, s.span_id) AS rn,
           count(*) OVER ()::int AS matched
      FROM (SELECT * FROM spans p
             WHERE p.tenant = ${$tenant} AND p.trace_id = tr.id
               AND p.start_time >= greatest(tr.first_start, ${$from}::timestamptz)
               AND p.start_time <= least(tr.last_end, ${$to}::timestamptz)
            OFFSET 0) s
      ${SPAN_JOINS}${where}
  ) x
 WHERE x.rn <= ${params.add(perTrace)}
 ORDER BY x.trace_id, x.rn`;
  return { text, values: params.values };
}

/** Distinct values of one attribute among the newest spans carrying it, per service, in the window. */
export function buildTagValues(
  tenant: string,
  attribute: AttributeRef,
  options: { services: readonly string[]; fromMicros: bigint; toMicros: bigint; conditions: readonly SpanCondition[] },
  samplePerService: number,
  maxValues: number,
  catalogs?: CatalogMatches,
): Statement {
  const params = new Params();
  params.catalogs = catalogs;
  const $tenant = params.add(tenant);
  params.tenant = $tenant;
  const $services = params.add(options.services);
  const k = params.add(attribute.key);
  const onSpan = `coalesce(s.attributes -> ${k}, a.attributes -> ${k})`;
  const value =
    attribute.scope === 'span'
      ? onSpan
      : attribute.scope === 'resource'
        ? `r.attributes -> ${k}`
        : `coalesce(s.attributes -> ${k}, a.attributes -> ${k}, r.attributes -> ${k})`;
  const joins = [
    attribute.scope === 'resource' ? '' : ATTRIBUTE_SET_JOIN,
    attribute.scope === 'span' ? '' : RESOURCE_JOIN,
  ];
  const where =
    serviceWindow(params, $tenant, options.fromMicros, options.toMicros) +
    `\n         AND ${value} IS NOT NULL` +
    andAll(options.conditions, params);
  const text = `
SELECT DISTINCT x.v::text AS value
  FROM unnest(${$services}::text[]) AS svc(name)
  CROSS JOIN LATERAL (
    SELECT ${value} AS v
      FROM spans s
      ${joins.filter((j) => j !== '').join('\n      ')}
     WHERE ${where}
     ORDER BY ${START_BUCKET} DESC
     FETCH FIRST ${params.add(samplePerService)} ROWS WITH TIES) x
 LIMIT ${params.add(maxValues)}`;
  return { text, values: params.values };
}

/**
 * Attribute keys among the newest `samplePerService` spans of each service started from
 * `fromMicros` to `toMicros` (inclusive): a bounded sample, like Tempo's byte-limited tag search,
 * not an exhaustive scan.
 */
export function buildTagNames(
  tenant: string,
  services: readonly string[],
  fromMicros: bigint,
  toMicros: bigint,
  samplePerService: number,
): Statement {
  const params = new Params();
  const $services = params.add(services);
  const where = serviceWindow(params, params.add(tenant), fromMicros, toMicros);
  const $sample = params.add(samplePerService);
  const text = `
WITH sample AS MATERIALIZED (
  SELECT x.attributes, x.tenant, x.resource_id, x.attribute_set_id
    FROM unnest(${$services}::text[]) AS svc(name)
    CROSS JOIN LATERAL (
      SELECT s.attributes, s.tenant, s.resource_id, s.attribute_set_id
        FROM spans s
       WHERE ${where}
       ORDER BY ${START_BUCKET} DESC
       FETCH FIRST ${$sample} ROWS WITH TIES) x
)
SELECT DISTINCT 'span' AS scope, jsonb_object_keys(attributes) AS key FROM sample
UNION
SELECT DISTINCT 'span' AS scope, jsonb_object_keys(a.attributes) AS key
  FROM (SELECT DISTINCT tenant, attribute_set_id FROM sample WHERE attribute_set_id IS NOT NULL) x
  JOIN attribute_sets a ON a.tenant = x.tenant AND a.attribute_set_id = x.attribute_set_id
UNION
SELECT DISTINCT 'resource' AS scope, jsonb_object_keys(r.attributes) AS key
  FROM (SELECT DISTINCT tenant, resource_id FROM sample) x
  JOIN resources r ON r.tenant = x.tenant AND r.resource_id = x.resource_id
ORDER BY scope, key`;
  return { text, values: params.values };
}
