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
import { ExpiryWalk } from '../expiry-walk.js';
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
  readonly #markExpiry = new ExpiryWalk(this.#marks, (until: number) => until);
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
    this.#markExpiry.forget(now); // bounds memory only: #mayStore compares the time itself
    this.#marks.delete(key); // re-inserted at the end: the Map stays in expiry order
    this.#marks.set(key, now + this.#policy.quietMs);
    if (this.#marks.size > MAX_MARKS) {
      this.#entries.clear();
      this.#marks.clear();
      this.#generation += 1;
    }
  }
}

/** An injective key: the tenant is length-prefixed, so no tenant name can end inside another's. */
function keyOf(kind: 't' | 'w' | 'o', tenant: string, id = ''): string {
  return `${kind}:${tenant.length}:${tenant}:${id}`;
}
