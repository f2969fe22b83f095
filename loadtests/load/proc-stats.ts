/**
 * CPU time and peak memory of processes on this machine, from /proc (Linux only).
 *
 * PostgreSQL's CPU is the postmaster's own time plus its reaped children's (cutime + cstime: the
 * backends and autovacuum workers that already exited) plus every live child's. So a backend that
 * exits between two samples still counts, and the sum covers checkpointer, WAL writer and
 * autovacuum as well as the connections' backends.
 */
import { readdirSync, readFileSync } from 'node:fs';

/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ; 100 on every Linux we run). */
const TICKS_PER_S = 100;

interface StatFields {
  ppid: number;
  ticks: number; // utime + stime
  childTicks: number; // cutime + cstime
}

function readStat(pid: number): StatFields | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name may contain spaces and parentheses: fields start after the last ')'.
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]), childTicks: Number(f[13]) + Number(f[14]) };
}

/** CPU seconds a process has used so far (all its threads); undefined once it is gone. */
export function cpuSeconds(pid: number): number | undefined {
  const stat = readStat(pid);
  return stat === undefined ? undefined : stat.ticks / TICKS_PER_S;
}

/** CPU seconds of a process tree's root plus its live children plus its reaped children. */
export function treeCpuSeconds(rootPid: number): number {
  const root = readStat(rootPid);
  if (root === undefined) return Number.NaN;
  let ticks = root.ticks + root.childTicks;
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === rootPid) continue;
    const stat = readStat(pid);
    if (stat?.ppid === rootPid) ticks += stat.ticks;
  }
  return ticks / TICKS_PER_S;
}

/** Peak resident set size (VmHWM) in bytes. */
export function peakRssBytes(pid: number): number | undefined {
  try {
    const m = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** The postmaster's pid from its data directory (first line of postmaster.pid). */
export function postmasterPid(dataDir: string): number | undefined {
  try {
    const pid = Number(readFileSync(`${dataDir}/postmaster.pid`, 'utf8').split('\n')[0]);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** A CPU-seconds counter sampled at start and end of a measured window. */
export type CpuProbe = () => number;

/** Cores used over a window: ΔCPU seconds / Δwall seconds, per named probe. */
export class CpuWindow {
  readonly #probes: Map<string, CpuProbe>;
  #start = new Map<string, number>();
  #startedAt = 0;

  constructor(probes: Map<string, CpuProbe>) {
    this.#probes = probes;
  }

  start(): void {
    this.#startedAt = performance.now();
    this.#start = new Map([...this.#probes].map(([name, probe]) => [name, probe()]));
  }

  /** Cores per probe since start(). */
  stop(): Map<string, number> {
    const wallS = (performance.now() - this.#startedAt) / 1000;
    return new Map(
      [...this.#probes].map(([name, probe]) => [name, (probe() - (this.#start.get(name) ?? Number.NaN)) / wallS]),
    );
  }
}

/** CPU seconds the whole machine spent busy (all processes, every core): /proc/stat minus idle and iowait. */
export function machineBusySeconds(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0];
  const [user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number);
  return (user + nice + system + irq + softirq + steal) / TICKS_PER_S;
}
