/**
 * What a load run sent and what it was told, per request number r (ids.ts), and the loss
 * accounting against what PostgreSQL holds at the end:
 *
 *   sent = acknowledged + refused (429/503) + failed (other status, no answer)        [spans]
 *   acknowledged spans must be stored exactly once; nothing may be stored twice,
 *   nothing may be stored that was never sent.
 *
 * Outcomes are one byte per request; send and answer times are kept for the measured window
 * and latency percentiles. A request that got no answer (timeout, connection closed at the end
 * of the run) may or may not be stored: that is reported, not a failure.
 */
import type pg from 'pg';
import { FOREIGN_ROWS, STORED_PER_REQUEST, tagBytes } from './ids.js';
import { SPANS_PER_TRACE } from './templates.js';

export const Outcome = {
  NOT_SENT: 0,
  SENT: 1, // no answer (yet)
  OK: 2,
  PARTIAL: 3, // 200 with rejected spans
  TOO_MANY: 4, // 429
  UNAVAILABLE: 5, // 503
  OTHER: 6, // any other status
} as const;
export type OutcomeCode = (typeof Outcome)[keyof typeof Outcome];

export class Ledger {
  readonly tag: number;
  readonly spansPerRequest: number;
  #outcomes = new Uint8Array(1 << 14);
  #sentAt = new Float64Array(1 << 14);
  #answeredAt = new Float64Array(1 << 14);
  #bytes = new Uint32Array(1 << 14);
  #next = 1;
  readonly otherStatuses = new Map<number, number>();

  constructor(tag: number, spansPerRequest: number) {
    this.tag = tag;
    this.spansPerRequest = spansPerRequest;
  }

  /** Reserves the next request number (≥ 1). */
  take(): number {
    const r = this.#next++;
    if (r >= this.#outcomes.length) this.#grow();
    return r;
  }

  get taken(): number {
    return this.#next - 1;
  }

  #grow(): void {
    const size = this.#outcomes.length * 2;
    const grow = <T extends Uint8Array | Float64Array | Uint32Array>(a: T, make: (n: number) => T): T => {
      const b = make(size);
      b.set(a as never);
      return b;
    };
    this.#outcomes = grow(this.#outcomes, (n) => new Uint8Array(n));
    this.#sentAt = grow(this.#sentAt, (n) => new Float64Array(n));
    this.#answeredAt = grow(this.#answeredAt, (n) => new Float64Array(n));
    this.#bytes = grow(this.#bytes, (n) => new Uint32Array(n));
  }

  sent(r: number, bodyBytes: number, at = performance.now()): void {
    this.#outcomes[r] = Outcome.SENT;
    this.#sentAt[r] = at;
    this.#bytes[r] = bodyBytes;
  }

  /** Records the answer to request r; `partial` when a 200 reported rejected spans. */
  answered(r: number, status: number, partial = false, at = performance.now()): void {
    let code: OutcomeCode = Outcome.OTHER;
    if (status === 200) code = partial ? Outcome.PARTIAL : Outcome.OK;
    else if (status === 429) code = Outcome.TOO_MANY;
    else if (status === 503) code = Outcome.UNAVAILABLE;
    else this.otherStatuses.set(status, (this.otherStatuses.get(status) ?? 0) + 1);
    this.#outcomes[r] = code;
    this.#answeredAt[r] = at;
  }

  outcome(r: number): OutcomeCode {
    return this.#outcomes[r] as OutcomeCode;
  }

  /** Requests answered 200 (full success) so far, for readers that need acknowledged traces. */
  isAcknowledged(r: number): boolean {
    return this.#outcomes[r] === Outcome.OK;
  }

  /** Answered within [from, to) (performance.now() times): count per outcome, bytes, latencies. */
  window(from: number, to: number): WindowStats {
    const latencies: number[] = [];
    let ok = 0;
    let refused = 0;
    let other = 0;
    let okBytes = 0;
    for (let r = 1; r < this.#next; r++) {
      const at = this.#answeredAt[r];
      if (at < from || at >= to || this.#outcomes[r] <= Outcome.SENT) continue;
      latencies.push(at - this.#sentAt[r]);
      const code = this.#outcomes[r];
      if (code === Outcome.OK) {
        ok++;
        okBytes += this.#bytes[r];
      } else if (code === Outcome.TOO_MANY || code === Outcome.UNAVAILABLE) refused++;
      else other++;
    }
    latencies.sort((a, b) => a - b);
    return { ok, refused, other, okBytes, latencies };
  }

  counts(): Record<OutcomeCode, number> {
    const c = [0, 0, 0, 0, 0, 0, 0];
    for (let r = 1; r < this.#next; r++) c[this.#outcomes[r]]++;
    return c as unknown as Record<OutcomeCode, number>;
  }

  /** Compares with what PostgreSQL holds for this run's tag (call once nothing is in flight). */
  async account(db: pg.ClientBase | pg.Pool, tenant: string): Promise<Accounting> {
    const per = this.spansPerRequest;
    const { rows } = await db.query<{ r: string; rows: number; keys: number; malformed: number }>(STORED_PER_REQUEST, [
      tenant,
      tagBytes(this.tag),
      per,
      SPANS_PER_TRACE,
    ]);
    const foreign = (await db.query<{ n: number }>(FOREIGN_ROWS, [tenant, tagBytes(this.tag)])).rows[0].n;
    const c = this.counts();
    const acc: Accounting = {
      requests: this.taken,
      sent: (this.taken - c[Outcome.NOT_SENT]) * per,
      acknowledged: c[Outcome.OK] * per,
      partial: c[Outcome.PARTIAL] * per,
      refused: (c[Outcome.TOO_MANY] + c[Outcome.UNAVAILABLE]) * per,
      failed: (c[Outcome.OTHER] + c[Outcome.SENT]) * per,
      unanswered: c[Outcome.SENT] * per,
      stored: 0,
      duplicated: 0,
      missing: 0,
      malformed: 0,
      unsent: foreign,
      storedRefused: 0,
      storedUnanswered: 0,
      otherStatuses: Object.fromEntries(this.otherStatuses),
      ok: false,
    };
    const keysOf = new Map<number, number>();
    for (const row of rows) {
      const r = Number(row.r);
      acc.stored += row.rows;
      acc.duplicated += row.rows - row.keys;
      acc.malformed += row.malformed;
      keysOf.set(r, row.keys);
      const code = r >= 1 && r <= this.taken ? this.#outcomes[r] : Outcome.NOT_SENT;
      if (code === Outcome.NOT_SENT) acc.unsent += row.rows;
      else if (code === Outcome.TOO_MANY || code === Outcome.UNAVAILABLE) acc.storedRefused += row.keys;
      else if (code === Outcome.SENT) acc.storedUnanswered += row.keys;
    }
    for (let r = 1; r <= this.taken; r++) {
      if (this.#outcomes[r] === Outcome.OK) acc.missing += per - Math.min(per, keysOf.get(r) ?? 0);
    }
    acc.ok = acc.missing === 0 && acc.duplicated === 0 && acc.malformed === 0 && acc.unsent === 0 && acc.partial === 0;
    return acc;
  }
}

export interface WindowStats {
  ok: number;
  refused: number;
  other: number;
  okBytes: number;
  latencies: number[]; // ms, sorted
}

/** Loss accounting of one run, in spans. */
export interface Accounting {
  requests: number;
  sent: number;
  acknowledged: number;
  partial: number; // in 200s that reported rejected spans (realistic spans never should)
  refused: number;
  failed: number;
  unanswered: number; // part of failed: no answer at all
  stored: number; // rows with this run's tag
  duplicated: number; // rows beyond the first of a (trace_id, span_id)
  missing: number; // acknowledged but not stored
  malformed: number; // stored ids that break the pattern
  unsent: number; // stored rows of requests never sent, or of another run
  storedRefused: number; // stored although refused (allowed: the client would retry)
  storedUnanswered: number; // stored, answer never seen (allowed)
  otherStatuses: Record<number, number>;
  ok: boolean;
}

export function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const at = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[at];
}
