/**
 * The read side of storage: trace by id, search, catalogs, dependencies and tag sampling over the
 * pool the writer shares. Stateless; every method is one or a few statements (query-sql.ts,
 * search-sql.ts). A regex PostgreSQL refuses surfaces as InvalidSearchError; any other failure
 * keeps its SQLSTATE in `code` (isRetryableStorageError tells a transient one).
 */
import type pg from 'pg';
import type {
  AttributeRef,
  DependencyLink,
  Operation,
  SearchHit,
  SearchQuery,
  ServiceStats,
  SpanCondition,
  StoredSpan,
  TagScope,
  TimeWindow,
  TraceReader,
  TraceSummary,
} from './reader-types.js';
import {
  SELECT_DEPENDENCIES,
  SELECT_OPERATIONS,
  SELECT_SERVICE_STATS,
  SELECT_SPANS_OF_TRACES,
  SELECT_TRACE,
  SELECT_TRACE_SPANS,
} from './query-sql.js';
import {
  buildCatalogMatches,
  catalogMatchesFrom,
  nanosToTimestamptz,
  type CatalogMatches,
  type Statement,
} from './search-conditions.js';
import {
  buildMatchingSpans,
  buildSearchPage,
  buildTagNames,
  buildTagValues,
  buildTraceSummaries,
} from './search-sql.js';

/** A search PostgreSQL cannot run as asked (an invalid regular expression): the client's mistake. */
export class InvalidSearchError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'InvalidSearchError';
  }
}

/** Matching spans read per search page: enough for `limit` traces when a trace matches several times. */
export function searchPageSize(limit: number): number {
  return Math.min(2000, Math.max(100, limit * 10));
}

const INVALID_REGULAR_EXPRESSION = '2201B';

type Row = Record<string, unknown>;

function rowToSpan(row: Row): StoredSpan {
  return {
    traceId: row.trace_id as Buffer,
    spanId: row.span_id as Buffer,
    parentSpanId: row.parent_span_id as Buffer | null,
    traceState: row.trace_state as string,
    flags: row.flags as number,
    name: row.name as string,
    kind: row.kind as number,
    serviceName: row.service_name as string,
    startTimeUnixNano: BigInt(row.start_time_unix_nano as string),
    endTimeUnixNano: BigInt(row.end_time_unix_nano as string),
    statusCode: row.status_code as number,
    statusMessage: row.status_message as string,
    attributes: row.attributes as string,
    resourceAttributes: row.resource_attributes as string,
    scopeName: row.scope_name as string,
    scopeVersion: row.scope_version as string,
    scopeAttributes: row.scope_attributes as string,
    events: row.events as string,
    links: row.links as string,
    droppedAttributesCount: row.dropped_attributes_count as number,
    droppedEventsCount: row.dropped_events_count as number,
    droppedLinksCount: row.dropped_links_count as number,
  };
}

function rowToSummary(row: Row): TraceSummary {
  return {
    traceId: row.trace_id as Buffer,
    firstStartUnixNano: BigInt(row.first_start_unix_nano as string),
    lastEndUnixNano: BigInt(row.last_end_unix_nano as string),
    spanCount: Number(row.span_count),
    errorCount: Number(row.error_count),
    rootServiceName: row.root_service_name as string | null,
    rootSpanName: row.root_span_name as string | null,
    updatedAt: row.updated_at as Date,
  };
}

/** The [earliest first start, latest last end] of some traces, as timestamptz parameters. */
function boundsOf(traces: readonly TraceSummary[]): [string, string] {
  let first = traces[0].firstStartUnixNano;
  let last = traces[0].lastEndUnixNano;
  for (const t of traces) {
    if (t.firstStartUnixNano < first) first = t.firstStartUnixNano;
    if (t.lastEndUnixNano > last) last = t.lastEndUnixNano;
  }
  return [nanosToTimestamptz(first), nanosToTimestamptz(last)];
}

function intersect(current: Set<string> | undefined, value: string): Set<string> {
  return new Set(current === undefined ? [value] : [...current].filter((v) => v === value));
}

/**
 * What the catalog can narrow from the equality conditions: services, span names and kinds.
 * `none` when two conditions contradict each other (nothing can match).
 */
export function catalogFilter(conditions: readonly SpanCondition[]): {
  services?: string[];
  spanNames?: string[];
  spanKinds?: number[];
  none: boolean;
} {
  let services: Set<string> | undefined;
  let names: Set<string> | undefined;
  let kinds: Set<string> | undefined;
  for (const c of conditions) {
    if (c.target === 'intrinsic' && c.op === '=') {
      if (c.intrinsic === 'service') services = intersect(services, c.value);
      else if (c.intrinsic === 'name') names = intersect(names, c.value);
      else if (c.intrinsic === 'kind') kinds = intersect(kinds, String(c.value));
    } else if (
      c.target === 'attribute' &&
      c.scope === 'resource' &&
      c.key === 'service.name' &&
      c.op === '=' &&
      typeof c.value === 'string'
    ) {
      services = intersect(services, c.value);
    }
  }
  return {
    services: services && [...services],
    spanNames: names && [...names],
    spanKinds: kinds && [...kinds].map(Number),
    none: services?.size === 0 || names?.size === 0 || kinds?.size === 0,
  };
}

export class PgTraceReader implements TraceReader {
  readonly #pool: pg.Pool;

  constructor(pool: pg.Pool) {
    this.#pool = pool;
  }

  async #query(statement: Statement | string, values?: unknown[]): Promise<Row[]> {
    const config = typeof statement === 'string' ? { text: statement, values } : statement;
    try {
      return (await this.#pool.query(config)).rows as Row[];
    } catch (err) {
      if ((err as { code?: unknown }).code === INVALID_REGULAR_EXPRESSION) {
        throw new InvalidSearchError(`invalid regular expression: ${(err as Error).message}`, { cause: err });
      }
      throw err;
    }
  }

  async getTrace(tenant: string, traceId: Buffer): Promise<{ summary: TraceSummary; spans: StoredSpan[] } | undefined> {
    const rows = await this.#query(SELECT_TRACE, [tenant, traceId]);
    if (rows.length === 0) return undefined;
    const first = rows[0];
    const summary: TraceSummary = {
      traceId,
      firstStartUnixNano: BigInt(first.t_first_start_unix_nano as string),
      lastEndUnixNano: BigInt(first.t_last_end_unix_nano as string),
      spanCount: Number(first.t_span_count),
      errorCount: Number(first.t_error_count),
      rootServiceName: first.t_root_service_name as string | null,
      rootSpanName: first.t_root_span_name as string | null,
      updatedAt: first.t_updated_at as Date,
    };
    return { summary, spans: rows.map(rowToSpan) };
  }

  async getTraceSpans(tenant: string, traceId: Buffer, window: TimeWindow): Promise<StoredSpan[]> {
    const rows = await this.#query(SELECT_TRACE_SPANS, [
      tenant,
      traceId,
      nanosToTimestamptz(window.startUnixNano),
      nanosToTimestamptz(window.endUnixNano),
    ]);
    return rows.map(rowToSpan);
  }

  async getSpansOfTraces(tenant: string, traces: readonly TraceSummary[]): Promise<Map<string, StoredSpan[]>> {
    const byTrace = new Map<string, StoredSpan[]>();
    if (traces.length === 0) return byTrace;
    for (const t of traces) byTrace.set(t.traceId.toString('hex'), []);
    const rows = await this.#query(SELECT_SPANS_OF_TRACES, [tenant, traces.map((t) => t.traceId), ...boundsOf(traces)]);
    for (const row of rows) byTrace.get((row.trace_id as Buffer).toString('hex'))?.push(rowToSpan(row));
    return byTrace;
  }

  async searchTraces(tenant: string, query: SearchQuery): Promise<SearchHit[]> {
    if (query.limit <= 0 || query.window.endUnixNano < query.window.startUnixNano) return [];
    const services = await this.#candidateServices(tenant, query.spanConditions, query.window);
    if (services.length === 0) return [];
    const catalogs = await this.#catalogMatches(tenant, query.spanConditions);
    const fromMicros = query.window.startUnixNano / 1000n;
    let toMicros = query.window.endUnixNano / 1000n + 1n;
    const pageSize = searchPageSize(query.limit);
    const hits: SearchHit[] = [];
    const seen = new Set<string>();
    for (;;) {
      const rows = await this.#query(
        buildSearchPage(tenant, query, services, fromMicros, toMicros, pageSize, catalogs),
      );
      // Traces in the order of their latest matching span: the first time the page shows them.
      const fresh = new Map<string, { traceId: Buffer; lastMatchUnixNano: bigint }>();
      for (const row of rows) {
        const key = (row.trace_id as Buffer).toString('hex');
        if (seen.has(key)) continue;
        seen.add(key);
        fresh.set(key, {
          traceId: row.trace_id as Buffer,
          lastMatchUnixNano: BigInt(row.start_time_unix_nano as string),
        });
      }
      if (fresh.size > 0) {
        const statement = buildTraceSummaries(
          tenant,
          [...fresh.values()].map((f) => f.traceId),
          query.traceConditions,
        );
        const summaries = new Map(
          (await this.#query(statement)).map((row) => [(row.trace_id as Buffer).toString('hex'), row]),
        );
        for (const [key, match] of fresh) {
          const row = summaries.get(key);
          if (row === undefined) continue;
          hits.push({ summary: rowToSummary(row), lastMatchUnixNano: match.lastMatchUnixNano });
          if (hits.length === query.limit) return hits;
        }
      }
      if (rows.length < pageSize) return hits;
      // The next page ends at this page's oldest span: inclusive (spans sharing that microsecond
      // may have been cut by the page size), unless that would not move the window.
      const oldest = BigInt(rows[rows.length - 1].start_time_unix_nano as string) / 1000n;
      toMicros = oldest + 1n < toMicros ? oldest + 1n : oldest;
    }
  }

  async getMatchingSpans(
    tenant: string,
    query: SearchQuery,
    traces: readonly TraceSummary[],
    perTrace: number,
  ): Promise<Map<string, { spans: StoredSpan[]; matched: number }>> {
    const byTrace = new Map<string, { spans: StoredSpan[]; matched: number }>();
    if (traces.length === 0) return byTrace;
    const catalogs = await this.#catalogMatches(tenant, query.spanConditions);
    const statement = buildMatchingSpans(tenant, query, traces, perTrace, catalogs);
    for (const row of await this.#query(statement)) {
      const key = (row.trace_id as Buffer).toString('hex');
      let entry = byTrace.get(key);
      if (entry === undefined) byTrace.set(key, (entry = { spans: [], matched: row.matched as number }));
      entry.spans.push(rowToSpan(row));
    }
    return byTrace;
  }

  async getServiceStats(
    tenant: string,
    traces: readonly TraceSummary[],
  ): Promise<Map<string, Map<string, ServiceStats>>> {
    const byTrace = new Map<string, Map<string, ServiceStats>>();
    if (traces.length === 0) return byTrace;
    const rows = await this.#query(SELECT_SERVICE_STATS, [tenant, traces.map((t) => t.traceId), ...boundsOf(traces)]);
    for (const row of rows) {
      const key = (row.trace_id as Buffer).toString('hex');
      let stats = byTrace.get(key);
      if (stats === undefined) byTrace.set(key, (stats = new Map()));
      stats.set(row.service_name as string, {
        spanCount: row.span_count as number,
        errorCount: row.error_count as number,
      });
    }
    return byTrace;
  }

  async listOperations(
    tenant: string,
    filter: { services?: string[]; spanNames?: string[]; spanKinds?: number[]; window?: TimeWindow } = {},
  ): Promise<Operation[]> {
    const rows = await this.#query(SELECT_OPERATIONS, [
      tenant,
      filter.window ? nanosToTimestamptz(filter.window.startUnixNano) : null,
      filter.window ? nanosToTimestamptz(filter.window.endUnixNano) : null,
      filter.services ?? null,
      filter.spanNames ?? null,
      filter.spanKinds ?? null,
    ]);
    return rows.map((row) => ({
      serviceName: row.service_name as string,
      spanName: row.span_name as string,
      spanKind: row.span_kind as number,
    }));
  }

  async getDependencies(tenant: string, window: TimeWindow): Promise<DependencyLink[]> {
    const rows = await this.#query(SELECT_DEPENDENCIES, [
      tenant,
      nanosToTimestamptz(window.startUnixNano),
      nanosToTimestamptz(window.endUnixNano),
    ]);
    return rows.map((row) => ({
      parent: row.parent as string,
      child: row.child as string,
      callCount: Number(row.call_count),
    }));
  }

  async listTagNames(
    tenant: string,
    window: TimeWindow,
    samplePerService: number,
  ): Promise<Record<TagScope, string[]>> {
    const names: Record<TagScope, string[]> = { span: [], resource: [] };
    const services = await this.#candidateServices(tenant, [], window);
    if (services.length === 0) return names;
    const rows = await this.#query(
      buildTagNames(tenant, services, window.startUnixNano / 1000n, window.endUnixNano / 1000n, samplePerService),
    );
    for (const row of rows) names[row.scope as TagScope].push(row.key as string);
    return names;
  }

  async listTagValues(
    tenant: string,
    attribute: AttributeRef,
    options: { window: TimeWindow; conditions: SpanCondition[]; samplePerService: number; maxValues: number },
  ): Promise<string[]> {
    const services = await this.#candidateServices(tenant, options.conditions, options.window);
    if (services.length === 0) return [];
    const statement = buildTagValues(
      tenant,
      attribute,
      {
        services,
        fromMicros: options.window.startUnixNano / 1000n,
        toMicros: options.window.endUnixNano / 1000n,
        conditions: options.conditions,
      },
      options.samplePerService,
      options.maxValues,
      await this.#catalogMatches(tenant, options.conditions),
    );
    return (await this.#query(statement)).map((row) => row.value as string);
  }

  /** The tenant's resources and attribute sets meeting each condition reading them (one lookup, or none). */
  async #catalogMatches(tenant: string, conditions: readonly SpanCondition[]): Promise<CatalogMatches | undefined> {
    const statement = buildCatalogMatches(tenant, conditions);
    if (statement === undefined) return undefined;
    return catalogMatchesFrom(conditions, await this.#query(statement));
  }

  /** Services that have an operation matching the conditions' equalities, seen in the window. */
  async #candidateServices(
    tenant: string,
    conditions: readonly SpanCondition[],
    window: TimeWindow,
  ): Promise<string[]> {
    const filter = catalogFilter(conditions);
    if (filter.none) return [];
    const operations = await this.listOperations(tenant, { ...filter, window });
    return [...new Set(operations.map((op) => op.serviceName))];
  }
}
