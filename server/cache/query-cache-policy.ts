/**
 * The rules both query caches share (the staleness rule is in server/query/query-cache.ts): when a
 * store may follow its lookup, how big a trace may be, and what a committed request touched.
 *
 * Why it holds state: SeenOperations remembers, per tenant, the operations this instance has
 * already seen committed, so ingest tells the cache only about operations that may be new to the
 * catalog instead of every operation of every request.
 */
import type { CacheConfig } from '../config.js';
import type { SpanRow } from '../decode/types.js';
import type { CacheStamp } from '../query/query-cache.js';
import type { Operation, StoredSpan } from '../storage/reader-types.js';

export interface QueryCachePolicy {
  /** Lifetime of traces, windows and catalogs. */
  ttlMs: number;
  /** A trace is stored only once unchanged this long; ingest marks live this long. */
  quietMs: number;
  /** Traces estimated bigger than this are not stored (their window still is). */
  maxTraceBytes: number;
}

export function policyFrom(cache: CacheConfig): QueryCachePolicy {
  return {
    ttlMs: cache.queryTtlS * 1000,
    quietMs: cache.queryQuietMs,
    maxTraceBytes: Math.floor(cache.queryMaxBytes / 16),
  };
}

/**
 * How long after its lookup a store may still be sent: less than a mark's lifetime, with a margin
 * for the clocks of Redis and this process, so a mark made after the lookup is still there.
 */
export function storeDeadlineMs(policy: QueryCachePolicy): number {
  return policy.quietMs - Math.min(policy.quietMs / 4, 1000);
}

/** Rule 1 and the time part of rule 3 of the staleness rule. */
export function mayStore(policy: QueryCachePolicy, stamp: CacheStamp, updatedAt?: Date): boolean {
  if (performance.now() - stamp.atMs > storeDeadlineMs(policy)) return false;
  return updatedAt === undefined || Date.now() - updatedAt.getTime() >= policy.quietMs;
}

const SPAN_OVERHEAD_BYTES = 160;

/** Roughly the bytes a trace takes in memory or encoded, without encoding it. */
export function estimateTraceBytes(spans: readonly StoredSpan[]): number {
  let bytes = 64;
  for (const s of spans) {
    bytes +=
      SPAN_OVERHEAD_BYTES +
      s.name.length +
      s.serviceName.length +
      s.traceState.length +
      s.statusMessage.length +
      s.attributes.length +
      s.resourceAttributes.length +
      s.scopeName.length +
      s.scopeVersion.length +
      s.scopeAttributes.length +
      s.events.length +
      s.links.length;
  }
  return bytes;
}

export function estimateOperationsBytes(operations: readonly Operation[]): number {
  let bytes = 64;
  for (const op of operations) bytes += 32 + op.serviceName.length + op.spanName.length;
  return bytes;
}

/** One catalog entry as a string, the same whether it came from PostgreSQL or from a span row. */
export function operationMember(serviceName: string, spanName: string, spanKind: number): string {
  return JSON.stringify([serviceName, spanName, spanKind]);
}

/** What one committed request touched: its traces (hex ids) and its distinct operations. */
export interface WrittenKeys {
  traces: string[];
  operations: string[];
}

export function describeRows(rows: readonly SpanRow[]): WrittenKeys {
  const traces = new Set<string>();
  const operations = new Map<string, Map<string, number>>(); // service → span name → bits of OTLP kinds 0..5
  let previous: Buffer | undefined;
  for (const row of rows) {
    if (previous === undefined || !row.traceId.equals(previous)) {
      traces.add(row.traceId.toString('hex'));
      previous = row.traceId;
    }
    let names = operations.get(row.serviceName);
    if (names === undefined) operations.set(row.serviceName, (names = new Map()));
    names.set(row.name, (names.get(row.name) ?? 0) | (1 << row.kind));
  }
  const members: string[] = [];
  for (const [service, names] of operations) {
    for (const [name, kinds] of names) {
      for (let kind = 0; kind <= 5; kind++) if (kinds & (1 << kind)) members.push(operationMember(service, name, kind));
    }
  }
  return { traces: [...traces], operations: members };
}

const MAX_SEEN_OPERATIONS = 100_000;

/** Operations this instance saw committed, per tenant; bounded (forgets everything when full). */
export class SeenOperations {
  readonly #byTenant = new Map<string, Set<string>>();
  #size = 0;

  /** The members not seen before for this tenant, now remembered. */
  takeNew(tenant: string, members: readonly string[]): string[] {
    let seen = this.#byTenant.get(tenant);
    const fresh = members.filter((member) => seen === undefined || !seen.has(member));
    if (fresh.length === 0) return fresh;
    if (this.#size + fresh.length > MAX_SEEN_OPERATIONS) {
      this.#byTenant.clear();
      this.#size = 0;
      seen = undefined;
    }
    if (seen === undefined) this.#byTenant.set(tenant, (seen = new Set()));
    for (const member of fresh) seen.add(member);
    this.#size += fresh.length;
    return fresh;
  }
}
