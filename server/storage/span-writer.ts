/**
 * The span writer: COPY → per-connection TEMP staging table → one INSERT … ON CONFLICT DO NOTHING
 * that also upserts the trace summaries, then COMMIT, in one transaction per write() (DESIGN
 * decision 3; loadtests/bench-write.ts measured the alternatives).
 *
 * State it holds, and why:
 * - which pooled connections already have their staging table (created once per connection);
 * - which UTC days are known to have a partition, so the common case costs no catalog lookups.
 *   The cache can go stale (maintenance dropped a partition); a write that then hits "no partition"
 *   (SQLSTATE 23514) forgets its days, creates them and retries once.
 *
 * Round trips per write: BEGIN, COPY, then INSERT and COMMIT sent in one message.
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import pgCopyStreams from 'pg-copy-streams';
import type { Logger } from 'pino';
import { encodeCopyRows, type EncodedRows } from './copy-text.js';
import { MS_PER_DAY } from './partitions.js';
import { rollbackQuietly, withClient } from './pool.js';
import { isNoPartitionError } from './retryable.js';
import { BEGIN_WRITE, COPY_INTO_STAGE, CREATE_STAGE, INSERT_FROM_STAGE_AND_COMMIT } from './sql.js';
import type { PartitionManager, SpanBatch, SpanWriter, WriteResult } from './types.js';

export class PgSpanWriter implements SpanWriter {
  readonly #pool: pg.Pool;
  readonly #partitions: PartitionManager;
  readonly #log: Logger;
  readonly #staged = new WeakSet<pg.PoolClient>();
  readonly #knownDays = new Set<number>();

  constructor(pool: pg.Pool, partitions: PartitionManager, log: Logger) {
    this.#pool = pool;
    this.#partitions = partitions;
    this.#log = log;
  }

  async write(batches: readonly SpanBatch[]): Promise<WriteResult> {
    const encoded = encodeCopyRows(batches);
    if (encoded.rowCount === 0) return { inserted: 0, duplicates: 0 };
    await this.#ensureDays(encoded.days);
    let inserted: number;
    try {
      inserted = await this.#insert(encoded);
    } catch (err) {
      if (!isNoPartitionError(err)) throw err;
      this.#log.warn(
        { days: [...encoded.days].map(isoDay) },
        'partition missing at insert; creating it and retrying once',
      );
      for (const day of encoded.days) this.#knownDays.delete(day);
      await this.#ensureDays(encoded.days);
      inserted = await this.#insert(encoded);
    }
    return { inserted, duplicates: encoded.rowCount - inserted };
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

  async #insert(encoded: EncodedRows): Promise<number> {
    return withClient(this.#pool, async (client) => {
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
