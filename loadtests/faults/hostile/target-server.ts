/**
 * The server a hostile scenario attacks: a private PostgreSQL (never the shared one) and the built
 * tracehouse (`npm run build` first) as a child process, so a crash is an exit, not a test failure,
 * and its memory is the child's own peak RSS: the kernel's VmHWM (no sampler can miss a spike),
 * reset at the start of each window through /proc/<pid>/clear_refs.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { startPrivatePostgres, type PrivatePostgres } from '../../../test/helpers/private-postgres.js';
import { spawnTracehouse, type TracehouseProcess } from '../../../test/helpers/tracehouse-process.js';

export interface TargetServer {
  readonly url: string;
  readonly databaseUrl: string;
  readonly process: TracehouseProcess;
  /** Starts a memory window: the peak RSS becomes the current RSS. */
  resetPeakRss(): void;
  /** Peak RSS (MB) since the last resetPeakRss() (or the start); 0 once the process is gone. */
  peakRssMb(): number;
  /** Whether the process is still running (a crash is a failure of every scenario). */
  alive(): boolean;
  /** Log lines at error level or above (pino 50+): a hostile input must never cause one. */
  errorLogs(): string[];
  /** The Prometheus text of /metrics (see metricValue). */
  scrape(): Promise<string>;
  stop(): Promise<void>;
}

/** Starts PostgreSQL and tracehouse with `env` on top of quiet, test-sized defaults. */
export async function startTargetServer(env: Record<string, string> = {}): Promise<TargetServer> {
  const postgres: PrivatePostgres = await startPrivatePostgres();
  let server: TracehouseProcess | undefined;
  try {
    server = await spawnTracehouse({ LOG_LEVEL: 'warn', DATABASE_URL: postgres.connectionString, ...env });
    await server.waitReady(60_000);
  } catch (err) {
    await server?.stop();
    await postgres.destroy();
    throw err;
  }
  const proc = server;
  const pid = proc.child.pid!;
  let exited = false;
  void proc.exited.then(() => (exited = true));

  return {
    url: proc.url,
    databaseUrl: postgres.connectionString,
    process: proc,
    resetPeakRss: () => writeFileSync(`/proc/${pid}/clear_refs`, '5'),
    peakRssMb: () => readStatusMb(pid, 'VmHWM'),
    alive: () => !exited,
    errorLogs: () => proc.logs.filter((line) => line.level >= 50).map((line) => JSON.stringify(line).slice(0, 500)),
    async scrape() {
      const res = await fetch(`${proc.url}/metrics`, { signal: AbortSignal.timeout(5000) });
      return res.text();
    },
    async stop() {
      await proc.stop();
      await postgres.destroy();
    },
  };
}

function readStatusMb(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  try {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) / 1024 : 0;
  } catch {
    return 0; // the process has exited
  }
}

/** Sum of the samples of `name` in Prometheus text whose labels include every `labels` pair. */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const match = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!match || match[1] !== name) continue;
    const labelText = match[2] ?? '';
    if (Object.entries(labels).every(([key, value]) => labelText.includes(`${key}="${value}"`))) {
      sum += Number(match[3]);
    }
  }
  return sum;
}
