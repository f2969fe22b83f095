/**
 * The span writer, one transaction per write() (DESIGN decision 3), two ways:
 * - copy: COPY straight into spans, then one statement upserting the resources, attribute sets,
 *   trace summaries, operations and RED minutes computed in Node (write-summaries.ts), then COMMIT. The primary key
 *   refuses a span that is already stored (23505), which aborts the whole transaction;
 * - staged: only then, COPY → per-connection TEMP staging table → one INSERT … ON CONFLICT DO
 *   NOTHING that also upserts the summaries of the rows it inserted, then COMMIT.
 * Client retries are rare next to new spans, so almost every write pays only the first: PostgreSQL
 * parses each row once and skips the staging copy, the sort and the conflict checks
 * (loadtests/README.md has the measurements).
 *
 * State it holds, and why:
 * - which pooled connections already have their staging table (created once per connection);
 * - which UTC days are known to have a partition, so the common case costs no catalog lookups.
 *   The cache can go stale (maintenance dropped a partition); a write that then hits "no partition"
 *   (SQLSTATE 23514) forgets its days, creates them and retries once;
 * - which resources and attribute sets are known to be stored (CommittedCatalog), so a write sends
 *   only new ones; forgotten whenever the pool opens a connection or a write fails.
 *
 * Round trips per write: copy: BEGIN, COPY, summaries, COMMIT; staged: BEGIN, COPY, then INSERT and
 * COMMIT sent in one message.
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import pgCopyStreams from 'pg-copy-streams';
import type { Logger } from 'pino';
import { encodeCopyBinary, type EncodedBinaryRows } from './copy-binary.js';
import { encodeCopyRows } from './copy-text.js';
import { MS_PER_DAY } from './partitions.js';
import { rollbackQuietly, withClient } from './pool.js';
import { isDeadlock, isKeyCollision, isNoPartitionError } from './retryable.js';
import {
  BEGIN_WRITE,
  COPY_BINARY_INTO_SPANS,
  COPY_INTO_STAGE,
  CREATE_STAGE,
  INSERT_FROM_STAGE_AND_COMMIT,
  UPSERT_SUMMARIES,
} from './sql.js';
import type { PartitionManager, SpanBatch, SpanWriter, WriteOutcome } from './types.js';
import { summarizeWrite } from './write-summaries.js';
import { CommittedCatalog } from './write-catalog.js';

/** Staged writes of one batch before a deadlock is passed on (each costs PostgreSQL's deadlock_timeout). */
const STAGED_ATTEMPTS = 5;

export class PgSpanWriter implements SpanWriter {
  readonly #pool: pg.Pool;
  readonly #partitions: PartitionManager;
  readonly #log: Logger;
  readonly #staged = new WeakSet<pg.PoolClient>();
  readonly #knownDays = new Set<number>();
  readonly #committed = new CommittedCatalog();

  constructor(pool: pg.Pool, partitions: PartitionManager, log: Logger) {
    this.#pool = pool;
    this.#partitions = partitions;
    this.#log = log;
    // A new connection may reach another server (a failover, a promoted replica that missed the
    // last commits): what was committed before is not known there, so the catalog rows are sent again.
    pool.on('connect', () => this.#committed.clear());
  }

  async write(batches: readonly SpanBatch[]): Promise<WriteOutcome> {
    try {
      return await this.#write(batches);
    } catch (err) {
      this.#committed.clear(); // whatever failed, the next write proves its catalog rows again
      throw err;
    }
  }

  async #write(batches: readonly SpanBatch[]): Promise<WriteOutcome> {
    const encoded = encodeCopyBinary(batches);
    if (encoded.rowCount === 0) return { inserted: 0, duplicates: 0, path: 'copy' };
    await this.#ensureDays(encoded.days);
    try {
      return await this.#insert(batches, encoded);
    } catch (err) {
      if (!isNoPartitionError(err)) throw err;
      this.#log.warn(
        { days: [...encoded.days].map(isoDay) },
        'partition missing at insert; creating it and retrying once',
      );
      for (const day of encoded.days) this.#knownDays.delete(day);
      await this.#ensureDays(encoded.days);
      return this.#insert(batches, encoded);
    }
  }

  /**
   * The direct COPY, and the staged write when it meets a key already stored or being stored.
   * The direct COPY inserts in arrival order and the staged write in key order, so a staged write
   * can still deadlock with a direct one writing the same spans in another order, and PostgreSQL
   * aborts one of the two (40P01). An aborted direct write goes the staged way; an aborted staged
   * write, idempotent, is tried again: the other write has moved on in the meantime.
   */
  async #insert(batches: readonly SpanBatch[], encoded: EncodedBinaryRows): Promise<WriteOutcome> {
    try {
      await this.#copyDirect(encoded, batches);
      this.#committed.addAll(encoded.catalog);
      return { inserted: encoded.rowCount, duplicates: 0, path: 'copy' };
    } catch (err) {
      if (!isKeyCollision(err)) throw err;
    }
    for (let attempt = 1; ; attempt++) {
      try {
        const inserted = await this.#insertStaged(batches);
        this.#committed.addAll(encoded.catalog);
        return { inserted, duplicates: encoded.rowCount - inserted, path: 'staged' };
      } catch (err) {
        if (!isDeadlock(err) || attempt >= STAGED_ATTEMPTS) throw err;
        this.#log.info({ attempt, rows: encoded.rowCount }, 'staged write aborted by a deadlock; writing it again');
      }
    }
  }

  /** Creates the partitions of days not yet known to exist. Never holds a pooled client meanwhile. */
  async #ensureDays(days: Set<number>): Promise<void> {
    for (const day of days) {
      if (this.#knownDays.has(day)) continue;
      const at = new Date(day * MS_PER_DAY);
      await this.#partitions.ensureRange(at, at);
      this.#knownDays.add(day);
    }
  }

  /**
   * Which catalog rows a write may leave out is decided once it holds its connection: opening one
   * clears the committed catalog (see the constructor).
   */
  async #copyDirect(encoded: EncodedBinaryRows, batches: readonly SpanBatch[]): Promise<void> {
    await withClient(this.#pool, async (client) => {
      const summaries = summarizeWrite(batches, encoded.catalog, this.#committed);
      await client.query('BEGIN');
      try {
        await pipeline(Readable.from(encoded.chunks), client.query(pgCopyStreams.from(COPY_BINARY_INTO_SPANS)));
        await client.query(UPSERT_SUMMARIES, [
          summaries.resources,
          summaries.traces,
          summaries.operations,
          summaries.redMinutes,
          summaries.attributeSets,
        ]);
        await client.query('COMMIT');
      } catch (err) {
        await rollbackQuietly(client);
        throw err;
      }
    });
  }

  async #insertStaged(batches: readonly SpanBatch[]): Promise<number> {
    return withClient(this.#pool, async (client) => {
      const encoded = encodeCopyRows(batches, { committed: this.#committed });
      if (!this.#staged.has(client)) {
        await client.query(CREATE_STAGE);
        this.#staged.add(client);
      }
      await client.query(BEGIN_WRITE);
      try {
        await pipeline(Readable.from(encoded.chunks), client.query(pgCopyStreams.from(COPY_INTO_STAGE)));
        const results = (await client.query(INSERT_FROM_STAGE_AND_COMMIT)) as unknown as pg.QueryResult<{
          inserted: number;
        }>[];
        return results[0].rows[0].inserted;
      } catch (err) {
        await rollbackQuietly(client);
        throw err;
      }
    });
  }
}

function isoDay(day: number): string {
  return new Date(day * MS_PER_DAY).toISOString().slice(0, 10);
}
