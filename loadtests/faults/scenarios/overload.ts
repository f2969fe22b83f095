/**
 * Catalog row 1: overload at 10× the sustained maximum for a bounded time.
 *
 * First the maximum is measured in the same run: a closed loop of BASE_CONCURRENCY clients posting
 * 512-span requests (the OpenTelemetry SDK's default batch) back to back. Then clients join until
 * the spans offered per second (every attempt, resends included) are about 10× that maximum, and
 * keep at it for the overload period. Clients behave like OTLP exporters: a refused request waits
 * for Retry-After and is resent, so the client population, not an unbounded open loop, sets the
 * offered load (10× the maximum in new spans per second for a minute would be millions of distinct
 * spans held by the client on this machine). Figures are taken over the second half, once the
 * queue has filled and the population has grown. Once the backlog has drained, the maximum is
 * measured again, and goodput is judged against the mean of the two measurements.
 *
 * Promises checked: only 200, 429 and 503 (every refusal with Retry-After), no 500 and no dropped
 * connection; peak RSS (the kernel's VmHWM) under the memory limit the production deployment
 * configures (docker-compose.prod.yml, with its NODE_OPTIONS heap limit); goodput ≥ 90 % of the
 * maximum; after the overload every request is acknowledged and stored exactly once.
 */
import { DEFAULTS } from '../../../server/config.js';
import {
  ackedSpansPerS,
  checkAnswers,
  checkLedger,
  checkServerCounters,
  latencyPercentileMs,
  offeredSpansPerS,
  tallyStatuses,
} from '../accounting.js';
import { FastLoad } from '../fast-load.js';
import { deployedLimits, ResultBuilder, sleep, withStack } from '../harness.js';
import type { Scenario, ScenarioContext, ScenarioResult } from '../scenario.js';
import {
  counterDelta,
  cpuSeconds,
  currentRssMb,
  growthByLabel,
  peakRssMb,
  scrapeMetrics,
  spanCounters,
} from '../server-probe.js';

const SPANS_PER_REQUEST = 512;
const BASE_CONCURRENCY = 8;
const OVERLOAD_FACTOR = 10;
const WARMUP_MS = 1000;
const PROGRESS_SCRAPE_TIMEOUT_MS = 2000;
/** The OpenTelemetry JS exporter's default export timeout: a slower answer is a failed export. */
const EXPORTER_TIMEOUT_MS = 10_000;
/**
 * Smoke mode shrinks the queue so that it fills early in an 8 s run (clients upload faster than
 * PostgreSQL commits, but only by a few thousand spans/s), and afterwards its clients give up on
 * what was not acknowledged instead of resending it all. Full mode runs the production default and
 * drains: every request is resent until acknowledged.
 */
const SIZES = {
  smoke: { maxMs: 2500, overloadMs: 5000, tickMs: 2000, maxQueueSpans: 10_000, drain: false },
  full: { maxMs: 15_000, overloadMs: 60_000, tickMs: 6000, maxQueueSpans: DEFAULTS.batch.maxQueueSpans, drain: true },
};

const scenario: Scenario = {
  id: 'overload-10x',
  title: 'Offered load at 10× the measured maximum: refuse with Retry-After, stay under the memory limit, keep goodput',
  catalogRows: [1],
  run: (context) => runOverload(context),
};

async function runOverload(context: ScenarioContext): Promise<ScenarioResult> {
  const size = SIZES[context.mode];
  const limits = deployedLimits();
  const result = new ResultBuilder(scenario, context);
  const env = { NODE_OPTIONS: limits.nodeOptions, MAX_QUEUE_SPANS: String(size.maxQueueSpans) };
  return withStack({ env }, async (stack) => {
    const pid = stack.server.child.pid!;
    const url = `${stack.url}/v1/traces`;
    result.figure('idle RSS (MB)', currentRssMb(pid) ?? 0);
    const metricsBefore = await scrapeMetrics(stack.url);

    // 1. The sustained maximum, closed loop, same machine, same run; measured again after the
    // overload (step 3), since PostgreSQL's rate drifts by ±10 % over a minute here (checkpoints,
    // autovacuum, growing partitions) and one 15 s window before the overload misjudges it.
    const before = await measureMaximum(url, size.maxMs);
    context.log(`maximum before: ${Math.round(before.spansPerS)} spans/s with ${BASE_CONCURRENCY} clients`);

    // 2. Overload. Admitted requests wait in the queue for their commit; refused clients resend
    // after Retry-After (1 s). So: enough clients to fill the queue, plus enough refused ones to
    // offer OVERLOAD_FACTOR × the maximum if each resent once a second.
    const target = OVERLOAD_FACTOR * before.spansPerS;
    const flood = new FastLoad({
      url,
      concurrency:
        BASE_CONCURRENCY + Math.ceil(size.maxQueueSpans / SPANS_PER_REQUEST) + Math.ceil(target / SPANS_PER_REQUEST),
      spansPerRequest: SPANS_PER_REQUEST,
      pauseMs: 0,
      maxRequests: 10_000_000,
      attemptTimeoutMs: 60_000,
    });
    const cpuBefore = { client: process.cpuUsage(), server: cpuSeconds(pid) };
    const floodStart = Date.now();
    flood.start();
    context.log(`overload: ${flood.clients} clients for ${size.overloadMs / 1000} s`);
    let scrapes = 0;
    let unanswered = 0;
    while (Date.now() - floodStart < size.overloadMs) {
      await sleep(Math.min(size.tickMs, size.overloadMs - (Date.now() - floodStart)));
      scrapes += 1;
      const m = await scrapeMetrics(stack.url, PROGRESS_SCRAPE_TIMEOUT_MS).catch(() => undefined);
      if (m === undefined) unanswered += 1;
      context.log(
        `  +${((Date.now() - floodStart) / 1000).toFixed(1)} s: ` +
          (m === undefined
            ? `/metrics did not answer within ${PROGRESS_SCRAPE_TIMEOUT_MS} ms`
            : `queue ${m.sum('tracehouse_queue_spans')} spans, accepted ${m.sum('tracehouse_spans_accepted_total')}, ` +
              `refused ${m.sum('tracehouse_requests_refused_total')} requests before read + ${m.sum('tracehouse_spans_refused_total')} spans after`) +
          `; RSS ${currentRssMb(pid)} MB`,
      );
    }
    const floodEnd = Date.now();
    const cpu = { client: process.cpuUsage(cpuBefore.client), server: cpuSeconds(pid) - cpuBefore.server };
    if (size.drain) flood.stopNew();
    else flood.stop();
    await flood.settled(180_000);
    const drainedAt = Date.now();
    const peak = peakRssMb(pid);

    // 3. The maximum again, the backlog drained; the overload is judged against the mean of both.
    const afterwards = await measureMaximum(url, size.maxMs);
    const maxSpansPerS = (before.spansPerS + afterwards.spansPerS) / 2;
    context.log(`maximum after: ${Math.round(afterwards.spansPerS)} spans/s; mean ${Math.round(maxSpansPerS)}`);
    const after = await scrapeMetrics(stack.url);

    // Steady state: the second half of the overload (the queue has filled, the clients have grown).
    const half = floodStart + (floodEnd - floodStart) / 2;
    const offered = offeredSpansPerS(flood, half, floodEnd);
    const goodput = ackedSpansPerS(flood, half, floodEnd);
    const refusals = flood.attempts.filter((a) => a.status === 429 || a.status === 503);
    const firstRefusal = refusals.sort((a, b) => a.finishedAt - b.finishedAt)[0];
    context.log(
      `offered ${Math.round(offered)} spans/s (${(offered / maxSpansPerS).toFixed(1)}× max), goodput ${Math.round(goodput)} spans/s, peak RSS ${peak} MB`,
    );
    result.figure(
      'maximum before / after the overload (spans/s)',
      `${Math.round(before.spansPerS)} / ${Math.round(afterwards.spansPerS)}`,
    );
    result.figure('maximum throughput, mean (spans/s)', maxSpansPerS);
    result.figure('overload duration (s)', (floodEnd - floodStart) / 1000);
    result.figure('clients at the end of the overload', flood.clients);
    result.figure('offered, second half (spans/s, resends included)', offered);
    result.figure('offered / maximum', offered / maxSpansPerS);
    result.figure('goodput, second half (spans/s)', goodput);
    result.figure('goodput / maximum (%)', (100 * goodput) / maxSpansPerS);
    result.figure(
      'CPU during the overload (s): tracehouse / load generator',
      `${cpu.server.toFixed(1)} / ${((cpu.client.user + cpu.client.system) / 1e6).toFixed(1)}`,
    );
    const attemptsInOverload = flood.attempts.filter((a) => a.startedAt < floodEnd);
    const slow = attemptsInOverload.filter((a) => a.finishedAt - a.startedAt > EXPORTER_TIMEOUT_MS).length;
    result.figure(
      `answers slower than ${EXPORTER_TIMEOUT_MS / 1000} s (an OTel exporter would have given up)`,
      `${slow} of ${attemptsInOverload.length}`,
    );
    result.figure(
      `/metrics unanswered within ${PROGRESS_SCRAPE_TIMEOUT_MS / 1000} s during the overload`,
      `${unanswered} of ${scrapes}`,
    );
    result.figure('time to first refusal (ms)', firstRefusal ? firstRefusal.finishedAt - floodStart : 'none');
    result.figure('p99 latency of 200s under overload (ms)', latencyPercentileMs(flood, 99) ?? 'none');
    result.figure(
      size.drain ? 'backlog drained after the overload (s)' : 'requests in flight answered after the overload (s)',
      (drainedAt - floodEnd) / 1000,
    );
    result.figure('memory limit (MB, docker-compose.prod.yml)', limits.memoryLimitMb);
    result.figure('NODE_OPTIONS', limits.nodeOptions);
    result.figure('queue limits (spans / MiB)', `${size.maxQueueSpans} / ${DEFAULTS.batch.maxQueueBytes / 2 ** 20}`);
    result.figure(
      'server refusals (requests, by reason)',
      growthByLabel(metricsBefore, after, 'tracehouse_requests_refused_total', 'reason'),
    );
    result.figure(
      'server refusals (spans, by reason)',
      growthByLabel(metricsBefore, after, 'tracehouse_spans_refused_total', 'reason'),
    );

    const attempts = [...before.load.attempts, ...flood.attempts, ...afterwards.load.attempts];
    checkAnswers(result, attempts, [200, 429, 503]);
    result.check(
      firstRefusal !== undefined,
      'the overload never caused a refusal: the offered load did not exceed capacity',
    );
    result.check(
      peak !== undefined && peak < limits.memoryLimitMb,
      `peak RSS ${peak} MB ≥ limit ${limits.memoryLimitMb} MB`,
    );
    // An 8 s smoke run is mostly ramp-up on a shared machine: its rates are reported, not judged.
    if (context.mode === 'full') {
      result.check(
        offered >= 0.8 * OVERLOAD_FACTOR * before.spansPerS,
        `offered load only ${(offered / before.spansPerS).toFixed(1)}× the maximum before (target ${OVERLOAD_FACTOR}×): ` +
          'refused clients wait for answers instead of being refused at once',
      );
      result.check(
        goodput >= 0.9 * maxSpansPerS,
        `goodput ${Math.round(goodput)} spans/s < 90 % of ${Math.round(maxSpansPerS)}`,
      );
    }
    result.check(stack.server.child.exitCode === null, 'tracehouse exited during the overload');

    const ledger = await checkLedger(result, [before.load, flood, afterwards.load], stack.postgres.connectionString);
    checkServerCounters(result, counterDelta(spanCounters(metricsBefore), spanCounters(after)), ledger, {
      clientGaveUp: attempts.some((a) => a.status === 0),
    });
    return result.finish({
      accounting: ledger.accounting,
      statuses: tallyStatuses(attempts),
      peakRssMb: peak,
      recoverySeconds: size.drain ? (drainedAt - floodEnd) / 1000 : undefined,
    });
  }).catch((err: unknown) => result.crashed(err));
}

/** Spans acknowledged per second by BASE_CONCURRENCY clients posting back to back for `ms`. */
async function measureMaximum(url: string, ms: number): Promise<{ spansPerS: number; load: FastLoad }> {
  const load = new FastLoad({
    url,
    concurrency: BASE_CONCURRENCY,
    spansPerRequest: SPANS_PER_REQUEST,
    pauseMs: 0,
    maxRequests: 1_000_000,
  });
  const start = Date.now();
  load.start();
  await sleep(ms);
  const end = Date.now();
  load.stopNew();
  await load.settled(60_000);
  return { spansPerS: ackedSpansPerS(load, start + WARMUP_MS, end), load };
}

export default scenario;
