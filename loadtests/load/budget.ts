/**
 * The throughput budget (loadtests/budget.json): a floor or ceiling per scenario, checked against
 * the medians of a run (report.ts Summary). Every run's loss accounting must also hold, whatever
 * the speed. check() returns one line per rule, so a failure names the rule that failed.
 */
import { readFileSync } from 'node:fs';
import type { ScenarioName } from './run-result.js';
import { median, type Summary } from './report.js';

export interface ScenarioBudget {
  /** Median spans/s ÷ the same round's raw COPY rate. */
  minRatioToLimit?: number;
  minSpansPerS?: number;
  maxP99Ms?: number;
  maxPeakRssMb?: number;
  maxBytesPerSpan?: number;
  /** Slower than another scenario by at most this fraction: median over rounds of 1 − spans/s ÷ other's. */
  maxSlowdownVs?: { scenario: ScenarioName; fraction: number };
  /** PostgreSQL's CPU share ÷ the busiest instance's (scale-2: PostgreSQL is the limit when ≥ 1). */
  minPostgresToInstanceCpu?: number;
}

export interface Budget {
  defaults: { runs: number; warmupSeconds: number; durationSeconds: number };
  scenarios: Partial<Record<ScenarioName, ScenarioBudget>>;
}

export function loadBudget(file: string): Budget {
  return JSON.parse(readFileSync(file, 'utf8')) as Budget;
}

export interface CheckLine {
  ok: boolean;
  text: string;
}

const fmt = (x: number, digits: number): string => (Number.isFinite(x) ? x.toFixed(digits) : 'n/a');

/**
 * How much CPU per span a ratio line leaves the server, median over rounds: the limit's whole
 * machine CPU per span ÷ ratio, minus what everything but the server cost per span in this run
 * (PostgreSQL, the load generator, other processes). Both sides share the same cores, so a run
 * reaches the ratio only if its machine CPU per span is at most the limit's ÷ ratio, and only if it
 * keeps the machine as busy as the limit did (so the allowance is an upper bound). Undefined when
 * the CPU of either was not measured.
 */
export function serverShare(
  summary: Summary,
  limit: Summary,
  ratio: number,
): { allowedUs: number; usedUs: number } | undefined {
  const allowed: number[] = [];
  const used: number[] = [];
  for (const [run, cpu] of summary.runCpuUsPerSpan) {
    const limitMachine = limit.runCpuUsPerSpan.get(run)?.get('machine');
    const machine = cpu.get('machine');
    const server = cpu.get('server');
    if (limitMachine === undefined || machine === undefined || server === undefined) continue;
    allowed.push(limitMachine / ratio - (machine - server));
    used.push(server);
  }
  const result = { allowedUs: median(allowed), usedUs: median(used) };
  return Number.isFinite(result.allowedUs) && Number.isFinite(result.usedUs) ? result : undefined;
}

export function checkBudget(budget: Budget, summaries: Map<ScenarioName, Summary>): CheckLine[] {
  const lines: CheckLine[] = [];
  const rule = (
    scenario: string,
    name: string,
    value: number,
    op: '>=' | '<=',
    bound: number,
    digits: number,
    detail = '',
  ) => {
    const ok = Number.isFinite(value) && (op === '>=' ? value >= bound : value <= bound);
    lines.push({ ok, text: `${scenario}: ${name} ${fmt(value, digits)} ${op === '>=' ? '≥' : '≤'} ${bound}${detail}` });
  };
  for (const [scenario, summary] of summaries) {
    lines.push({ ok: summary.accountingOk, text: `${scenario}: loss accounting of all ${summary.runs} runs holds` });
    const b = budget.scenarios[scenario];
    if (b === undefined) continue;
    if (b.minRatioToLimit !== undefined) {
      const limit = summaries.get('limit');
      const share = limit && serverShare(summary, limit, b.minRatioToLimit);
      const detail = share
        ? ` (the ratio leaves the server ${fmt(share.allowedUs, 1)} µs of CPU per span beside this run's` +
          ` PostgreSQL, load generator and others; it used ${fmt(share.usedUs, 1)})`
        : '';
      rule(scenario, 'ratio to raw COPY', summary.ratioToLimit, '>=', b.minRatioToLimit, 2, detail);
    }
    if (b.minSpansPerS !== undefined) rule(scenario, 'spans/s', summary.spansPerS, '>=', b.minSpansPerS, 0);
    if (b.maxP99Ms !== undefined) rule(scenario, 'p99 ms', summary.p99Ms, '<=', b.maxP99Ms, 0);
    if (b.maxPeakRssMb !== undefined) rule(scenario, 'peak server RSS MB', summary.peakRssMb, '<=', b.maxPeakRssMb, 0);
    if (b.maxBytesPerSpan !== undefined) {
      rule(scenario, 'disk bytes/span', summary.bytesPerSpan, '<=', b.maxBytesPerSpan, 0);
    }
    if (b.maxSlowdownVs !== undefined) {
      // Median over the rounds both ran in of 1 − this ÷ other (same-round pairs cancel the drift).
      const other = summaries.get(b.maxSlowdownVs.scenario);
      const pairs = [...summary.runSpansPerS]
        .filter(([run]) => other?.runSpansPerS.has(run))
        .map(([run, rate]) => 1 - rate / other!.runSpansPerS.get(run)!);
      const slowdown = median(pairs);
      rule(scenario, `slowdown vs ${b.maxSlowdownVs.scenario}`, slowdown, '<=', b.maxSlowdownVs.fraction, 3);
    }
    if (b.minPostgresToInstanceCpu !== undefined) {
      const instances = [...summary.cores].filter(([name]) => name.startsWith('server')).map(([, cores]) => cores);
      const value = (summary.cores.get('postgres') ?? Number.NaN) / Math.max(...instances);
      rule(scenario, 'postgres CPU ÷ busiest instance CPU', value, '>=', b.minPostgresToInstanceCpu, 2);
    }
  }
  return lines;
}
