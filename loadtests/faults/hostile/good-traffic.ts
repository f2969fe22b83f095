/**
 * The well-behaved client that must keep being served while a scenario attacks the server: an
 * OtlpLoad (unique span ids, a ledger of every attempt) and its accounting against PostgreSQL.
 */
import { OtlpLoad, type SentRequest } from '../../../test/helpers/otlp-load.js';
import { compareAcknowledged, readStoredSpans } from '../../../test/helpers/stored-spans.js';
import type { Accounting } from '../scenario.js';

export interface GoodTrafficOptions {
  url: string; // base URL of the server
  concurrency?: number;
  spansPerRequest?: number;
  pauseMs?: number;
  maxRequests?: number;
  headers?: Record<string, string>;
}

export function startGoodTraffic(options: GoodTrafficOptions): OtlpLoad {
  const load = new OtlpLoad({
    url: `${options.url}/v1/traces`,
    concurrency: options.concurrency ?? 4,
    spansPerRequest: options.spansPerRequest ?? 50,
    pauseMs: options.pauseMs ?? 20,
    maxRequests: options.maxRequests ?? 1_000_000,
    retryDelayMs: 250,
    attemptTimeoutMs: 20_000,
    headers: options.headers,
  });
  load.start();
  return load;
}

/** Latency percentile (ms) of the 200 answers to attempts started in [from, to). */
export function latencyPercentileMs(load: OtlpLoad, p: number, from: number, to: number): number {
  const times = load.attempts
    .filter((a) => a.status === 200 && a.startedAt >= from && a.startedAt < to)
    .map((a) => a.finishedAt - a.startedAt)
    .sort((a, b) => a - b);
  if (times.length === 0) return 0;
  return times[Math.min(times.length - 1, Math.floor((p / 100) * times.length))];
}

/** Answers by status (0 = connection error), counted per attempt. */
export function statusCounts(load: OtlpLoad): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const attempt of load.attempts) {
    const key = attempt.status === 0 ? 'connection-error' : String(attempt.status);
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}

const RETRYABLE = new Set([0, 429, 502, 503, 504]);

/**
 * Drains the load (each loop resends what it holds until it is answered) and computes the
 * accounting identity of scenario.ts for its spans. Duplicates are counted over every stored row,
 * not only the load's.
 */
export async function drainAndAccount(
  load: OtlpLoad,
  databaseUrl: string,
  drainTimeoutMs = 60_000,
): Promise<{ accounting: Accounting; problems: string[] }> {
  load.stopNew();
  const problems: string[] = [];
  try {
    await load.settled(drainTimeoutMs);
  } catch (err) {
    problems.push(`good traffic did not drain: ${(err as Error).message}`);
    load.stop();
    await load.settled(30_000).catch(() => undefined);
  }
  const stored = await readStoredSpans(databaseUrl);
  const acknowledged = load.acknowledgedKeys();
  const compared = compareAcknowledged(acknowledged, stored);
  let sent = 0;
  let refused = 0;
  let rejected = 0;
  let storedOfLoad = 0;
  for (const request of load.requests) {
    sent += request.spanKeys.length;
    for (const key of request.spanKeys) if (stored.counts.has(key)) storedOfLoad += 1;
    if (request.acknowledgedAt !== undefined) continue;
    if (isRefused(request)) refused += request.spanKeys.length;
    else rejected += request.spanKeys.length;
  }
  let lost = 0;
  for (const key of acknowledged) if (!stored.counts.has(key)) lost += 1;
  let duplicates = 0;
  for (const n of stored.counts.values()) if (n > 1) duplicates += n - 1;
  if (compared.missing.length > 0) problems.push(`acknowledged spans missing, e.g. ${compared.missing.slice(0, 3)}`);
  if (compared.duplicated.length > 0) problems.push(`duplicate rows, e.g. ${compared.duplicated.slice(0, 3)}`);
  if (stored.summaryMismatches.length > 0) {
    problems.push(`${stored.summaryMismatches.length} trace summaries disagree with their span rows`);
  }
  return {
    accounting: {
      sent,
      acknowledged: acknowledged.size,
      refused,
      rejected,
      stored: storedOfLoad,
      acknowledgedLost: lost,
      duplicates,
    },
    problems,
  };
}

function isRefused(request: SentRequest): boolean {
  const last = request.attempts.at(-1);
  return last === undefined || RETRYABLE.has(last.status);
}

/** The checks every scenario makes of its good traffic: all acknowledged and stored once, no error answer. */
export function goodTrafficFailures(accounting: Accounting, statuses: Record<string, number>): string[] {
  const failures: string[] = [];
  if (accounting.acknowledgedLost > 0) failures.push(`${accounting.acknowledgedLost} acknowledged spans lost`);
  if (accounting.duplicates > 0) failures.push(`${accounting.duplicates} duplicate rows`);
  if (accounting.acknowledged !== accounting.sent) {
    failures.push(
      `good traffic: ${accounting.sent - accounting.acknowledged} of ${accounting.sent} spans never acknowledged`,
    );
  }
  // 429 / 503 are the server protecting itself (the client retries); anything else is a failure.
  for (const status of Object.keys(statuses)) {
    if (!['200', '429', '503'].includes(status)) failures.push(`good traffic got ${statuses[status]} × ${status}`);
  }
  return failures;
}
