/**
 * Catalog rows 13 and 14: Redis is a cache, never on the acknowledgement path. One tracehouse with
 * REDIS_URL pointing at a private redis-server runs three equal phases of closed-loop ingest:
 * Redis up, Redis stopped, Redis frozen (SIGSTOP: connections accepted, nothing answered, which is
 * what a slow or partitioned Redis looks like to a client). Ingest must see only 200s in every
 * phase, its throughput is compared with the Redis-up phase of the same run, and trace-by-id
 * queries during each phase must return exactly the spans that were acknowledged.
 */
import type { SentRequest } from '../../../test/helpers/otlp-load.js';
import { ackedSpansPerS, latencyPercentileMs } from '../accounting.js';
import { sleep } from '../harness.js';
import { ingestUnderFault, type FaultRun } from '../ingest-under-fault.js';
import type { Scenario } from '../scenario.js';
import { scrapeMetrics, type MetricsSnapshot } from '../server-probe.js';

const TRACES_QUERIED_PER_PHASE = 5;
/** A phase's throughput below this share of the Redis-up phase fails (wide: the machine is shared). */
const MIN_THROUGHPUT_SHARE = 0.5;

interface Phase {
  name: string;
  spansPerS: number;
  p99Ms: number | undefined;
  queriesOk: number;
  queryMsMax: number;
  problems: string[];
}

const scenario: Scenario = {
  id: 'redis-down-and-slow',
  title: 'Redis stopped, then frozen (SIGSTOP), under ingest: ingest unaffected, trace queries still exact',
  catalogRows: [13, 14],
  run: (context) =>
    ingestUnderFault(
      scenario,
      context,
      { stack: { redis: true }, load: { concurrency: 4, spansPerRequest: 200, pauseMs: 0 }, allowedStatuses: [200] },
      async (run) => {
        const phaseMs = context.mode === 'full' ? 20_000 : 1500;
        const redis = run.stack.redis!;
        const phases: Phase[] = [];
        const gauges: string[] = [];
        phases.push(await measurePhase(run, 'Redis up', phaseMs, gauges));
        await redis.stop();
        phases.push(await measurePhase(run, 'Redis stopped', phaseMs, gauges));
        await redis.start();
        await sleep(context.mode === 'full' ? 3000 : 1000); // ioredis reconnects (backoff ≤ 2 s)
        redis.pause();
        phases.push(await measurePhase(run, 'Redis frozen', phaseMs, gauges));
        redis.resume();
        const clearedAt = Date.now();

        const [up, ...faulty] = phases;
        for (const phase of phases) {
          run.result.figure(`${phase.name}: ingest (spans/s)`, phase.spansPerS);
          run.result.figure(`${phase.name}: ingest p99 (ms)`, phase.p99Ms ?? 'none');
          run.result.figure(`${phase.name}: slowest trace-by-id query (ms)`, phase.queryMsMax);
          for (const problem of phase.problems) run.result.check(false, `${phase.name}: ${problem}`);
          run.result.check(
            phase.queriesOk === TRACES_QUERIED_PER_PHASE,
            `${phase.name}: ${phase.queriesOk} of ${TRACES_QUERIED_PER_PHASE} trace queries exact`,
          );
        }
        for (const phase of faulty) {
          const share = phase.spansPerS / up.spansPerS;
          run.result.figure(`${phase.name}: throughput change vs Redis up (%)`, 100 * (share - 1));
          run.result.check(
            share >= MIN_THROUGHPUT_SHARE,
            `${phase.name}: ingest fell to ${Math.round(100 * share)} % of the Redis-up phase`,
          );
        }
        run.result.figure('redis-related metrics at the end of each phase', gauges.join('; '));
        return { clearedAt };
      },
    ),
};

async function measurePhase(run: FaultRun, name: string, phaseMs: number, gauges: string[]): Promise<Phase> {
  const { load, stack } = run;
  const start = Date.now();
  await sleep(phaseMs / 2);
  // Query traces acknowledged in this phase while the fault is on.
  const recent = load.requests.filter((r) => r.acknowledgedAt !== undefined && r.acknowledgedAt >= start);
  const picked = recent.slice(-TRACES_QUERIED_PER_PHASE);
  const problems: string[] = [];
  let queriesOk = 0;
  let queryMsMax = 0;
  for (const request of picked) {
    const startedAt = Date.now();
    const problem = await checkTrace(stack.url, request);
    queryMsMax = Math.max(queryMsMax, Date.now() - startedAt);
    if (problem === undefined) queriesOk += 1;
    else problems.push(problem);
  }
  if (picked.length < TRACES_QUERIED_PER_PHASE) problems.push(`only ${picked.length} requests acknowledged to query`);
  await sleep(Math.max(0, phaseMs - (Date.now() - start)));
  const end = Date.now();
  const metrics = await scrapeMetrics(stack.url);
  gauges.push(`${name}: ${describeRedisMetrics(metrics)}`);
  const spansPerS = ackedSpansPerS(load, start, end);
  run.log(`${name}: ${Math.round(spansPerS)} spans/s`);
  return {
    name,
    spansPerS,
    p99Ms: latencyPercentileMs(load, 99, start, end),
    queriesOk,
    queryMsMax,
    problems,
  };
}

/** GET /api/traces/<id> for the first trace of the request: undefined when its span ids match exactly. */
async function checkTrace(baseUrl: string, request: SentRequest): Promise<string | undefined> {
  const traceId = request.spanKeys[0].split(':')[0];
  const expected = request.spanKeys
    .filter((key) => key.startsWith(`${traceId}:`))
    .map((key) => key.split(':')[1])
    .sort();
  try {
    const res = await fetch(`${baseUrl}/api/traces/${traceId}`, { signal: AbortSignal.timeout(10_000) });
    if (res.status !== 200) return `trace ${traceId}: HTTP ${res.status}`;
    const body = (await res.json()) as { data: Array<{ spans: Array<{ spanID: string }> }> };
    const got = (body.data[0]?.spans ?? []).map((span) => span.spanID).sort();
    if (got.join() !== expected.join()) {
      return `trace ${traceId}: ${got.length} spans returned, ${expected.length} sent`;
    }
    return undefined;
  } catch (err) {
    return `trace ${traceId}: ${(err as Error).name}`;
  }
}

function describeRedisMetrics(m: MetricsSnapshot): string {
  const parts = [
    `redis_up ${m.sum('tracehouse_redis_up')}`,
    `rate-limit fallbacks ${m.sum('tracehouse_rate_limit_fallback_total')}`,
  ];
  for (const name of new Set(m.samples.map((s) => s.name).filter((n) => n.startsWith('tracehouse_query_cache_')))) {
    parts.push(`${name.replace('tracehouse_query_cache_', 'query cache ')} ${m.sum(name)}`);
  }
  return parts.join(', ');
}

export default scenario;
