/**
 * The query cache in Redis, shared by every instance (keys and scripts: query-cache-scripts.ts;
 * the staleness rule: server/query/query-cache.ts). Its own connection (redis-client.ts: command
 * timeouts, no offline queue, a breaker), so a large trace never delays a rate-limit decision.
 * While Redis is down or the breaker is open, lookups answer `unavailable` at once and ingest
 * updates are dropped; a slow Redis costs one command timeout, then the breaker's pause.
 *
 * Why it holds state: the generation bookkeeping of rule 4. Any failed or dropped command, and any
 * new connection (the first included: a crashed instance may have left marks undelivered), makes
 * the next script this instance runs move the generation first, atomically with its own work.
 * Ingest updates in flight are bounded (MAX_PENDING_UPDATES); past that they are dropped, never
 * queued. SeenOperations keeps catalog updates to operations this instance had not seen yet.
 */
import type { Logger } from 'pino';
import type { Metrics } from '../ops/metrics.js';
import type {
  CacheStamp,
  OperationsLookup,
  QueryCache,
  QueryCacheUpdates,
  TraceEntry,
  TraceLookup,
} from '../query/query-cache.js';
import type { SpanRow } from '../decode/types.js';
import type { Operation } from '../storage/reader-types.js';
import {
  decodeOperations,
  decodeTrace,
  decodeWindow,
  encodeOperations,
  encodeTrace,
  encodeWindow,
} from './query-cache-codec.js';
import {
  SeenOperations,
  describeRows,
  estimateTraceBytes,
  mayStore,
  operationMember,
  type QueryCachePolicy,
} from './query-cache-policy.js';
import {
  LOOKUP_OPERATIONS_LUA,
  LOOKUP_TRACE_LUA,
  NOTE_WRITTEN_LUA,
  STORE_OPERATIONS_LUA,
  STORE_TRACE_LUA,
} from './query-cache-scripts.js';
import type { RedisClient } from './redis-client.js';

/** Ingest updates sent and not yet answered; more are dropped (and the generation moves). */
export const MAX_PENDING_UPDATES = 64;
/** A request touching more traces than this moves the generation instead of marking each. */
const MAX_TRACES_PER_UPDATE = 4096;

export interface RedisQueryCacheOptions {
  redis: RedisClient;
  keyPrefix: string;
  policy: QueryCachePolicy;
  metrics: Pick<Metrics, 'queryCacheErrors' | 'queryCacheUpdatesDropped'>;
  log: Pick<Logger, 'debug'>;
}

interface BumpState {
  flag: '0' | '1';
  connections: number;
  failures: number;
}

export class RedisQueryCache implements QueryCache, QueryCacheUpdates {
  readonly #redis: RedisClient;
  readonly #options: RedisQueryCacheOptions;
  readonly #genKey: string;
  readonly #seen = new SeenOperations();
  #failures = 0; // failed or dropped commands so far
  #bumpedAt = { connections: 0, failures: 0 }; // what the last generation move covered
  #pendingUpdates = 0;

  constructor(options: RedisQueryCacheOptions) {
    this.#options = options;
    this.#redis = options.redis;
    this.#genKey = `${options.keyPrefix}qc:v1:gen`;
  }

  async lookupTrace(tenant: string, traceId: Buffer): Promise<TraceLookup> {
    if (!this.#redis.available) return { kind: 'unavailable' };
    const [generation, what, value] = (await this.#run(LOOKUP_TRACE_LUA, (flag) => [
      flag,
      this.#base(tenant),
      traceId.toString('hex'),
    ])) as [string, string, string];
    const stamp: CacheStamp = { generation, atMs: performance.now() };
    if (what === 't') return { kind: 'trace', spans: decodeTrace(value, traceId) };
    if (what === 'w') return { kind: 'window', window: decodeWindow(value), stamp };
    return { kind: 'miss', stamp };
  }

  async storeTrace(tenant: string, traceId: Buffer, stamp: CacheStamp, entry: TraceEntry): Promise<void> {
    const { policy } = this.#options;
    if (!mayStore(policy, stamp, entry.updatedAt) || !this.#mayWrite()) return;
    let trace = '';
    if (estimateTraceBytes(entry.spans) <= policy.maxTraceBytes) {
      const encoded = encodeTrace(traceId, entry.spans);
      if (encoded === undefined) return;
      if (encoded.length <= policy.maxTraceBytes) trace = encoded;
    }
    await this.#run(STORE_TRACE_LUA, () => [
      stamp.generation,
      this.#base(tenant),
      traceId.toString('hex'),
      policy.ttlMs,
      encodeWindow(entry.window),
      trace,
    ]);
  }

  async lookupOperations(tenant: string): Promise<OperationsLookup> {
    if (!this.#redis.available) return { kind: 'unavailable' };
    const [generation, value] = (await this.#run(LOOKUP_OPERATIONS_LUA, (flag) => [flag, this.#base(tenant)])) as [
      string,
      string,
    ];
    if (value !== '') return { kind: 'hit', operations: decodeOperations(value) };
    return { kind: 'miss', stamp: { generation, atMs: performance.now() } };
  }

  async storeOperations(tenant: string, stamp: CacheStamp, operations: readonly Operation[]): Promise<void> {
    const { policy } = this.#options;
    if (!mayStore(policy, stamp) || !this.#mayWrite()) return;
    const members = operations.map((op) => operationMember(op.serviceName, op.spanName, op.spanKind));
    await this.#run(STORE_OPERATIONS_LUA, () => [
      stamp.generation,
      this.#base(tenant),
      policy.ttlMs,
      encodeOperations(operations),
      ...members,
    ]);
  }

  noteWritten(tenant: string, rows: readonly SpanRow[]): void {
    const written = describeRows(rows);
    const operations = this.#seen.takeNew(tenant, written.operations);
    const traces = written.traces.length > MAX_TRACES_PER_UPDATE ? [] : written.traces;
    if (!this.#redis.available || this.#pendingUpdates >= MAX_PENDING_UPDATES) {
      this.#failures += 1;
      this.#options.metrics.queryCacheUpdatesDropped.inc();
      return;
    }
    if (traces.length < written.traces.length) this.#failures += 1; // too many to mark: move the generation
    this.#pendingUpdates += 1;
    void this.#run(NOTE_WRITTEN_LUA, (flag) => [
      flag,
      this.#base(tenant),
      this.#options.policy.quietMs,
      traces.length,
      ...traces,
      ...operations,
    ])
      .catch((err: unknown) => {
        this.#options.metrics.queryCacheErrors.inc({ kind: 'update' });
        this.#options.log.debug({ err, tenant }, 'query cache update failed; the generation moves next');
      })
      .finally(() => (this.#pendingUpdates -= 1));
  }

  #base(tenant: string): string {
    return `${this.#options.keyPrefix}qc:v1:{${encodeURIComponent(tenant)}}:g`;
  }

  /** A store waits for the generation to move after a failure: it may hold a value read too early. */
  #mayWrite(): boolean {
    return this.#redis.available && this.#bumpState().flag === '0';
  }

  #bumpState(): BumpState {
    const connections = this.#redis.connections;
    const failures = this.#failures;
    const due = connections !== this.#bumpedAt.connections || failures !== this.#bumpedAt.failures;
    return { flag: due ? '1' : '0', connections, failures };
  }

  /** Runs a script (sent at once, before this returns); any failure counts toward rule 4. */
  async #run(source: string, args: (flag: '0' | '1') => Array<string | number>): Promise<unknown> {
    const state = this.#bumpState();
    try {
      const result = await this.#redis.runScript(source, [this.#genKey], args(state.flag));
      if (state.flag === '1' && state.failures >= this.#bumpedAt.failures) {
        this.#bumpedAt = { connections: state.connections, failures: state.failures };
      }
      return result;
    } catch (err) {
      this.#failures += 1;
      throw err;
    }
  }
}
