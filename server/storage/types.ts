/**
 * The seams between the batcher, the ops stage and PostgreSQL. Only storage/ imports pg.
 */
import type { SpanRow } from '../decode/types.js';
import type { TraceReader } from './reader-types.js';

/** The spans of one request, owned by one tenant. */
export interface SpanBatch {
  tenant: string;
  rows: SpanRow[];
}

export interface WriteResult {
  /** Rows newly stored. */
  inserted: number;
  /** Rows skipped because the same (tenant, trace_id, span_id, start_time) was already stored. */
  duplicates: number;
}

/**
 * How a write reached PostgreSQL: `copy`, straight into spans (every row was new); `staged`, through
 * the staging table because a row was already stored or a concurrent write held the same key.
 */
export type WritePath = 'copy' | 'staged';

export interface WriteOutcome extends WriteResult {
  path: WritePath;
}

export interface SpanWriter {
  /**
   * Stores every row of every batch in ONE transaction and resolves only once it is committed
   * with synchronous_commit=on. Idempotent on (tenant, trace_id, span_id, start_time): a row that
   * is already stored is skipped and counted as a duplicate, and the `traces` summaries count it
   * once. Creates a missing day partition on demand. Rejects on any failure, with nothing
   * committed; the error keeps PostgreSQL's SQLSTATE in `code` (see isRetryableStorageError).
   * Does not mutate the batches.
   */
  write(batches: readonly SpanBatch[]): Promise<WriteOutcome>;
}

export interface PartitionInfo {
  name: string;
  fromInclusive: Date;
  toExclusive: Date;
}

export interface PartitionStats extends PartitionInfo {
  /** Rows: exact when `exact`, otherwise PostgreSQL's estimate; undefined when never analyzed. */
  rows: number | undefined;
  exact: boolean;
  /** On-disk size with indexes and TOAST. */
  bytes: number;
}

export interface PartitionManager {
  /** Creates the daily partitions covering [from, to] that do not exist yet. Idempotent. */
  ensureRange(from: Date, to: Date): Promise<string[]>;
  /**
   * Drops whole partitions entirely older than `before`, trace summaries that ended before it,
   * catalog operations last seen before it, and RED rollup minutes before it.
   */
  dropBefore(before: Date): Promise<string[]>;
  list(): Promise<PartitionInfo[]>;
  /**
   * ANALYZEs the partitions of `at`'s day and the day before once they changed by 2 % of their
   * rows since their last analyze (partition-statistics.ts); returns the partitions analyzed. At
   * most one instance works at a time; the others return [].
   */
  refreshStatistics(at: Date): Promise<string[]>;
  /** Every partition with its rows (estimated unless `exact`), size and bounds, oldest first. */
  stats(options: { exact: boolean }): Promise<PartitionStats[]>;
  /**
   * Per-tenant retention: deletes one tenant's spans that started before `before` inside the
   * partitions that remain, in bounded batches, then its summaries and catalog rows past that point.
   * With dryRun nothing is deleted; `skipEndingBy` leaves out partitions that end by then (a dry
   * run of a drop that removes them first). Returns the number of spans (to be) deleted.
   */
  deleteTenantBefore(
    tenant: string,
    before: Date,
    options?: { dryRun?: boolean; skipEndingBy?: Date },
  ): Promise<number>;
}

export interface Storage {
  writer: SpanWriter;
  /** The query API's read side (trace-reader.ts), on the same pool. */
  reader: TraceReader;
  partitions: PartitionManager;
  /** Resolves when PostgreSQL answers a trivial query within the connect timeout. */
  ping(): Promise<void>;
  /** Runs `fn` only on the instance holding the maintenance advisory lock; returns false elsewhere. */
  withMaintenanceLock<T>(fn: () => Promise<T>): Promise<{ ran: boolean; result?: T }>;
  stop(): Promise<void>;
}
