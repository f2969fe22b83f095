/**
 * What the query routes ask, answered from the cache when it has it and from the storage reader
 * otherwise. Every method is tenant-scoped; API-specific shapes are the routes' business.
 */
import type { FastifyBaseLogger } from 'fastify';
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
} from '../storage/reader-types.js';
import type { Metrics } from '../ops/metrics.js';
import type { CacheStamp, QueryCache } from './query-cache.js';

/** A search hit with what the Tempo search answer shows about it. */
export interface TempoSearchHit extends SearchHit {
  matched: StoredSpan[];
  matchedCount: number;
  services: Map<string, ServiceStats>;
}

/** The counters of cache lookups: lookups of a kind = hits + misses + fallbacks. */
export type QueryCacheCounters = Pick<
  Metrics,
  'queryCacheHits' | 'queryCacheMisses' | 'queryCacheErrors' | 'queryCacheFallbacks'
>;

type LookupKind = 'trace' | 'trace_window' | 'operations';

export class TraceQueries {
  readonly #reader: TraceReader;
  readonly #cache: QueryCache;
  readonly #log: FastifyBaseLogger;
  readonly #counters: QueryCacheCounters | undefined;

  constructor(reader: TraceReader, cache: QueryCache, log: FastifyBaseLogger, counters?: QueryCacheCounters) {
    this.#reader = reader;
    this.#cache = cache;
    this.#log = log;
    this.#counters = counters;
  }

  /** A cache lookup that cannot fail: a failure is counted, logged and read as `unavailable`. */
  async #lookup<T extends { kind: string }>(
    kind: LookupKind,
    call: () => Promise<T>,
  ): Promise<T | { kind: 'unavailable' }> {
    try {
      return await call();
    } catch (err) {
      this.#counters?.queryCacheErrors.inc({ kind });
      this.#log.warn({ err, kind }, 'query cache lookup failed; reading PostgreSQL instead');
      return { kind: 'unavailable' };
    }
  }

  #count(counter: 'queryCacheHits' | 'queryCacheMisses' | 'queryCacheFallbacks', kind: LookupKind): void {
    this.#counters?.[counter].inc({ kind });
  }

  /** Offers a value to the cache without waiting; a failed store is counted and forgotten. */
  #offer(kind: LookupKind, stamp: CacheStamp | undefined, call: (stamp: CacheStamp) => Promise<void>): void {
    if (stamp === undefined) return;
    call(stamp).catch((err: unknown) => {
      this.#counters?.queryCacheErrors.inc({ kind });
      this.#log.warn({ err, kind }, 'query cache store failed');
    });
  }

  /** The trace's spans sorted by start time, or undefined when this tenant has no such trace. */
  async getTrace(tenant: string, traceId: Buffer): Promise<StoredSpan[] | undefined> {
    const lookup = await this.#lookup('trace', () => this.#cache.lookupTrace(tenant, traceId));
    if (lookup.kind === 'trace') {
      this.#count('queryCacheHits', 'trace');
      return lookup.spans;
    }
    if (lookup.kind === 'unavailable') {
      this.#count('queryCacheFallbacks', 'trace');
      return (await this.#reader.getTrace(tenant, traceId))?.spans;
    }
    this.#count('queryCacheMisses', 'trace');
    if (lookup.kind === 'window') {
      this.#count('queryCacheHits', 'trace_window');
      const { window, stamp } = lookup;
      const spans = await this.#reader.getTraceSpans(tenant, traceId, window);
      if (spans.length === 0) return undefined;
      this.#offer('trace', stamp, (s) => this.#cache.storeTrace(tenant, traceId, s, { window, spans }));
      return spans;
    }
    this.#count('queryCacheMisses', 'trace_window');
    const trace = await this.#reader.getTrace(tenant, traceId);
    if (trace === undefined) return undefined;
    const { summary, spans } = trace;
    const window = { startUnixNano: summary.firstStartUnixNano, endUnixNano: summary.lastEndUnixNano };
    this.#offer('trace', lookup.stamp, (s) =>
      this.#cache.storeTrace(tenant, traceId, s, { window, spans, updatedAt: summary.updatedAt }),
    );
    return spans;
  }

  /** The tenant's catalog: every (service, operation, kind) stored within retention. */
  async operations(tenant: string): Promise<Operation[]> {
    const lookup = await this.#lookup('operations', () => this.#cache.lookupOperations(tenant));
    if (lookup.kind === 'hit') {
      this.#count('queryCacheHits', 'operations');
      return lookup.operations;
    }
    this.#count(lookup.kind === 'miss' ? 'queryCacheMisses' : 'queryCacheFallbacks', 'operations');
    const operations = await this.#reader.listOperations(tenant);
    if (lookup.kind === 'miss') {
      this.#offer('operations', lookup.stamp, (s) => this.#cache.storeOperations(tenant, s, operations));
    }
    return operations;
  }

  /** Catalog operations seen in `window` (from PostgreSQL: windows vary too much to cache). */
  operationsIn(tenant: string, window: TimeWindow, filter: { services?: string[] } = {}): Promise<Operation[]> {
    return this.#reader.listOperations(tenant, { ...filter, window });
  }

  async services(tenant: string): Promise<string[]> {
    return [...new Set((await this.operations(tenant)).map((op) => op.serviceName))];
  }

  /** Search hits with every span of each trace (Jaeger answers searches with whole traces). */
  async searchTraces(tenant: string, query: SearchQuery): Promise<Array<{ hit: SearchHit; spans: StoredSpan[] }>> {
    const hits = await this.#reader.searchTraces(tenant, query);
    const spans = await this.#reader.getSpansOfTraces(
      tenant,
      hits.map((h) => h.summary),
    );
    return hits
      .map((hit) => ({ hit, spans: spans.get(hit.summary.traceId.toString('hex')) ?? [] }))
      .filter((entry) => entry.spans.length > 0);
  }

  /** Search hits with their first `perTrace` matching spans and per-service stats (Tempo search). */
  async searchTempo(tenant: string, query: SearchQuery, perTrace: number): Promise<TempoSearchHit[]> {
    const hits = await this.#reader.searchTraces(tenant, query);
    const summaries = hits.map((h) => h.summary);
    const [matching, stats] = await Promise.all([
      this.#reader.getMatchingSpans(tenant, query, summaries, perTrace),
      this.#reader.getServiceStats(tenant, summaries),
    ]);
    return hits.map((hit) => {
      const key = hit.summary.traceId.toString('hex');
      const match = matching.get(key);
      return {
        ...hit,
        matched: match?.spans ?? [],
        matchedCount: match?.matched ?? 0,
        services: stats.get(key) ?? new Map(),
      };
    });
  }

  dependencies(tenant: string, window: TimeWindow): Promise<DependencyLink[]> {
    return this.#reader.getDependencies(tenant, window);
  }

  tagNames(tenant: string, window: TimeWindow, samplePerService: number): Promise<Record<TagScope, string[]>> {
    return this.#reader.listTagNames(tenant, window, samplePerService);
  }

  tagValues(
    tenant: string,
    attribute: AttributeRef,
    options: { window: TimeWindow; conditions: SpanCondition[]; samplePerService: number; maxValues: number },
  ): Promise<string[]> {
    return this.#reader.listTagValues(tenant, attribute, options);
  }
}
