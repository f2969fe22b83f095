/**
 * The seam where hot lookups plug in (DESIGN decision 6: Redis caches trace id → time range, the
 * service / operation catalog and assembled traces; it is never the only copy of anything).
 * TraceQueries (trace-queries.ts) consults the cache first and PostgreSQL on a miss, then offers
 * what it read back to the cache.
 *
 * Contract for implementations:
 * - A get may miss (undefined) at any time; a set may be dropped. Answers stay correct either way.
 * - A rejected promise is treated as a miss / a dropped set, counted and logged by the caller, so a
 *   cache that is down degrades to PostgreSQL, never to an error for the client.
 * - Keys are tenant-scoped: a value set for one tenant is never returned for another.
 * - A trace window returned must cover every stored span of the trace (spans are fetched only
 *   within it), and a trace returned must be complete: staleness (spans that arrived after the set)
 *   is the cache's to handle, e.g. by caching only traces whose summary.updatedAt is old enough.
 * - Returned arrays belong to the caller, which does not mutate them.
 */
import type { Operation, StoredSpan, TimeWindow, TraceSummary } from '../storage/reader-types.js';

export interface QueryCache {
  /** [first start, last end] of a trace's spans, or undefined on a miss. */
  getTraceWindow(tenant: string, traceId: Buffer): Promise<TimeWindow | undefined>;
  /** Offered after a summary was read from PostgreSQL. */
  setTraceWindow(tenant: string, traceId: Buffer, summary: TraceSummary): Promise<void>;
  /** The assembled trace (its spans sorted by start time), or undefined on a miss. */
  getTrace(tenant: string, traceId: Buffer): Promise<StoredSpan[] | undefined>;
  /** Offered after a trace was read from PostgreSQL, with the summary it was read by. */
  setTrace(tenant: string, traceId: Buffer, summary: TraceSummary, spans: readonly StoredSpan[]): Promise<void>;
  /** The tenant's whole service / operation catalog, or undefined on a miss. */
  getOperations(tenant: string): Promise<Operation[] | undefined>;
  setOperations(tenant: string, operations: readonly Operation[]): Promise<void>;
}

/** No cache: every lookup misses, so every answer comes from PostgreSQL. */
export class PassThroughQueryCache implements QueryCache {
  async getTraceWindow(): Promise<TimeWindow | undefined> {
    return undefined;
  }

  async setTraceWindow(): Promise<void> {}

  async getTrace(): Promise<StoredSpan[] | undefined> {
    return undefined;
  }

  async setTrace(): Promise<void> {}

  async getOperations(): Promise<Operation[] | undefined> {
    return undefined;
  }

  async setOperations(): Promise<void> {}
}
