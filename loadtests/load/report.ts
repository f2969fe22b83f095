/**
 * Results as diffable text: one file per scenario under loadtests/results/, fixed columns, one
 * header line with the date and command (the only line that changes on every run), then the runs,
 * the medians, the loss accounting of every run and the storage breakdown of the median run.
 */
import type { RunResult, ScenarioName } from './run-result.js';
import { formatStorageCost } from './storage-cost.js';
import { QUERY_KINDS } from './query-load.js';
import { quantile } from './ledger.js';

export const DESCRIPTIONS: Record<ScenarioName, string> = {
  limit: 'raw COPY of the rows the server writes, straight into spans (no dedupe, no summaries): the limit',
  protobuf: 'OTLP/HTTP protobuf, 512 realistic spans per request, closed loop (autocannon)',
  'protobuf-70': 'OTLP/HTTP protobuf, open loop at 70 % of the same round\u2019s protobuf rate (paced client)',
  json: 'OTLP/HTTP JSON, the same spans, closed loop (autocannon)',
  'protobuf-gzip': 'OTLP/HTTP protobuf + gzip (level 6, pre-compressed distinct bodies), closed loop (autocannon)',
  websocket: 'WebSocket stream, binary frames of 512 spans, acked per frame (ws client)',
  mixed: 'protobuf ingest (autocannon) while a second autocannon queries trace by id and searches',
  'scale-2': 'protobuf through nginx (TLS) to 2 server instances on one database',
};

export const median = (xs: number[]): number => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** The medians a budget is checked against. */
export interface Summary {
  scenario: ScenarioName;
  runs: number;
  spansPerS: number;
  ratioToLimit: number; // median over rounds of run / same round's limit
  mbPerS: number;
  p50Ms: number;
  p99Ms: number;
  peakRssMb: number; // the largest over all runs
  bytesPerSpan: number;
  cores: Map<string, number>;
  /** spans/s per round (run number), for same-round comparisons between scenarios. */
  runSpansPerS: Map<number, number>;
  /** CPU µs per acknowledged span per round, by process group (machine included). */
  runCpuUsPerSpan: Map<number, Map<string, number>>;
  accountingOk: boolean;
}

export function summarize(runs: RunResult[], limits: RunResult[]): Summary {
  const limitOf = (run: number): number => limits.find((l) => l.run === run)?.spansPerS ?? Number.NaN;
  const coreNames = [...new Set(runs.flatMap((r) => [...(r.cores ?? new Map()).keys()]))];
  return {
    scenario: runs[0].scenario,
    runs: runs.length,
    spansPerS: median(runs.map((r) => r.spansPerS)),
    ratioToLimit: median(runs.map((r) => r.spansPerS / limitOf(r.run))),
    mbPerS: median(runs.map((r) => r.mbPerS)),
    p50Ms: median(runs.map((r) => r.p50Ms)),
    p99Ms: median(runs.map((r) => r.p99Ms)),
    peakRssMb: Math.max(...runs.map((r) => (r.peakRssBytes ?? Number.NaN) / 2 ** 20)),
    bytesPerSpan: median(runs.map((r) => r.storage?.bytesPerSpan ?? Number.NaN)),
    cores: new Map(coreNames.map((n) => [n, median(runs.map((r) => r.cores?.get(n) ?? Number.NaN))])),
    runSpansPerS: new Map(runs.map((r) => [r.run, r.spansPerS])),
    runCpuUsPerSpan: new Map(runs.map((r) => [r.run, cpuUsPerSpan(r)])),
    accountingOk: runs.every((r) => r.accounting.ok),
  };
}

/** CPU µs per acknowledged span by process group: cores × 10^6 ÷ spans/s. */
function cpuUsPerSpan(r: RunResult): Map<string, number> {
  return new Map([...(r.cores ?? new Map<string, number>())].map(([n, cores]) => [n, (cores * 1e6) / r.spansPerS]));
}

const num = (x: number, digits = 0, width = 8): string =>
  (Number.isFinite(x)
    ? x.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })
    : 'n/a'
  ).padStart(width);

function row(
  label: string,
  r: Omit<Summary, 'scenario' | 'runs' | 'accountingOk' | 'runSpansPerS' | 'runCpuUsPerSpan'>,
  coreNames: string[],
): string {
  return (
    `${label.padEnd(7)}${num(r.spansPerS)} ${num(r.ratioToLimit, 2, 6)} ${num(r.mbPerS, 1, 6)} ${num(r.p50Ms, 0, 6)} ` +
    `${num(r.p99Ms, 0, 6)} ${num(r.peakRssMb, 0, 6)} ${num(r.bytesPerSpan, 0, 6)}` +
    coreNames.map((n) => ` ${num(r.cores.get(n) ?? Number.NaN, 2, Math.max(8, n.length))}`).join('')
  );
}

export function formatScenario(header: string, runs: RunResult[], limits: RunResult[], settingsLine: string): string {
  const summary = summarize(runs, limits);
  const coreNames = [...summary.cores.keys()];
  const lines = [
    header,
    `scenario ${summary.scenario}: ${DESCRIPTIONS[summary.scenario]}`,
    settingsLine,
    '',
    `${'run'.padEnd(7)}${'spans/s'.padStart(8)} ${'ratio'.padStart(6)} ${'MB/s'.padStart(6)} ${'p50ms'.padStart(6)} ` +
      `${'p99ms'.padStart(6)} ${'rssMB'.padStart(6)} ${'B/span'.padStart(6)}` +
      coreNames.map((n) => ` ${n.padStart(Math.max(8, n.length))}`).join('') +
      '   (CPU columns: cores over the measured window)',
  ];
  for (const r of runs) {
    const limit = limits.find((l) => l.run === r.run)?.spansPerS ?? Number.NaN;
    lines.push(
      row(
        String(r.run),
        {
          ...r,
          ratioToLimit: r.spansPerS / limit,
          peakRssMb: (r.peakRssBytes ?? Number.NaN) / 2 ** 20,
          bytesPerSpan: r.storage?.bytesPerSpan ?? Number.NaN,
          cores: r.cores ?? new Map(),
        },
        coreNames,
      ),
    );
  }
  const perSpan = coreNames
    .filter((n) => n !== 'machine' && n !== 'others')
    .map((n) => `${n} ${num(median([...summary.runCpuUsPerSpan.values()].map((cpu) => cpu.get(n) ?? NaN)), 1, 0)}`);
  lines.push(
    row('median', summary, coreNames),
    `CPU µs per acknowledged span (median): ${perSpan.join(', ')}`,
    '',
    'loss accounting (spans; every request of the run, warm-up included):',
  );
  for (const r of runs) {
    const a = r.accounting;
    lines.push(
      `  run ${r.run}: sent ${a.sent} = acknowledged ${a.acknowledged} + refused ${a.refused} + failed ${a.failed}` +
        ` (no answer ${a.unanswered}, partial ${a.partial}); stored ${a.stored}, duplicated ${a.duplicated},` +
        ` acknowledged-missing ${a.missing}, malformed ${a.malformed}, never sent ${a.unsent};` +
        ` stored of refused ${a.storedRefused}, of unanswered ${a.storedUnanswered} -> ${a.ok ? 'ok' : 'FAILED'}`,
    );
    const statuses = Object.entries(a.otherStatuses);
    if (statuses.length > 0) lines.push(`    other statuses: ${statuses.map(([s, n]) => `${s}×${n}`).join(', ')}`);
    lines.push(
      `    requests answered in the measured window: ${r.okRequests} ok, ${r.refusedRequests} refused, ${r.otherRequests} other`,
    );
    if (r.offeredRequestsPerS !== undefined) lines.push(`    offered ${r.offeredRequestsPerS.toFixed(1)} requests/s`);
    for (const note of r.notes) lines.push(`    ${note}`);
    if (r.queries) lines.push(...formatQueries(r));
  }
  const withStorage = runs.filter((r) => r.storage);
  if (withStorage.length > 0) {
    const mid = withStorage.sort((a, b) => a.storage!.bytesPerSpan - b.storage!.bytesPerSpan)[
      Math.floor((withStorage.length - 1) / 2)
    ];
    lines.push('', `median run (${mid.run}) on disk, after the run, no VACUUM:`, ...formatStorageCost(mid.storage!));
  }
  return `${lines.join('\n')}\n`;
}

function formatQueries(r: RunResult): string[] {
  const q = r.queries!;
  const lines = [`    queries (acknowledged trace not found: ${q.acknowledgedNotFound}):`];
  for (const kind of QUERY_KINDS) {
    const s = q.byKind[kind];
    const statuses = Object.entries(s.statuses)
      .map(([code, n]) => `${code}×${n}`)
      .join(' ');
    lines.push(
      `      ${kind.padEnd(14)} ${String(s.latencies.length).padStart(5)} requests  p50 ${num(quantile(s.latencies, 0.5), 1, 6)} ms` +
        `  p99 ${num(quantile(s.latencies, 0.99), 1, 6)} ms  statuses ${statuses}`,
    );
  }
  return lines;
}
