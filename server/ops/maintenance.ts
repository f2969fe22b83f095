/**
 * Partition maintenance: creates the daily partitions of the accepted window ahead of time, drops
 * whole partitions past retention, and applies per-tenant retention (TENANT_RETENTION_DAYS) by
 * deleting those tenants' older spans inside the partitions that remain. Holds a timer; only the instance holding the PostgreSQL
 * maintenance advisory lock does the work, so any number of instances can run this loop.
 */
import type { Logger } from 'pino';
import type { StorageConfig } from '../config.js';
import type { Storage } from '../storage/types.js';
import type { Metrics } from './metrics.js';

const MS_PER_DAY = 86_400_000;

export interface MaintenanceResult {
  ran: boolean;
  created: string[];
  dropped: string[];
  /** Spans deleted by per-tenant retention, by tenant (only when the run happened). */
  tenantSpansDeleted?: Record<string, number>;
}

export class PartitionMaintenance {
  readonly #storage: Storage;
  readonly #config: StorageConfig;
  readonly #metrics: Metrics;
  readonly #log: Logger;
  readonly #now: () => number;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<MaintenanceResult> | undefined;
  #stopped = false;

  constructor(storage: Storage, config: StorageConfig, metrics: Metrics, log: Logger, now: () => number = Date.now) {
    this.#storage = storage;
    this.#config = config;
    this.#metrics = metrics;
    this.#log = log;
    this.#now = now;
  }

  /** Runs once now (so a fresh database has its partitions before the first span), then periodically. */
  async start(): Promise<void> {
    await this.runOnce();
    this.#arm();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#running?.catch(() => undefined);
  }

  runOnce(): Promise<MaintenanceResult> {
    this.#running ??= this.#run().finally(() => (this.#running = undefined));
    return this.#running;
  }

  #arm(): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.runOnce()
        .catch((err: unknown) => this.#log.warn({ err }, 'partition maintenance failed; will retry'))
        .finally(() => this.#arm());
    }, this.#config.maintenanceIntervalMs);
    this.#timer.unref();
  }

  async #run(): Promise<MaintenanceResult> {
    const now = this.#now();
    const oldest = new Date(now - this.#config.retentionDays * MS_PER_DAY);
    const newest = new Date(now + this.#config.partitionsAheadDays * MS_PER_DAY);
    const outcome = await this.#storage.withMaintenanceLock(async () => {
      const created = await this.#storage.partitions.ensureRange(oldest, newest);
      const dropped = await this.#storage.partitions.dropBefore(oldest);
      const tenantSpansDeleted: Record<string, number> = {};
      for (const [tenant, days] of Object.entries(this.#config.tenantRetentionDays ?? {})) {
        if (days >= this.#config.retentionDays) continue; // whole-partition retention covers it
        const before = new Date(now - days * MS_PER_DAY);
        tenantSpansDeleted[tenant] = await this.#storage.partitions.deleteTenantBefore(tenant, before);
      }
      return { created, dropped, tenantSpansDeleted };
    });
    if (!outcome.ran || !outcome.result) return { ran: false, created: [], dropped: [] };
    const { created, dropped, tenantSpansDeleted } = outcome.result;
    this.#metrics.partitionsCreated.inc(created.length);
    this.#metrics.partitionsDropped.inc(dropped.length);
    const purged = Object.values(tenantSpansDeleted).some((n) => n > 0);
    if (created.length > 0 || dropped.length > 0 || purged) {
      this.#log.info({ created, dropped, tenantSpansDeleted }, 'partitions maintained');
    }
    return { ran: true, created, dropped, tenantSpansDeleted };
  }
}
