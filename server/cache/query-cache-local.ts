/**
 * The query cache of a single instance without REDIS_URL (DESIGN decision 8): the same contract and
 * staleness rule as the Redis one (server/query/query-cache.ts), in this process's memory, bounded
 * by QUERY_CACHE_MAX_BYTES and MAX_ENTRIES (query-cache-lru.ts). Ingest marks are synchronous here,
 * so none is ever lost; only the race between a PostgreSQL read and a commit needs the marks.
 *
 * Why it holds state: the entries, the ingest marks (trace or catalog → until when a store is
 * refused) and a generation. Marks are bounded too: past MAX_MARKS, everything is forgotten and the
 * generation moves, which refuses every store whose lookup came before.
 */
import type { SpanRow } from '../decode/types.js';
import type {
  CacheStamp,
  OperationsLookup,
  QueryCache,
  QueryCacheUpdates,
  TraceEntry,
  TraceLookup,
} from '../query/query-cache.js';
import type { Operation, StoredSpan, TimeWindow } from '../storage/reader-types.js';
import { BoundedLru } from './query-cache-lru.js';
import {
  SeenOperations,
  describeRows,
  estimateOperationsBytes,
  estimateTraceBytes,
  mayStore,
  operationMember,
  type QueryCachePolicy,
} from './query-cache-policy.js';

export const MAX_ENTRIES = 100_000;
const MAX_MARKS = 200_000;
/** Expired marks dropped from the front of the queue once this many have passed. */
const MARK_QUEUE_COMPACT_AT = 4096;
const WINDOW_BYTES = 128;

type Entry =
  | { kind: 'trace'; spans: StoredSpan[] }
  | { kind: 'window'; window: TimeWindow }
  | { kind: 'operations'; operations: Operation[]; members: Set<string> };

export interface LocalQueryCacheOptions {
  policy: QueryCachePolicy;
  maxBytes: number;
  maxEntries?: number;
  /** Milliseconds, for entry expiry; tests move it. */
  now?: () => number;
}

export class LocalQueryCache implements QueryCache, QueryCacheUpdates {
  readonly #policy: QueryCachePolicy;
  readonly #entries: BoundedLru<Entry>;
  readonly #marks = new Map<string, number>(); // entry key → performance.now() until which stores are refused
  readonly #markQueue: Array<{ key: string; until: number }> = []; // marks in the order set, from #markHead
  #markHead = 0;
  readonly #seen = new SeenOperations();
  #generation = 0;

  constructor(options: LocalQueryCacheOptions) {
    this.#policy = options.policy;
    this.#entries = new BoundedLru<Entry>(
      { maxEntries: options.maxEntries ?? MAX_ENTRIES, maxBytes: options.maxBytes },
      options.now,
    );
  }

  /** Entries and estimated bytes held now. */
  get usage(): { entries: number; bytes: number } {
    return { entries: this.#entries.size, bytes: this.#entries.bytes };
  }

  async lookupTrace(tenant: string, traceId: Buffer): Promise<TraceLookup> {
    const hex = traceId.toString('hex');
    const trace = this.#entries.get(keyOf('t', tenant, hex));
    if (trace?.kind === 'trace') return { kind: 'trace', spans: trace.spans };
    const window = this.#entries.get(keyOf('w', tenant, hex));
    if (window?.kind === 'window') return { kind: 'window', window: window.window, stamp: this.#stamp() };
    return { kind: 'miss', stamp: this.#stamp() };
  }

  async storeTrace(tenant: string, traceId: Buffer, stamp: CacheStamp, entry: TraceEntry): Promise<void> {
    const hex = traceId.toString('hex');
    const windowKey = keyOf('w', tenant, hex);
    if (!this.#mayStore(stamp, windowKey, entry.updatedAt)) return;
    const { ttlMs, maxTraceBytes } = this.#policy;
    this.#entries.set(windowKey, { kind: 'window', window: entry.window }, WINDOW_BYTES, ttlMs);
    const bytes = estimateTraceBytes(entry.spans);
    if (bytes <= maxTraceBytes) {
      this.#entries.set(keyOf('t', tenant, hex), { kind: 'trace', spans: [...entry.spans] }, bytes, ttlMs);
    }
  }

  async lookupOperations(tenant: string): Promise<OperationsLookup> {
    const cached = this.#entries.get(keyOf('o', tenant));
    if (cached?.kind === 'operations') return { kind: 'hit', operations: cached.operations };
    return { kind: 'miss', stamp: this.#stamp() };
  }

  async storeOperations(tenant: string, stamp: CacheStamp, operations: readonly Operation[]): Promise<void> {
    const key = keyOf('o', tenant);
    if (!this.#mayStore(stamp, key)) return;
    const members = new Set(operations.map((op) => operationMember(op.serviceName, op.spanName, op.spanKind)));
    const entry: Entry = { kind: 'operations', operations: [...operations], members };
    this.#entries.set(key, entry, estimateOperationsBytes(operations), this.#policy.ttlMs);
  }

  noteWritten(tenant: string, rows: readonly SpanRow[]): void {
    const written = describeRows(rows);
    for (const hex of written.traces) {
      this.#entries.delete(keyOf('t', tenant, hex));
      this.#mark(keyOf('w', tenant, hex));
    }
    const fresh = this.#seen.takeNew(tenant, written.operations);
    if (fresh.length === 0) return;
    const key = keyOf('o', tenant);
    const catalog = this.#entries.get(key);
    if (catalog?.kind === 'operations' && fresh.every((member) => catalog.members.has(member))) return;
    this.#mark(key);
  }

  #stamp(): CacheStamp {
    return { generation: String(this.#generation), atMs: performance.now() };
  }

  #mayStore(stamp: CacheStamp, key: string, updatedAt?: Date): boolean {
    if (stamp.generation !== String(this.#generation) || !mayStore(this.#policy, stamp, updatedAt)) return false;
    const until = this.#marks.get(key);
    return until === undefined || until <= performance.now();
  }

  /** Drops the entry and refuses stores for the quiet period. */
  #mark(key: string): void {
    this.#entries.delete(key);
    const now = performance.now();
    this.#expireMarks(now);
    const until = now + this.#policy.quietMs;
    this.#marks.set(key, until);
    this.#markQueue.push({ key, until });
    if (this.#marks.size > MAX_MARKS || this.#markQueue.length - this.#markHead > 2 * MAX_MARKS) {
      this.#entries.clear();
      this.#marks.clear();
      this.#markQueue.length = 0;
      this.#markHead = 0;
      this.#generation += 1;
    }
  }

  /**
   * Forgets the marks that expired, oldest first, from the queue of marks in the order they were
   * set (their expiry order: the quiet period is fixed). Walking the Map itself for them was linear
   * in the deleted entries V8 keeps at its front until a rehash: milliseconds per commit.
   */
  #expireMarks(now: number): void {
    const queue = this.#markQueue;
    let head = this.#markHead;
    while (head < queue.length && queue[head].until <= now) {
      const { key, until } = queue[head];
      if (this.#marks.get(key) === until) this.#marks.delete(key); // not marked again since
      head++;
    }
    if (head >= MARK_QUEUE_COMPACT_AT && head * 2 >= queue.length) {
      queue.splice(0, head);
      head = 0;
    }
    this.#markHead = head;
  }
}

/** An injective key: the tenant is length-prefixed, so no tenant name can end inside another's. */
function keyOf(kind: 't' | 'w' | 'o', tenant: string, id = ''): string {
  return `${kind}:${tenant.length}:${tenant}:${id}`;
}
