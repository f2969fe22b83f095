/**
 * The end of every span-carrying fault scenario: the clients' ledgers (OtlpLoad) against what
 * PostgreSQL holds, and against the server's own counters.
 *
 *   client side   sent = acknowledged + refused (last answer retryable) + rejected (permanent)
 *   storage       acknowledged ⊆ stored, each span key stored once, trace summaries agree
 *   server side   Δreceived = Δaccepted + Δrejected + Δrefused + Δsampled_out, and
 *                 Δaccepted = client-acknowledged spans (≥ when a client gave up waiting on an answer)
 *                 rows = Δaccepted − Δduplicates + spans committed without acknowledgement
 */
import type { Attempt, SentRequest } from '../../test/helpers/otlp-load.js';
import { readStoredSpans } from '../../test/helpers/stored-spans.js';
import type { ResultBuilder } from './harness.js';
import type { Accounting } from './scenario.js';
import type { SpanCounters } from './server-probe.js';

const RETRYABLE = new Set([0, 429, 502, 503, 504]);

/** What the accounting needs of a load generator: OtlpLoad and FastLoad both are one. */
export interface Ledger {
  readonly requests: SentRequest[];
  readonly attempts: Attempt[];
}

/** Answers by status per attempt; status 0 (no HTTP answer) is 'connection-error'. */
export function tallyStatuses(attempts: Attempt[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const attempt of attempts) {
    const key = attempt.status === 0 ? 'connection-error' : String(attempt.status);
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}

function tallyStrings(values: string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const value of values) counts[value] = (counts[value] ?? 0) + 1;
  return counts;
}

/**
 * The OTLP retry contract as seen by clients: every 429/503 carries a Retry-After of 1–2 s, and no
 * answer other than the allowed ones (default 200, 429, 503 and connection errors) ever came.
 */
export function checkAnswers(
  result: ResultBuilder,
  attempts: Attempt[],
  allowed: ReadonlyArray<number> = [200, 429, 503, 0],
): void {
  const unexpected = attempts.filter((a) => !allowed.includes(a.status));
  const causes = unexpected.filter((a) => a.status === 0).map((a) => a.error ?? 'unknown');
  result.check(
    unexpected.length === 0,
    `answers outside {${allowed.map((s) => s || 'connection-error').join(', ')}}: ${JSON.stringify(tallyStatuses(unexpected))}` +
      (causes.length > 0 ? ` (connection errors: ${JSON.stringify(tallyStrings(causes))})` : ''),
  );
  const refusals = attempts.filter((a) => a.status === 429 || a.status === 503);
  const bare = refusals.filter((a) => !/^[12]$/.test(a.retryAfter ?? ''));
  result.check(bare.length === 0, `${bare.length} of ${refusals.length} refusals without a Retry-After of 1–2 s`);
}

export interface LedgerCheck {
  accounting: Accounting;
  /** Rows in PostgreSQL in total (every key, with its copies). */
  rows: number;
}

/** Compares the loads' ledgers with PostgreSQL; records failures on `result`. */
export async function checkLedger(
  result: ResultBuilder,
  loads: Ledger[],
  connectionString: string,
): Promise<LedgerCheck> {
  const sent = new Set<string>();
  const acknowledged = new Set<string>();
  let refused = 0;
  let rejected = 0;
  for (const request of loads.flatMap((load) => load.requests)) {
    for (const key of request.spanKeys) sent.add(key);
    if (request.acknowledgedAt !== undefined) {
      for (const key of request.spanKeys) acknowledged.add(key);
      continue;
    }
    const last = request.attempts.at(-1);
    if (last === undefined || RETRYABLE.has(last.status)) refused += request.spanKeys.length;
    else rejected += request.spanKeys.length;
  }
  const stored = await readStoredSpans(connectionString);
  let rows = 0;
  let duplicates = 0;
  let storedOfOurs = 0;
  let foreign = 0;
  for (const [key, n] of stored.counts) {
    rows += n;
    duplicates += n - 1;
    if (sent.has(key)) storedOfOurs += 1;
    else foreign += 1;
  }
  const missing = [...acknowledged].filter((key) => !stored.counts.has(key));
  const accounting: Accounting = {
    sent: sent.size,
    acknowledged: acknowledged.size,
    refused,
    rejected,
    stored: storedOfOurs,
    acknowledgedLost: missing.length,
    duplicates,
  };
  result.check(
    missing.length === 0,
    `${missing.length} acknowledged spans not stored, e.g. ${missing.slice(0, 3).join(' ')}`,
  );
  result.check(duplicates === 0, `${duplicates} duplicate span rows`);
  result.check(foreign === 0, `${foreign} stored span keys that no client sent`);
  result.check(
    sent.size === acknowledged.size + refused + rejected,
    `client ledger does not add up: sent ${sent.size} ≠ acknowledged ${acknowledged.size} + refused ${refused} + rejected ${rejected}`,
  );
  result.check(
    stored.summaryMismatches.length === 0,
    `trace summaries disagree with span rows: ${JSON.stringify(stored.summaryMismatches.slice(0, 3))}`,
  );
  return { accounting, rows };
}

/**
 * The server's counters over the scenario (one process, counters not reset in between) against
 * the ledger. `clientGaveUp`: some attempt ended without an HTTP answer while the server may have
 * committed it, so accepted may exceed what clients saw acknowledged.
 */
export function checkServerCounters(
  result: ResultBuilder,
  delta: SpanCounters,
  ledger: LedgerCheck,
  options: { clientGaveUp: boolean },
): void {
  const { accounting, rows } = ledger;
  result.check(
    delta.received === delta.accepted + delta.rejected + delta.refused + delta.sampledOut,
    `server counters do not add up: received ${delta.received} ≠ accepted ${delta.accepted} + rejected ${delta.rejected} + refused ${delta.refused} + sampled out ${delta.sampledOut}`,
  );
  if (options.clientGaveUp) {
    result.check(
      delta.accepted >= accounting.acknowledged,
      `server accepted ${delta.accepted} spans, clients saw ${accounting.acknowledged} acknowledged`,
    );
  } else {
    result.check(
      delta.accepted === accounting.acknowledged,
      `server accepted ${delta.accepted} spans, clients saw ${accounting.acknowledged} acknowledged`,
    );
  }
  const committedUnacknowledged = rows - (delta.accepted - delta.duplicates);
  result.check(
    committedUnacknowledged >= 0,
    `fewer rows (${rows}) than the server says it inserted (${delta.accepted - delta.duplicates})`,
  );
  result.figure('server spans received', delta.received);
  result.figure('server spans refused', delta.refused);
  result.figure('server requests refused before read', delta.requestsRefused);
  result.figure('duplicates absorbed (spans)', delta.duplicates);
  result.figure('committed without acknowledgement (spans)', committedUnacknowledged);
}

/** Spans per second of the requests whose 200 arrived in [from, to) (ms timestamps). */
export function ackedSpansPerS(load: Ledger, from: number, to: number): number {
  let spans = 0;
  for (const request of load.requests) {
    const at = request.acknowledgedAt;
    if (at !== undefined && at >= from && at < to) spans += request.spanKeys.length;
  }
  return spans / ((to - from) / 1000);
}

/** Spans per second offered in [from, to): every attempt started then, resends included. */
export function offeredSpansPerS(load: Ledger, from: number, to: number): number {
  let spans = 0;
  for (const request of load.requests) {
    for (const attempt of request.attempts) {
      if (attempt.startedAt >= from && attempt.startedAt < to) spans += request.spanKeys.length;
    }
  }
  return spans / ((to - from) / 1000);
}

/** The p-th percentile (0–100) of the latency of 200 answers to attempts started in [from, to), ms. */
export function latencyPercentileMs(load: Ledger, p: number, from = 0, to = Infinity): number | undefined {
  const times = load.attempts
    .filter((a) => a.status === 200 && a.startedAt >= from && a.startedAt < to)
    .map((a) => a.finishedAt - a.startedAt)
    .sort((a, b) => a - b);
  if (times.length === 0) return undefined;
  return times[Math.min(times.length - 1, Math.floor((p / 100) * times.length))];
}
