/**
 * The common shape of an infrastructure fault scenario: steady OTLP ingest from ledger-keeping
 * clients (FastLoad), a fault injected while it runs, the fault cleared, ingest shown to resume by
 * itself, then every request resent until acknowledged and the accounting checked.
 *
 *   return ingestUnderFault(scenario, context, { … }, async (run) => {
 *     … break something, run.log(…), run.result.figure(…) …
 *     return { clearedAt: Date.now() };     // when the fault ended (recovery is measured from it)
 *   });
 *
 * Checked for every such scenario: only the allowed answers (default 200 and 503, every 503 with
 * Retry-After), the process never exited, every request acknowledged in the end, acknowledged ⊆
 * stored, no duplicate rows, and the server's counters add up and agree with the clients.
 */
import { checkAnswers, checkLedger, checkServerCounters, tallyStatuses } from './accounting.js';
import { FastLoad, type FastLoadOptions } from './fast-load.js';
import { ResultBuilder, sleep, withStack, type FaultStack, type StackOptions } from './harness.js';
import type { Scenario, ScenarioContext, ScenarioResult } from './scenario.js';
import { counterDelta, growthByLabel, peakRssMb, scrapeMetrics, spanCounters } from './server-probe.js';

export interface IngestUnderFaultOptions {
  stack?: StackOptions;
  load?: Partial<Omit<FastLoadOptions, 'url'>>;
  /** Acknowledged requests before the fault is injected (default smoke 10, full 50). */
  acknowledgedBefore?: number;
  /** Acknowledged requests after the fault cleared that count as "recovered" (default smoke 5, full 50). */
  acknowledgedAfter?: number;
  /** Steady ingest after recovery, before the clients stop sending new requests (default smoke 0.3 s, full 5 s). */
  afterMs?: number;
  /** Answers the clients may see; 0 is a connection error. */
  allowedStatuses?: number[];
}

export interface FaultRun {
  stack: FaultStack;
  load: FastLoad;
  result: ResultBuilder;
  mode: ScenarioContext['mode'];
  log(message: string): void;
}

export interface FaultOutcome {
  /** When the fault ended; recovery is measured from here. */
  clearedAt: number;
}

export const DEFAULT_LOAD = { concurrency: 4, spansPerRequest: 100, pauseMs: 20, retryDelayMs: 250 };

export async function ingestUnderFault(
  scenario: Pick<Scenario, 'id' | 'title' | 'catalogRows'>,
  context: ScenarioContext,
  options: IngestUnderFaultOptions,
  inject: (run: FaultRun) => Promise<FaultOutcome>,
): Promise<ScenarioResult> {
  const result = new ResultBuilder(scenario, context);
  return withStack(options.stack ?? {}, async (stack) => {
    const before = await scrapeMetrics(stack.url);
    const load = new FastLoad({
      url: `${stack.url}/v1/traces`,
      maxRequests: 1_000_000,
      ...DEFAULT_LOAD,
      ...options.load,
    });
    load.start();
    try {
      const smoke = context.mode === 'smoke';
      await waitFor(
        () => acknowledgedRequests(load, 0) >= (options.acknowledgedBefore ?? (smoke ? 10 : 50)),
        30_000,
        'ingest before the fault',
      );
      const pid = stack.server.child.pid!;
      const { clearedAt } = await inject({ stack, load, result, mode: context.mode, log: context.log });
      await waitFor(
        () => acknowledgedRequests(load, clearedAt) >= (options.acknowledgedAfter ?? (smoke ? 5 : 50)),
        60_000,
        'ingest to resume after the fault',
      );
      const firstAck = Math.min(
        ...load.requests.map((r) => r.acknowledgedAt ?? Infinity).filter((at) => at >= clearedAt),
      );
      context.log(`ingest resumed ${((firstAck - clearedAt) / 1000).toFixed(2)} s after the fault cleared`);
      await sleep(options.afterMs ?? (smoke ? 300 : 5000));
      load.stopNew();
      await load.settled(120_000);
      const peak = peakRssMb(pid);
      result.check(
        stack.server.child.exitCode === null && stack.server.child.pid === pid,
        'tracehouse exited during the fault',
      );
      const after = await scrapeMetrics(stack.url);
      const attempts = load.attempts;
      checkAnswers(result, attempts, options.allowedStatuses ?? [200, 503]);
      const unacknowledged = load.requests.filter((r) => r.acknowledgedAt === undefined).length;
      result.check(unacknowledged === 0, `${unacknowledged} requests never acknowledged after the fault cleared`);
      result.figure(
        'storage errors (by kind)',
        growthByLabel(before, after, 'tracehouse_storage_errors_total', 'kind'),
      );
      const ledger = await checkLedger(result, [load], stack.postgres.connectionString);
      checkServerCounters(result, counterDelta(spanCounters(before), spanCounters(after)), ledger, {
        clientGaveUp: attempts.some((a) => a.status === 0),
      });
      return result.finish({
        accounting: ledger.accounting,
        statuses: tallyStatuses(attempts),
        peakRssMb: peak,
        recoverySeconds: (firstAck - clearedAt) / 1000,
      });
    } finally {
      load.stop();
      await load.settled(30_000).catch(() => undefined);
    }
  }).catch((err: unknown) => result.crashed(err));
}

/** Requests whose 200 arrived at or after `since`. */
export function acknowledgedRequests(load: FastLoad, since: number): number {
  let n = 0;
  for (const r of load.requests) if (r.acknowledgedAt !== undefined && r.acknowledgedAt >= since) n += 1;
  return n;
}

/** Polls `check` every 50 ms; throws after `timeoutMs` naming `what`. Resolves with the wait in ms. */
export async function waitFor(
  check: () => boolean | Promise<boolean>,
  timeoutMs: number,
  what: string,
): Promise<number> {
  const startedAt = Date.now();
  while (!(await check())) {
    if (Date.now() - startedAt > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
  return Date.now() - startedAt;
}
