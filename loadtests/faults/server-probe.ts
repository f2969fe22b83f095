/**
 * What a fault scenario reads from a running tracehouse from the outside: its /metrics counters
 * (Prometheus text, parsed), /ready and /health, and its memory from /proc (VmHWM is the kernel's
 * own peak RSS of the process, so no sampler can miss a spike).
 */
import { readFileSync } from 'node:fs';

export interface MetricSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface MetricsSnapshot {
  samples: MetricSample[];
  /** Sum of the samples of `name` whose labels include `labels`. */
  sum(name: string, labels?: Record<string, string>): number;
  /** Sums of `name` grouped by one label's value. */
  by(name: string, label: string): Record<string, number>;
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

export function parseMetrics(text: string): MetricsSnapshot {
  const samples: MetricSample[] = [];
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const m = LINE.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const [, key, value] of (m[2] ?? '').matchAll(LABEL)) labels[key] = value.replace(/\\(.)/g, '$1');
    samples.push({ name: m[1], labels, value: Number(m[3]) });
  }
  const matching = (name: string, labels: Record<string, string>): MetricSample[] =>
    samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  return {
    samples,
    sum: (name, labels = {}) => matching(name, labels).reduce((total, s) => total + s.value, 0),
    by: (name, label) => {
      const out: Record<string, number> = {};
      for (const s of matching(name, {})) out[s.labels[label] ?? ''] = (out[s.labels[label] ?? ''] ?? 0) + s.value;
      return out;
    },
  };
}

export async function scrapeMetrics(baseUrl: string, timeoutMs = 10_000): Promise<MetricsSnapshot> {
  const res = await fetch(`${baseUrl}/metrics`, { signal: AbortSignal.timeout(timeoutMs) });
  if (res.status !== 200) throw new Error(`GET /metrics answered ${res.status}`);
  return parseMetrics(await res.text());
}

/** The span counters of the accounting identity received = accepted + rejected + refused (+ sampled out). */
export interface SpanCounters {
  received: number;
  accepted: number;
  rejected: number;
  refused: number;
  sampledOut: number;
  duplicates: number;
  /** Whole requests refused before their body was read (their spans are in no span counter). */
  requestsRefused: number;
}

export function spanCounters(m: MetricsSnapshot): SpanCounters {
  return {
    received: m.sum('tracehouse_spans_received_total'),
    accepted: m.sum('tracehouse_spans_accepted_total'),
    rejected: m.sum('tracehouse_spans_rejected_total'),
    refused: m.sum('tracehouse_spans_refused_total'),
    sampledOut: m.sum('tracehouse_spans_sampled_out_total'),
    duplicates: m.sum('tracehouse_spans_duplicate_total'),
    requestsRefused: m.sum('tracehouse_requests_refused_total'),
  };
}

export function counterDelta(before: SpanCounters, after: SpanCounters): SpanCounters {
  const out = {} as SpanCounters;
  for (const key of Object.keys(after) as (keyof SpanCounters)[]) out[key] = after[key] - before[key];
  return out;
}

/** `reason count` pairs of a counter's growth between two snapshots, e.g. "queue_full 512, shutting_down 40". */
export function growthByLabel(before: MetricsSnapshot, after: MetricsSnapshot, name: string, label: string): string {
  const a = before.by(name, label);
  const b = after.by(name, label);
  const parts = Object.entries(b)
    .map(([key, value]) => [key, value - (a[key] ?? 0)] as const)
    .filter(([, delta]) => delta > 0)
    .map(([key, delta]) => `${key} ${delta}`);
  return parts.length > 0 ? parts.join(', ') : 'none';
}

/** GET <baseUrl><path> → status, or 0 when the connection failed or timed out. */
export async function probeStatus(baseUrl: string, path: '/ready' | '/health', timeoutMs = 3000): Promise<number> {
  try {
    const res = await fetch(`${baseUrl}${path}`, { signal: AbortSignal.timeout(timeoutMs) });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return 0;
  }
}

function statusField(pid: number, field: 'VmHWM' | 'VmRSS'): number | undefined {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Math.round(Number(m[1]) / 1024) : undefined;
  } catch {
    return undefined; // the process is gone
  }
}

/** Peak resident set of a running process since it started, in MB (undefined once it exited). */
export function peakRssMb(pid: number): number | undefined {
  return statusField(pid, 'VmHWM');
}

export function currentRssMb(pid: number): number | undefined {
  return statusField(pid, 'VmRSS');
}

/** User + system CPU seconds a process has used (/proc/<pid>/stat, in clock ticks of 10 ms); 0 once it exited. */
export function cpuSeconds(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}
