/**
 * Worker thread of decoder-fuzz.ts: decodes inputs [from, to) of one target and checks each with
 * the decode oracle. Before each input it stores the input's index in shared memory, so the main
 * thread knows which input was running when this worker hung or died (out of memory, a crash).
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { WireFormat } from '../../../server/decode/types.js';
import { decodeAndCheck } from '../../../test/helpers/decode-oracle.js';
import { buildCorpus, FUZZ_DECODE_OPTIONS, makeInput } from './inputs.js';

export interface WorkerTask {
  format: WireFormat;
  runSeed: number;
  from: number;
  to: number;
  /** Int32Array view: [0] = index of the input being decoded. */
  progress: SharedArrayBuffer;
  /** Decodes slower than this are listed (index and ms). */
  slowMs: number;
}

export interface WorkerSummary {
  inputs: number;
  /** 'ok' and each documented error code → count. */
  outcomes: Record<string, number>;
  /** By input kind: how many decoded to rows / to an error. */
  kinds: Record<string, number>;
  spansDecoded: number;
  maxDecodeMs: number;
  maxInputBytes: number;
  slow: Array<{ index: number; ms: number }>;
  violations: Array<{ index: number; kind: string; problem: string }>;
}

export type WorkerMessage = { type: 'ready' } | { type: 'summary'; summary: WorkerSummary };

const task = workerData as WorkerTask;
const post = (message: WorkerMessage): void => parentPort!.postMessage(message);
post({ type: 'ready' });
const progress = new Int32Array(task.progress);
const corpus = buildCorpus();
const summary: WorkerSummary = {
  inputs: 0,
  outcomes: {},
  kinds: {},
  spansDecoded: 0,
  maxDecodeMs: 0,
  maxInputBytes: 0,
  slow: [],
  violations: [],
};

for (let index = task.from; index < task.to; index++) {
  Atomics.store(progress, 0, index);
  const { body, kind } = makeInput(task.format, corpus, task.runSeed, index);
  const started = performance.now();
  const verdict = decodeAndCheck(body, task.format, FUZZ_DECODE_OPTIONS);
  const ms = performance.now() - started;
  summary.inputs += 1;
  if (ms > summary.maxDecodeMs) summary.maxDecodeMs = ms;
  if (body.length > summary.maxInputBytes) summary.maxInputBytes = body.length;
  if (ms > task.slowMs && summary.slow.length < 20) summary.slow.push({ index, ms: Math.round(ms) });
  const outcome = verdict.kind === 'ok' ? 'ok' : verdict.kind === 'error' ? verdict.code : 'violation';
  summary.outcomes[outcome] = (summary.outcomes[outcome] ?? 0) + 1;
  summary.kinds[`${kind}:${verdict.kind}`] = (summary.kinds[`${kind}:${verdict.kind}`] ?? 0) + 1;
  if (verdict.kind === 'ok') summary.spansDecoded += verdict.spans;
  if (verdict.kind === 'violation' && summary.violations.length < 20) {
    summary.violations.push({ index, kind, problem: verdict.problem });
  }
}
Atomics.store(progress, 0, task.to);
post({ type: 'summary', summary });
