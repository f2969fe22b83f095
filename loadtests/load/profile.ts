/**
 * Reads a V8 .cpuprofile (node --cpu-prof) of the server and says what each ingest stage costs per
 * span: self time of every sample, attributed to the stage of the nearest frame on its stack that
 * belongs to a known module (a Buffer write called from copy-binary.ts is COPY encoding; a socket
 * write called from pg-copy-streams is COPY send), then divided by the spans the run stored.
 *
 * The decoder is a single-pass walker that writes the stored JSON text as it reads, so "decode"
 * (wire format, strings, sanitizing) and "row building" (span-rows.ts validation and SpanRow
 * objects, any-value.ts JSON text, decode-context.ts) are split by file, not by a clean seam.
 */
import { readFileSync } from 'node:fs';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

/** Stage rules in order: the first whose pattern matches a frame's url (or name) names its stage. */
const PROJECT_RULES: Array<[RegExp, string]> = [
  [/\/(?:server|dist)\/decode\/(span-rows|any-value|decode-context|attribute-sharing)\.[jt]s$/, 'row building'],
  [/\/(?:server|dist)\/decode\//, 'decode'],
  [/\/(?:server|dist)\/storage\/(copy-binary|copy-text|resource-id|attribute-set-id)\.[jt]s$/, 'COPY encoding'],
  [/\/(?:server|dist)\/storage\/write-summaries\.[jt]s$/, 'write summaries'],
  [
    /\/(?:server|dist)\/storage\/|\/node_modules\/(pg|pg-copy-streams|pg-protocol|pg-pool|pg-types)\//,
    'COPY send + PostgreSQL client',
  ],
  [/\/(?:server|dist)\/batch\//, 'batching'],
  [
    /\/(?:server|dist)\/receive\/|\/(?:server|dist)\/auth\/|\/node_modules\/(fastify|@fastify\/[^/]+|find-my-way|avvio|light-my-request|fast-json-stringify|secure-json-parse|ws)\//,
    'HTTP',
  ],
  [/\/(?:server|dist)\/ops\/|\/node_modules\/prom-client\//, 'metrics'],
  [/\/node_modules\/(pino|sonic-boom|thread-stream)\//, 'logging'],
  [/\/(?:server|dist)\/query\/|\/(?:server|dist)\/cache\//, 'query + cache'],
];
const NODE_RULES: Array<[RegExp, string]> = [
  [/^node:zlib$|zlib/, 'gunzip'],
  [/^node:_http_|^node:http$/, 'HTTP'],
  [/^node:net$|stream_base_commons|^node:internal\/streams\//, 'socket I/O (unattributed)'],
];
const SPECIAL = new Map([
  ['(garbage collector)', 'GC'],
  ['(program)', 'native, unattributed'],
  ['(idle)', 'idle'],
  ['(root)', 'idle'],
]);

function classify(frame: CallFrame, rules: Array<[RegExp, string]>): string | undefined {
  for (const [pattern, stage] of rules) if (pattern.test(frame.url)) return stage;
  return undefined;
}

/** node_modules/<package>/… or server|dist/… of a frame's url; node: urls as they are. */
function shortPath(url: string): string {
  const pkg = /\/(node_modules\/(?:@[^/]+\/)?[^/]+\/.*)$/.exec(url);
  if (pkg) return pkg[1];
  return url.replace(/^.*\/((?:server|dist)\/.*)$/, '$1').replace(/^file:\/\//, '');
}

export interface StageCost {
  stage: string;
  selfMs: number;
  usPerSpan: number;
  top: Array<{ name: string; selfMs: number }>;
}

export interface ProfileSummary {
  wallMs: number;
  busyMs: number; // sampled time that was not idle
  spans: number;
  stages: StageCost[];
}

/** `skipMs`: samples of the first skipMs after the profile started (server startup) are left out. */
export function summarizeProfile(file: string, spans: number, skipMs = 0, topPerStage = 5): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const stageOf = new Map<number, string>();
  const resolve = (id: number): string => {
    const cached = stageOf.get(id);
    if (cached !== undefined) return cached;
    const leaf = byId.get(id)!.callFrame;
    let stage = SPECIAL.get(leaf.functionName);
    let nodeStage: string | undefined;
    for (let at: number | undefined = id; stage === undefined && at !== undefined; at = parent.get(at)) {
      const frame = byId.get(at)!.callFrame;
      stage = classify(frame, PROJECT_RULES);
      nodeStage ??= classify(frame, NODE_RULES);
    }
    stage ??= nodeStage ?? 'other (startup, timers, V8)';
    stageOf.set(id, stage);
    return stage;
  };
  const selfUs = new Map<number, number>();
  let at = profile.startTime;
  const from = profile.startTime + skipMs * 1000;
  profile.samples.forEach((id, k) => {
    const delta = profile.timeDeltas[k] ?? 0;
    at += delta;
    if (at >= from) selfUs.set(id, (selfUs.get(id) ?? 0) + delta);
  });

  const stages = new Map<string, { us: number; fns: Map<string, number> }>();
  for (const [id, us] of selfUs) {
    const stage = resolve(id);
    const entry = stages.get(stage) ?? { us: 0, fns: new Map<string, number>() };
    const f = byId.get(id)!.callFrame;
    const file = shortPath(f.url);
    const name = `${f.functionName || '(anonymous)'} ${file ? `${file}:${f.lineNumber + 1}` : '(native)'}`;
    entry.us += us;
    entry.fns.set(name, (entry.fns.get(name) ?? 0) + us);
    stages.set(stage, entry);
  }
  const busyUs = [...stages].filter(([s]) => s !== 'idle').reduce((sum, [, e]) => sum + e.us, 0);
  return {
    wallMs: (profile.endTime - from) / 1000,
    busyMs: busyUs / 1000,
    spans,
    stages: [...stages]
      .filter(([stage]) => stage !== 'idle')
      .sort((a, b) => b[1].us - a[1].us)
      .map(([stage, e]) => ({
        stage,
        selfMs: e.us / 1000,
        usPerSpan: spans > 0 ? e.us / spans : Number.NaN,
        top: [...e.fns]
          .sort((a, b) => b[1] - a[1])
          .slice(0, topPerStage)
          .map(([name, us]) => ({ name, selfMs: us / 1000 })),
      })),
  };
}

export function formatProfile(summary: ProfileSummary, label: string): string[] {
  const lines = [
    `${label}: ${(summary.busyMs / 1000).toFixed(1)} s busy of ${(summary.wallMs / 1000).toFixed(1)} s after startup, ` +
      `${summary.spans} spans stored, ` +
      `${((summary.busyMs * 1000) / summary.spans).toFixed(1)} µs of server CPU per span`,
  ];
  for (const s of summary.stages) {
    lines.push(
      `  ${s.stage.padEnd(32)} ${s.usPerSpan.toFixed(2).padStart(7)} µs/span ${((100 * s.selfMs) / summary.busyMs).toFixed(1).padStart(5)} %`,
    );
    for (const f of s.top) lines.push(`      ${f.selfMs.toFixed(0).padStart(7)} ms  ${f.name}`);
  }
  return lines;
}

/**
 * The environment that makes a spawned server profile itself: cpu-profile.mjs preloaded (Node 20
 * refuses --cpu-prof in NODE_OPTIONS), appended to the NODE_OPTIONS it would have had, and the
 * directory it writes CPU.<pid>.cpuprofile to when it exits (not on SIGKILL).
 */
export function profilerEnv(dir: string, nodeOptions = ''): Record<string, string> {
  const preload = new URL('./cpu-profile.mjs', import.meta.url).href;
  return { NODE_OPTIONS: `${nodeOptions} --import ${preload}`.trim(), TH_CPU_PROF_DIR: dir };
}

// CLI: node --import tsx loadtests/load/profile.ts <file.cpuprofile> <spans stored> [skip ms]
if (process.argv[1]?.endsWith('profile.ts') && process.argv.length >= 4) {
  const [file, spans, skipMs] = process.argv.slice(2);
  console.log(formatProfile(summarizeProfile(file, Number(spans), Number(skipMs ?? 0), 8), file).join('\n'));
}
