/**
 * The seam where hot lookups plug in (DESIGN decision 6: a cache keeps trace id → time range, the
 * service / operation catalog and recently assembled traces; it is never the only copy of
 * anything). TraceQueries (trace-queries.ts) looks a value up first, reads PostgreSQL on a miss and
 * offers what it read back with the stamp of its lookup; ingest tells the cache what it committed.
 * Implementations: server/cache/query-cache-redis.ts (REDIS_URL set) and query-cache-local.ts
 * (in-process, one instance).
 *
 * The staleness rule, which every implementation keeps:
 * 1. Only a quiet trace is stored: its summary has not changed for QUERY_CACHE_QUIET_MS
 *    (`updatedAt`), and no ingest has marked it within that period (below).
 * 2. After each commit, ingest marks every trace of the request — it drops the cached trace and its
 *    window and leaves a marker that lives QUERY_CACHE_QUIET_MS — and drops the tenant's catalog
 *    when an operation the cached catalog lacks was written. The marks are issued before the
 *    request is answered, never waited for.
 * 3. A store carries the stamp of the lookup that missed. It is refused when the entry was marked
 *    since, when the cache's generation moved since, or when more than the quiet period minus a
 *    margin passed since the lookup (a marker may have expired meanwhile). So a value read from
 *    PostgreSQL before a commit can never be stored after that commit's mark.
 * 4. An implementation that could not deliver a mark (Redis down, slow, or too much pending work:
 *    marks are dropped rather than queued) moves the generation before it reads or marks again,
 *    and so does one that reconnected to Redis (a restart or a failover may have kept stale values
 *    or lost marks). A new generation hides everything cached before it.
 * The one gap left: instance A cannot reach Redis while instance B can; B may then serve a trace
 * cached before A's writes until A reaches Redis again (A then moves the generation) or the entry
 * expires (QUERY_CACHE_TTL_S). Values for one tenant are never returned for another.
 *
 * Contract for implementations:
 * - A lookup may miss at any time; a store or a mark may be dropped. Answers stay correct.
 * - `unavailable`: the cache was not asked (down, breaker open). A rejected promise: it failed.
 *   The caller reads PostgreSQL either way, and counts the fallback.
 * - A trace window returned covers every stored span of the trace (spans are fetched within it);
 *   a trace returned is complete (its spans sorted by start time, as the reader returns them).
 * - Returned arrays belong to the caller, which does not mutate them; stored ones likewise.
 */
import type { SpanRow } from '../decode/types.js';
import type { Operation, StoredSpan, TimeWindow } from '../storage/reader-types.js';

/** Where a lookup that missed stood: pass it back to the store that follows. Opaque to callers. */
export interface CacheStamp {
  readonly generation: string;
  /** performance.now() when the lookup answered. */
  readonly atMs: number;
}

export type TraceLookup =
  | { kind: 'trace'; spans: StoredSpan[] }
  | { kind: 'window'; window: TimeWindow; stamp: CacheStamp }
  | { kind: 'miss'; stamp?: CacheStamp }
  | { kind: 'unavailable' };

export type OperationsLookup =
  { kind: 'hit'; operations: Operation[] } | { kind: 'miss'; stamp?: CacheStamp } | { kind: 'unavailable' };

/** A trace read from PostgreSQL, offered to the cache. */
export interface TraceEntry {
  window: TimeWindow;
  spans: readonly StoredSpan[];
  /** The summary's updatedAt; absent when the trace was read through a cached window. */
  updatedAt?: Date;
}

export interface QueryCache {
  /** The assembled trace, or else its window, or a miss. */
  lookupTrace(tenant: string, traceId: Buffer): Promise<TraceLookup>;
  /** Offered after a miss (or a window hit) with that lookup's stamp; may be refused silently. */
  storeTrace(tenant: string, traceId: Buffer, stamp: CacheStamp, entry: TraceEntry): Promise<void>;
  /** The tenant's whole catalog, in the reader's order. */
  lookupOperations(tenant: string): Promise<OperationsLookup>;
  storeOperations(tenant: string, stamp: CacheStamp, operations: readonly Operation[]): Promise<void>;
}

/** The ingest side: what keeps cached values current. */
export interface QueryCacheUpdates {
  /**
   * Called once the rows' transaction committed (or may have), before the request is answered.
   * Never throws and never waits: the work is started (or dropped, and accounted for by rule 4).
   */
  noteWritten(tenant: string, rows: readonly SpanRow[]): void;
}

/** No cache: every lookup misses, so every answer comes from PostgreSQL. */
export class PassThroughQueryCache implements QueryCache, QueryCacheUpdates {
  async lookupTrace(): Promise<TraceLookup> {
    return { kind: 'miss' };
  }

  async storeTrace(): Promise<void> {}

  async lookupOperations(): Promise<OperationsLookup> {
    return { kind: 'miss' };
  }

  async storeOperations(): Promise<void> {}

  noteWritten(): void {}
}
