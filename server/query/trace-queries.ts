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
import type { QueryCache } from './query-cache.js';

/** A search hit with what the Tempo search answer shows about it. */
export interface TempoSearchHit extends SearchHit {
  matched: StoredSpan[];
  matchedCount: number;
  services: Map<string, ServiceStats>;
}

export class TraceQueries {
  readonly #reader: TraceReader;
  readonly #cache: QueryCache;
  readonly #log: FastifyBaseLogger;

  constructor(reader: TraceReader, cache: QueryCache, log: FastifyBaseLogger) {
    this.#reader = reader;
    this.#cache = cache;
    this.#log = log;
  }

  /** A cache call that can only miss: a failure is logged and read as undefined. */
  async #fromCache<T>(what: string, call: () => Promise<T>): Promise<T | undefined> {
    try {
      return await call();
    } catch (err) {
      this.#log.warn({ err, what }, 'query cache failed; reading PostgreSQL instead');
      return undefined;
    }
  }

  #offer(what: string, call: () => Promise<void>): void {
    call().catch((err: unknown) => this.#log.warn({ err, what }, 'query cache set failed'));
  }

  /** The trace's spans sorted by start time, or undefined when this tenant has no such trace. */
  async getTrace(tenant: string, traceId: Buffer): Promise<StoredSpan[] | undefined> {
    const cached = await this.#fromCache('trace', () => this.#cache.getTrace(tenant, traceId));
    if (cached !== undefined) return cached;
    const window = await this.#fromCache('trace window', () => this.#cache.getTraceWindow(tenant, traceId));
    if (window !== undefined) {
      const spans = await this.#reader.getTraceSpans(tenant, traceId, window);
      return spans.length > 0 ? spans : undefined;
    }
    const trace = await this.#reader.getTrace(tenant, traceId);
    if (trace === undefined) return undefined;
    const { summary, spans } = trace;
    this.#offer('trace window', () => this.#cache.setTraceWindow(tenant, traceId, summary));
    this.#offer('trace', () => this.#cache.setTrace(tenant, traceId, summary, spans));
    return spans;
  }

  /** The tenant's catalog: every (service, operation, kind) stored within retention. */
  async operations(tenant: string): Promise<Operation[]> {
    const cached = await this.#fromCache('operations', () => this.#cache.getOperations(tenant));
    if (cached !== undefined) return cached;
    const operations = await this.#reader.listOperations(tenant);
    this.#offer('operations', () => this.#cache.setOperations(tenant, operations));
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
