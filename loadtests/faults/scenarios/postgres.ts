/**
 * Catalog rows 7, 9 and 10: PostgreSQL stops, crashes, loses a writer mid-COPY, or loses it at
 * COMMIT, while the same tracehouse keeps running under steady ingest. Clients resend refused
 * requests (OTLP exporters do), so every request is acknowledged in the end; nothing acknowledged
 * may be missing and nothing may be stored twice. PostgreSQL is a private embedded instance.
 */
import { readyStatus } from '../../../test/helpers/otlp-load.js';
import { sleep } from '../harness.js';
import { ingestUnderFault, waitFor, type FaultRun } from '../ingest-under-fault.js';
import { stallCommitsAfterFlush, terminateActiveCopy, terminateCommitWaiters } from '../postgres-admin.js';
import type { Scenario } from '../scenario.js';

/** How long /ready may take to notice (its PostgreSQL ping is cached for 1 s). */
const READY_NOTICE_MS = 5000;
/** Fail fast on a dead PostgreSQL, back off briefly: the test then sees recovery within seconds. */
const STACK = { env: { STATEMENT_TIMEOUT_MS: '10000' } };

/**
 * Stops PostgreSQL (fast or immediate), keeps it down `downMs`, starts it again. A short outage may
 * be absorbed entirely by the writers' own retries, so 503s are required only when `expectRefusals`.
 */
async function outage(
  run: FaultRun,
  immediate: boolean,
  downMs: number,
  expectRefusals: boolean,
): Promise<{ clearedAt: number }> {
  const { stack, load, result } = run;
  const stoppedAt = Date.now();
  await stack.postgres.stop({ immediate });
  const readyAfterMs = await waitFor(
    async () => (await readyStatus(stack.url)) === 503,
    READY_NOTICE_MS,
    '/ready to turn 503',
  ).catch(() => undefined);
  result.check(readyAfterMs !== undefined, `/ready still 200 ${READY_NOTICE_MS} ms after PostgreSQL stopped`);
  await sleep(Math.max(0, downMs - (Date.now() - stoppedAt)));
  const refusedWhileDown = load.attempts.filter((a) => a.status === 503 && a.startedAt >= stoppedAt).length;
  await stack.postgres.start();
  const clearedAt = Date.now();
  run.log(
    `PostgreSQL down ${((clearedAt - stoppedAt) / 1000).toFixed(1)} s (${immediate ? 'immediate' : 'fast'} stop)`,
  );
  const readyAgainMs = await waitFor(async () => (await readyStatus(stack.url)) === 200, 30_000, '/ready to turn 200');
  if (expectRefusals) result.check(refusedWhileDown > 0, 'no request was refused with 503 while PostgreSQL was down');
  result.figure('PostgreSQL down (s)', (clearedAt - stoppedAt) / 1000);
  result.figure('/ready turned 503 after (ms)', readyAfterMs ?? 'never');
  result.figure('/ready 200 again after restart (s)', readyAgainMs / 1000);
  result.figure('503 answers while down', refusedWhileDown);
  return { clearedAt };
}

const stopped: Scenario = {
  id: 'postgres-stopped',
  title: 'PostgreSQL stopped (fast shutdown) under load, then started again',
  catalogRows: [7],
  run: (context) =>
    ingestUnderFault(stopped, context, { stack: STACK }, (run) =>
      outage(run, false, context.mode === 'full' ? 30_000 : 2000, true),
    ),
};

const immediateRestart: Scenario = {
  id: 'postgres-immediate-restart',
  title: 'PostgreSQL crash-stopped (-m immediate, recovery at start) under load, restarted at once',
  catalogRows: [9],
  run: (context) =>
    ingestUnderFault(immediateRestart, context, { stack: STACK }, (run) =>
      outage(run, true, context.mode === 'full' ? 5000 : 0, context.mode === 'full'),
    ),
};

const killMidCopy: Scenario = {
  id: 'postgres-kill-mid-copy',
  title: "A writer's backend terminated while its COPY streams rows (pg_terminate_backend), repeatedly",
  catalogRows: [9],
  run: (context) =>
    ingestUnderFault(
      killMidCopy,
      context,
      // Bigger requests make longer COPYs, which the 1 ms poll inside PostgreSQL then catches.
      { stack: STACK, load: { concurrency: 6, spansPerRequest: 400, pauseMs: 0 } },
      async (run) => {
        const kills = context.mode === 'full' ? 10 : 2;
        let killed = 0;
        for (let i = 0; i < kills; i++) {
          const victim = await terminateActiveCopy(run.stack.postgres.connectionString, 10_000);
          if (victim !== undefined) killed += 1;
          run.log(victim ? `terminated backend ${victim}…` : 'no COPY seen within 10 s');
          await sleep(300); // let the pool reconnect and the backoff pass before the next kill
        }
        run.result.check(killed === kills, `only ${killed} of ${kills} COPYs were caught and terminated`);
        run.result.figure('COPY backends terminated', killed);
        return { clearedAt: Date.now() };
      },
    ),
};

const commitCut: Scenario = {
  id: 'postgres-commit-cut',
  title: 'Connection cut after COMMIT reached the WAL but before the answer (ambiguous commit), repeatedly',
  catalogRows: [10],
  run: (context) =>
    ingestUnderFault(commitCut, context, { stack: STACK }, async (run) => {
      const { connectionString } = run.stack.postgres;
      const cuts = context.mode === 'full' ? 10 : 2;
      const cut: number[] = [];
      await stallCommitsAfterFlush(connectionString, true);
      try {
        for (let i = 0; i < cuts; i++) {
          const pids = await terminateCommitWaiters(connectionString, 10_000);
          cut.push(...pids);
          run.log(`cut ${pids.length} connection(s) waiting after their commit`);
          await sleep(300);
        }
      } finally {
        await stallCommitsAfterFlush(connectionString, false);
      }
      const clearedAt = Date.now();
      // Whatever was waiting when the stall was lifted commits normally; the cut ones are the test.
      run.result.check(cut.length >= cuts, `only ${cut.length} commits were cut (wanted ${cuts})`);
      run.result.figure('connections cut after their commit record', cut.length);
      return { clearedAt };
    }).then((result) => {
      // The fault must be visible in the ledger: rows committed whose requests were refused, and
      // absorbed as duplicates when the clients resent them.
      const absorbed = Number(result.figures['duplicates absorbed (spans)'] ?? 0);
      const unacked = Number(result.figures['committed without acknowledgement (spans)'] ?? 0);
      if (result.accounting && (absorbed === 0 || unacked === 0)) {
        result.failures.push(
          `no ambiguous commit was observed (committed without acknowledgement ${unacked}, duplicates absorbed ${absorbed})`,
        );
      }
      return result;
    }),
};

export default [stopped, immediateRestart, killMidCopy, commitCut];
