/**
 * Catalog rows 15 and 16: SIGTERM and SIGKILL of the tracehouse process at random points of steady
 * ingest, many trials in a row on the same private PostgreSQL; after each, a new process starts on
 * the same port. Clients behave like OTLP exporters (a refused request or a refused connection is
 * resent), so in the end every request is acknowledged; every acknowledged span must be stored
 * exactly once. SIGTERM must drain and exit 0 within the deadline the production deployment sets
 * (SHUTDOWN_DELAY_MS + DRAIN_TIMEOUT_MS from docker-compose.prod.yml, below its stop_grace_period).
 * The server's counters restart with each process, so the accounting here is the clients' ledger
 * against PostgreSQL.
 */
import type { LogLine } from '../../../test/helpers/tracehouse-process.js';
import { checkAnswers, checkLedger, tallyStatuses } from '../accounting.js';
import { FastLoad } from '../fast-load.js';
import { deployedLimits, ResultBuilder, sleep, withStack } from '../harness.js';
import { acknowledgedRequests, waitFor } from '../ingest-under-fault.js';
import type { Scenario, ScenarioContext, ScenarioResult } from '../scenario.js';
import { peakRssMb } from '../server-probe.js';

type Kind = 'SIGTERM' | 'SIGKILL';

const TRIALS = { smoke: 2, full: 20 };

function signalScenario(signal: Kind, catalogRows: number[], title: string): Scenario {
  const scenario: Scenario = {
    id: signal === 'SIGTERM' ? 'sigterm-under-load' : 'sigkill-under-load',
    title,
    catalogRows,
    run: (context) => runTrials(scenario, context, signal),
  };
  return scenario;
}

async function runTrials(scenario: Scenario, context: ScenarioContext, signal: Kind): Promise<ScenarioResult> {
  const limits = deployedLimits();
  const deadlineMs = limits.shutdownDelayMs + limits.drainTimeoutMs;
  const result = new ResultBuilder(scenario, context);
  const env = {
    LOG_LEVEL: 'info',
    NODE_OPTIONS: limits.nodeOptions,
    SHUTDOWN_DELAY_MS: String(limits.shutdownDelayMs),
    DRAIN_TIMEOUT_MS: String(limits.drainTimeoutMs),
  };
  return withStack({ env }, async (stack) => {
    const load = new FastLoad({
      url: `${stack.url}/v1/traces`,
      concurrency: 4,
      spansPerRequest: 100,
      pauseMs: 10,
      maxRequests: 1_000_000,
      retryDelayMs: 100, // a refused connection is tried again soon, as the restart takes < 1 s
      attemptTimeoutMs: deadlineMs + 10_000,
    });
    load.start();
    const drains: number[] = [];
    const restarts: number[] = [];
    let inFlightAtSignal = 0;
    let peak = 0;
    try {
      for (let trial = 1; trial <= TRIALS[context.mode]; trial++) {
        const server = stack.server;
        const since = Date.now();
        await waitFor(() => acknowledgedRequests(load, since) >= 3, 30_000, `ingest before trial ${trial}`);
        await sleep(200 + Math.random() * (context.mode === 'full' ? 1300 : 400)); // a random point of steady ingest
        peak = Math.max(peak, peakRssMb(server.child.pid!) ?? 0);
        const signalledAt = Date.now();
        inFlightAtSignal += load.requests.filter((r) => r.acknowledgedAt === undefined).length;
        server.child.kill(signal);
        const exit = await server.waitExit(deadlineMs + 10_000);
        if (
          !result.check(
            exit !== undefined,
            `trial ${trial}: tracehouse still running ${deadlineMs + 10_000} ms after ${signal}`,
          )
        ) {
          await server.stop();
        }
        if (signal === 'SIGTERM' && exit) {
          const drainMs = exit.at - signalledAt;
          drains.push(drainMs);
          result.check(
            exit.code === 0 && exit.signal === null,
            `trial ${trial}: exit ${exit.signal ?? exit.code} after SIGTERM`,
          );
          result.check(drainMs < deadlineMs, `trial ${trial}: drain took ${drainMs} ms, deadline ${deadlineMs} ms`);
          const cutShort = server.logs.filter((line: LogLine) => /deadline/.test(line.msg ?? ''));
          result.check(cutShort.length === 0, `trial ${trial}: the drain deadline cut work off: ${cutShort[0]?.msg}`);
          const errors = server.logs.filter((line: LogLine) => line.level >= 50);
          result.check(errors.length === 0, `trial ${trial}: error logs: ${errors.map((e) => e.msg).join('; ')}`);
        }
        const restartAt = Date.now();
        await stack.restart();
        restarts.push(Date.now() - restartAt);
        context.log(
          `trial ${trial}: ${signal}${drains.length ? `, drained in ${drains.at(-1)} ms` : ''}; restarted in ${restarts.at(-1)} ms`,
        );
      }
      await sleep(500);
      load.stopNew();
      await load.settled(120_000);
    } finally {
      load.stop();
      await load.settled(30_000).catch(() => undefined);
    }

    const attempts = load.attempts;
    checkAnswers(result, attempts, [200, 503, 0]);
    const unacknowledged = load.requests.filter((r) => r.acknowledgedAt === undefined).length;
    result.check(unacknowledged === 0, `${unacknowledged} requests never acknowledged`);
    const ledger = await checkLedger(result, [load], stack.postgres.connectionString);
    result.figure('trials', TRIALS[context.mode]);
    result.figure('requests unanswered when the signal came (summed over trials)', inFlightAtSignal);
    if (signal === 'SIGTERM') {
      result.figure('drain time p50 / max (ms)', `${percentile(drains, 50)} / ${Math.max(...drains)}`);
      result.figure('drain deadline (ms, SHUTDOWN_DELAY_MS + DRAIN_TIMEOUT_MS)', deadlineMs);
      result.figure('orchestrator grace period (s, stop_grace_period)', limits.stopGracePeriodS);
    }
    result.figure('restart to /ready p50 / max (ms)', `${percentile(restarts, 50)} / ${Math.max(...restarts)}`);
    result.figure(
      'requests resent after a connection error or 503, then acknowledged',
      load.requests.filter((r) => r.acknowledgedAt !== undefined && r.attempts.length > 1).length,
    );
    result.figure('server counters', 'not summed: each restart begins at zero');
    return result.finish({
      accounting: ledger.accounting,
      statuses: tallyStatuses(attempts),
      peakRssMb: peak || undefined,
      recoverySeconds: percentile(restarts, 50) / 1000,
    });
  }).catch((err: unknown) => result.crashed(err));
}

function percentile(values: number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

export default [
  signalScenario(
    'SIGTERM',
    [15],
    'SIGTERM at random points of steady ingest, restart, repeat: drain within the deadline, nothing acknowledged lost',
  ),
  signalScenario(
    'SIGKILL',
    [16],
    'SIGKILL at random points of steady ingest, restart, repeat: nothing acknowledged lost, retries absorbed',
  ),
];
