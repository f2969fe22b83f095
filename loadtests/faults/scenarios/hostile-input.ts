/**
 * Hostile input against a running server while good traffic flows (reliability catalog rows 5, 6,
 * 21–23, 25–27): gzip bombs of 1 GiB, bodies over the limit with and without Content-Length,
 * AnyValue nesting 10,000 deep in protobuf and JSON, NUL / invalid UTF-8 / lone surrogates in every
 * string field, 100k attributes on one span, timestamps at 0 and in 2554, slowloris and slow POST.
 *
 * Passes when every attack gets the answer of DESIGN.md's bad-input policy, the slow clients are
 * closed within REQUEST_TIMEOUT_MS (+ a sweep margin), what was stored is sanitized / capped, the
 * server's peak RSS (kernel VmHWM) stays within its baseline + MAX_BODY_BYTES + 32 MB and within the
 * memory limit of docker-compose.prod.yml + 32 MB (with its NODE_OPTIONS), nothing is logged at error
 * level, and the good traffic's accounting is clean (0 acknowledged lost, 0 duplicates).
 */
import { buildAttacks, GIB, runAttack, type AttackResult } from '../hostile/attacks.js';
import {
  drainAndAccount,
  goodTrafficFailures,
  latencyPercentileMs,
  startGoodTraffic,
  statusCounts,
} from '../hostile/good-traffic.js';
import {
  gzipBombBuffer,
  SLOWLORIS_DRIP,
  SLOWLORIS_HEAD,
  slowClient,
  slowPostHead,
  type SlowAnswer,
} from '../hostile/raw-http.js';
import { checkStored } from '../hostile/stored-checks.js';
import { metricValue, startTargetServer } from '../hostile/target-server.js';
import { deployedLimits } from '../harness.js';
import type { Scenario, ScenarioContext, ScenarioResult } from '../scenario.js';

const SIZES = {
  smoke: { baselineMs: 3000, requestTimeoutMs: 3000, slowClients: 4, dripEveryMs: 1000, rounds: 1 },
  full: { baselineMs: 15_000, requestTimeoutMs: 60_000, slowClients: 100, dripEveryMs: 5000, rounds: 3 },
};
const MAX_BODY_BYTES = 16 * 1024 * 1024;
const MAX_ATTRIBUTES_PER_SPAN = 128;
const ATTRIBUTES_SENT = 100_000;
/** Node enforces timeouts in a sweep of open connections (tracehouse sweeps every second). */
const SWEEP_MARGIN_MS = 5000;
const RSS_HEADROOM_MB = 32;
const SANITIZE_KINDS = ['nul_byte', 'invalid_utf8', 'lone_surrogate', 'attributes_dropped'];

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function run(context: ScenarioContext): Promise<ScenarioResult> {
  const started = Date.now();
  const size = SIZES[context.mode];
  const failures: string[] = [];
  const figures: Record<string, number | string> = {};
  const bomb = await gzipBombBuffer(GIB);
  figures['gzip bomb compressed bytes'] = bomb.length;

  const deployed = deployedLimits();
  const server = await startTargetServer({
    NODE_OPTIONS: deployed.nodeOptions,
    REQUEST_TIMEOUT_MS: String(size.requestTimeoutMs),
    MAX_BODY_BYTES: String(MAX_BODY_BYTES),
    MAX_ATTRIBUTES_PER_SPAN: String(MAX_ATTRIBUTES_PER_SPAN),
  });
  const load = startGoodTraffic({ url: server.url });
  let peakRssMb = 0;
  let accountingResult: Awaited<ReturnType<typeof drainAndAccount>> | undefined;
  const attackStatuses: Record<string, number> = {};
  try {
    context.log(`hostile-input: baseline of good traffic for ${size.baselineMs} ms`);
    const baselineFrom = Date.now();
    server.resetPeakRss();
    await sleep(size.baselineMs);
    const baselineRss = server.peakRssMb();
    const attackFrom = Date.now();
    server.resetPeakRss();
    const before = await server.scrape();

    const slow = startSlowClients(server.url, size);
    const results: AttackResult[] = [];
    for (let round = 0; round < size.rounds; round++) {
      const { attacks, stored } = buildAttacks(server.url, MAX_BODY_BYTES, bomb, ATTRIBUTES_SENT);
      for (const attack of attacks) {
        const result = await runAttack(attack);
        results.push(result);
        context.log(`hostile-input: ${result.id} → ${result.status} in ${result.ms} ms ${result.problem}`);
      }
      failures.push(...(await checkStored(server.url, stored, MAX_ATTRIBUTES_PER_SPAN)));
    }
    const slowAnswers = await slow;
    const attackTo = Date.now();
    peakRssMb = server.peakRssMb();
    await sleep(1000); // the good traffic goes on after the attack
    const after = await server.scrape();

    figures['over-limit answers lost to a reset'] = results.filter((r) => r.reset).length;
    for (const result of results) {
      const key = result.reset ? 'reset-before-answer' : String(result.status);
      attackStatuses[key] = (attackStatuses[key] ?? 0) + 1;
      if (result.problem) failures.push(`${result.id}: expected ${result.expected}, ${result.problem}`);
      const shown = result.reset ? 'reset' : String(result.status);
      const previous = figures[`${result.id} status`];
      figures[`${result.id} status`] = previous === undefined ? shown : `${previous}, ${shown}`;
      figures[`${result.id} ms`] = Math.max(Number(figures[`${result.id} ms`] ?? 0), result.ms);
    }
    for (const [kind, answers] of Object.entries(slowAnswers)) {
      failures.push(...checkSlow(kind, answers, size.requestTimeoutMs, attackStatuses));
      figures[`${kind} clients`] = answers.length;
      figures[`${kind} closed after max ms`] = Math.max(...answers.map((a) => a.closedAfterMs));
    }
    failures.push(...checkCounters(before, after, size.rounds));

    figures['baseline peak RSS MB'] = round1(baselineRss);
    figures['attack peak RSS MB'] = round1(peakRssMb);
    figures['configured memory limit MB'] = deployed.memoryLimitMb;
    const bound = baselineRss + MAX_BODY_BYTES / 1024 ** 2 + RSS_HEADROOM_MB;
    if (peakRssMb > bound) {
      failures.push(`peak RSS ${round1(peakRssMb)} MB above baseline + body limit + 32 MB (${round1(bound)})`);
    }
    if (peakRssMb > deployed.memoryLimitMb + RSS_HEADROOM_MB) {
      failures.push(`peak RSS ${round1(peakRssMb)} MB above the configured memory limit + 32 MB`);
    }
    figures['good p99 before ms'] = latencyPercentileMs(load, 99, baselineFrom, attackFrom);
    figures['good p99 during ms'] = latencyPercentileMs(load, 99, attackFrom, attackTo);
    const servedDuring = load.acknowledgedSince(attackFrom) - load.acknowledgedSince(attackTo);
    figures['good requests acknowledged during attack'] = servedDuring;
    if (servedDuring === 0) failures.push('no good request was acknowledged during the attack');
    accountingResult = await drainAndAccount(load, server.databaseUrl);
  } finally {
    load.stop();
    if (!server.alive()) failures.push(`the server died: ${server.process.stderr().slice(-500)}`);
    failures.push(...server.errorLogs().map((line) => `logged at error level: ${line}`));
    await server.stop();
  }
  const accounted = accountingResult!; // assigned unless the try block threw (and so did run)
  const goodStatuses = statusCounts(load);
  for (const [status, n] of Object.entries(goodStatuses)) figures[`good traffic ${status}`] = n;
  failures.push(...accounted.problems, ...goodTrafficFailures(accounted.accounting, goodStatuses));
  const statuses = { ...goodStatuses };
  for (const [status, n] of Object.entries(attackStatuses)) statuses[status] = (statuses[status] ?? 0) + n;
  return {
    id: 'hostile-input',
    title: scenario.title,
    catalogRows: scenario.catalogRows,
    accounting: accounted.accounting,
    statuses,
    peakRssMb: round1(peakRssMb),
    figures,
    failures,
    durationSeconds: Math.round((Date.now() - started) / 100) / 10,
  };
}

function startSlowClients(url: string, size: (typeof SIZES)['smoke']): Promise<Record<string, SlowAnswer[]>> {
  const giveUpMs = size.requestTimeoutMs + SWEEP_MARGIN_MS * 3;
  const many = (make: () => Promise<SlowAnswer>) => Promise.all(Array.from({ length: size.slowClients }, make));
  return Promise.all([
    many(() => slowClient(url, SLOWLORIS_HEAD, SLOWLORIS_DRIP, size.dripEveryMs, giveUpMs)),
    many(() => slowClient(url, slowPostHead(100_000), '\0', size.dripEveryMs, giveUpMs)),
  ]).then(([slowloris, slowPost]) => ({ slowloris, 'slow-post': slowPost }));
}

function checkSlow(
  kind: string,
  answers: SlowAnswer[],
  requestTimeoutMs: number,
  statuses: Record<string, number>,
): string[] {
  const failures: string[] = [];
  const limit = requestTimeoutMs + SWEEP_MARGIN_MS;
  for (const answer of answers) {
    const key = answer.status === 0 ? 'closed-without-answer' : String(answer.status);
    statuses[key] = (statuses[key] ?? 0) + 1;
  }
  const open = answers.filter((a) => a.closedAfterMs < 0).length;
  const late = answers.filter((a) => a.closedAfterMs > limit).length;
  const wrong = answers.filter((a) => a.status !== 408 && a.status !== 0).map((a) => a.status);
  if (open > 0) failures.push(`${kind}: ${open} connections still open well past REQUEST_TIMEOUT_MS`);
  if (late > 0) failures.push(`${kind}: ${late} connections closed after more than ${limit} ms`);
  if (wrong.length > 0) failures.push(`${kind}: answered ${wrong.join(',')} instead of 408`);
  return failures;
}

/** The server counted what it did: sanitized values, too-deep requests, out-of-window spans. */
function checkCounters(before: string, after: string, rounds: number): string[] {
  const delta = (name: string, labels: Record<string, string>): number =>
    metricValue(after, name, labels) - metricValue(before, name, labels);
  const failures: string[] = [];
  for (const kind of SANITIZE_KINDS) {
    if (delta('tracehouse_values_sanitized_total', { kind }) <= 0) {
      failures.push(`values_sanitized_total{kind="${kind}"} did not move`);
    }
  }
  const tooDeep = delta('tracehouse_requests_rejected_total', { code: 'TH_ERR_DECODE_TOO_DEEP' });
  if (tooDeep !== 4 * rounds) {
    failures.push(`requests_rejected_total{TH_ERR_DECODE_TOO_DEEP} moved by ${tooDeep}, expected ${4 * rounds}`);
  }
  for (const reason of ['start_time_too_old', 'start_time_too_new']) {
    const moved = delta('tracehouse_spans_rejected_total', { reason });
    if (moved !== rounds) {
      failures.push(`spans_rejected_total{reason="${reason}"} moved by ${moved}, expected ${rounds}`);
    }
  }
  return failures;
}

const round1 = (value: number): number => Math.round(value * 10) / 10;

const scenario: Scenario = {
  id: 'hostile-input',
  title:
    'Hostile input (bombs, oversize, deep nesting, bad strings, 100k attributes, bad timestamps, slow clients) under good traffic',
  catalogRows: [5, 6, 21, 22, 23, 25, 26, 27],
  run,
};

export default scenario;
