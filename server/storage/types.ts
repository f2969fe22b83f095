/**
 * The seams between the batcher, the ops stage and PostgreSQL. Only storage/ imports pg.
 */
import type { SpanRow } from '../decode/types.js';

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

export interface SpanWriter {
  /**
   * Stores every row of every batch in ONE transaction and resolves only once it is committed
   * with synchronous_commit=on. Idempotent on (tenant, trace_id, span_id, start_time): a row that
   * is already stored is skipped and counted as a duplicate, and the `traces` summaries count it
   * once. Creates a missing day partition on demand. Rejects on any failure, with nothing
   * committed; the error keeps PostgreSQL's SQLSTATE in `code` (see isRetryableStorageError).
   * Does not mutate the batches.
   */
  write(batches: readonly SpanBatch[]): Promise<WriteResult>;
}

export interface PartitionInfo {
  name: string;
  fromInclusive: Date;
  toExclusive: Date;
}

export interface PartitionManager {
  /** Creates the daily partitions covering [from, to] that do not exist yet. Idempotent. */
  ensureRange(from: Date, to: Date): Promise<string[]>;
  /** Drops whole partitions entirely older than `before`, and trace summaries that ended before it. */
  dropBefore(before: Date): Promise<string[]>;
  list(): Promise<PartitionInfo[]>;
}

export interface Storage {
  writer: SpanWriter;
  partitions: PartitionManager;
  /** Resolves when PostgreSQL answers a trivial query within the connect timeout. */
  ping(): Promise<void>;
  /** Runs `fn` only on the instance holding the maintenance advisory lock; returns false elsewhere. */
  withMaintenanceLock<T>(fn: () => Promise<T>): Promise<{ ran: boolean; result?: T }>;
  stop(): Promise<void>;
}
