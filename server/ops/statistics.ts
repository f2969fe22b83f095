/**
 * Keeps the planner statistics of the newest partitions current (storage/partition-statistics.ts)
 * by asking storage every STATISTICS_INTERVAL_MS whether they grew enough to re-analyze. Holds a
 * timer; a failed run is logged and retried at the next tick. Several instances may run this loop:
 * storage lets one of them work at a time.
 */
import type { Logger } from 'pino';
import type { Storage } from '../storage/types.js';

export const STATISTICS_INTERVAL_MS = 60_000;

export class PartitionStatistics {
  readonly #storage: Storage;
  readonly #log: Logger;
  readonly #intervalMs: number;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #stopped = false;

  constructor(storage: Storage, log: Logger, intervalMs = STATISTICS_INTERVAL_MS) {
    this.#storage = storage;
    this.#log = log;
    this.#intervalMs = intervalMs;
  }

  start(): void {
    this.#arm();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#running;
  }

  /** One refresh now; never rejects. */
  runOnce(): Promise<void> {
    this.#running ??= this.#storage.partitions
      .refreshStatistics(new Date())
      .then(
        (analyzed) => {
          if (analyzed.length > 0) this.#log.debug({ partitions: analyzed }, 'partition statistics refreshed');
        },
        (err: unknown) => this.#log.warn({ err }, 'refreshing partition statistics failed; retrying at the next tick'),
      )
      .finally(() => (this.#running = undefined));
    return this.#running;
  }

  #arm(): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      void this.runOnce().then(() => this.#arm());
    }, this.#intervalMs);
    this.#timer.unref();
  }
}
