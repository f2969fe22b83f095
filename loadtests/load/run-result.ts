/**
 * The result of one run of one scenario, and the measured window it is computed over: the load
 * runs warm-up + measured seconds; rates, latencies and CPU shares cover the measured part only,
 * the loss accounting covers everything the run sent.
 */
import type { Accounting, Ledger } from './ledger.js';
import { quantile } from './ledger.js';
import { CpuWindow, machineBusySeconds, type CpuProbe } from './proc-stats.js';
import type { QueryLoadResult } from './query-load.js';
import type { StorageCost } from './storage-cost.js';

export const SCENARIOS = [
  'limit',
  'protobuf',
  'protobuf-70',
  'json',
  'protobuf-gzip',
  'websocket',
  'mixed',
  'scale-2',
] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

export interface RunSettings {
  warmupS: number;
  durationS: number;
  /** HTTP connections (closed loop) of the ingest scenarios. */
  connections: number;
  wsConnections: number;
  wsWindow: number;
  /** Sessions and rows per statement of the raw COPY limit. */
  copyConnections: number;
  copyRowsPerCopy: number;
  queryRequestsPerS: number;
  /** Fraction of the same round's protobuf rate that protobuf-70 offers. */
  pacedFraction: number;
  /** Directory for the server's --cpu-prof output (protobuf runs only), if profiling. */
  profileDir?: string;
  /** Extra environment of every server process (--server-env KEY=VALUE,…): tuning experiments. */
  serverEnv: Record<string, string>;
}

export interface RunResult {
  scenario: ScenarioName;
  run: number;
  spansPerS: number;
  mbPerS: number; // request bodies (as sent, compressed for gzip) or COPY text, acknowledged only
  p50Ms: number;
  p99Ms: number;
  okRequests: number;
  refusedRequests: number;
  otherRequests: number;
  peakRssBytes: number | undefined; // the largest server's VmHWM
  cores: Map<string, number>; // CPU share per process (group) over the measured window
  accounting: Accounting;
  storage?: StorageCost;
  queries?: QueryLoadResult;
  offeredRequestsPerS?: number;
  /** The server's .cpuprofile of this run (--profile). */
  profile?: string;
  /** How long after the server's start the load began (the profile's startup part). */
  profileSkipMs?: number;
  notes: string[];
}

/** Starts the CPU window after the warm-up and stops it at the end of the measured part. */
export function scheduleCpuWindow(
  probes: Map<string, CpuProbe>,
  settings: RunSettings,
): { result: Promise<Map<string, number>>; cancel: () => void } {
  const window = new CpuWindow(new Map([...probes, ['machine', machineBusySeconds]]));
  let startTimer: NodeJS.Timeout | undefined;
  let stopTimer: NodeJS.Timeout | undefined;
  const result = new Promise<Map<string, number>>((resolve) => {
    startTimer = setTimeout(() => {
      window.start();
      stopTimer = setTimeout(() => resolve(withOthers(window.stop())), settings.durationS * 1000);
    }, settings.warmupS * 1000);
  });
  return {
    result,
    cancel: () => {
      clearTimeout(startTimer);
      clearTimeout(stopTimer);
    },
  };
}

/** Adds `others`: what the rest of the machine used (machine − every measured process). */
function withOthers(cores: Map<string, number>): Map<string, number> {
  let ours = 0;
  for (const [name, value] of cores) if (name !== 'machine') ours += value;
  return new Map([...cores, ['others', Math.max(0, (cores.get('machine') ?? Number.NaN) - ours)]]);
}

/** The load generator's own CPU (this process), in seconds. */
export const selfCpuSeconds: CpuProbe = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

/** Rates and latencies of the measured window [startedAt + warm-up, startedAt + warm-up + measured). */
export function windowFigures(
  ledger: Ledger,
  startedAt: number,
  settings: RunSettings,
): Pick<RunResult, 'spansPerS' | 'mbPerS' | 'p50Ms' | 'p99Ms' | 'okRequests' | 'refusedRequests' | 'otherRequests'> {
  const from = startedAt + settings.warmupS * 1000;
  const stats = ledger.window(from, from + settings.durationS * 1000);
  return {
    spansPerS: (stats.ok * ledger.spansPerRequest) / settings.durationS,
    mbPerS: stats.okBytes / settings.durationS / 1e6,
    p50Ms: quantile(stats.latencies, 0.5),
    p99Ms: quantile(stats.latencies, 0.99),
    okRequests: stats.ok,
    refusedRequests: stats.refused,
    otherRequests: stats.other,
  };
}
