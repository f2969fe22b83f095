/**
 * In-process fuzzing of one decoder (protobuf or JSON): the pure decode function is called on
 * `inputs` generated inputs in a worker thread with a bounded heap and stack, watched from here.
 *
 *   crash (the worker dies, e.g. out of memory)  → the input is saved, the run resumes after it
 *   hang (no progress for hangMs)                → the worker is terminated, the input saved, resumed
 *   violation (the oracle's contract broken)     → reported by the worker with its index, saved
 *
 * Saved inputs go to test/unit/decode/fixtures/fuzz/ where fuzz-regressions.test.ts replays them.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { WireFormat } from '../../../server/decode/types.js';
import { REPO_ROOT } from '../../../test/helpers/build-dist.js';
import type { WorkerMessage, WorkerSummary, WorkerTask } from './decoder-worker.js';
import { buildCorpus, makeInput } from './inputs.js';

/** The worker's entry: tsx's loader registered first, so the worker can import TypeScript. */
const BOOT = `const { workerData } = require('node:worker_threads');
import(workerData.tsx).then(({ register }) => { register(); return import(workerData.entry); });`;

/** Crashes and hangs after which the run gives up. */
const MAX_STOPS = 10;

export const FIXTURE_DIR = path.join(REPO_ROOT, 'test/unit/decode/fixtures/fuzz');

export interface DecoderFuzzOptions {
  format: WireFormat;
  inputs: number;
  runSeed: number;
  /** No progress for this long is a hang. */
  hangMs: number;
  slowMs: number;
  /** Worker heap: an input that needs more is an unbounded allocation. */
  maxHeapMb: number;
  log(message: string): void;
}

export interface DecoderFuzzResult extends WorkerSummary {
  seconds: number;
  crashes: Array<{ index: number; error: string; saved: string }>;
  hangs: Array<{ index: number; saved: string }>;
  saved: string[];
}

export async function fuzzDecoder(options: DecoderFuzzOptions): Promise<DecoderFuzzResult> {
  const started = performance.now();
  const result: DecoderFuzzResult = {
    inputs: 0,
    outcomes: {},
    kinds: {},
    spansDecoded: 0,
    maxDecodeMs: 0,
    maxInputBytes: 0,
    slow: [],
    violations: [],
    seconds: 0,
    crashes: [],
    hangs: [],
    saved: [],
  };
  let from = 0;
  while (from < options.inputs) {
    const run = await runWorker(options, from);
    if (run.summary) merge(result, run.summary);
    if (run.stoppedAt === undefined) break;
    const saved = saveInput(options, run.stoppedAt);
    if (run.error) result.crashes.push({ index: run.stoppedAt, error: run.error, saved });
    else result.hangs.push({ index: run.stoppedAt, saved });
    result.inputs += run.stoppedAt - from + 1;
    from = run.stoppedAt + 1;
    if (result.crashes.length + result.hangs.length >= MAX_STOPS) break; // the report has enough to go on
  }
  for (const violation of result.violations) result.saved.push(saveInput(options, violation.index));
  result.seconds = (performance.now() - started) / 1000;
  return result;
}

interface WorkerRun {
  summary?: WorkerSummary;
  /** Set when the worker died or hung: the index of the input it was decoding. */
  stoppedAt?: number;
  error?: string;
}

function runWorker(options: DecoderFuzzOptions, from: number): Promise<WorkerRun> {
  const progress = new SharedArrayBuffer(4);
  const view = new Int32Array(progress);
  Atomics.store(view, 0, from);
  const task: WorkerTask = {
    format: options.format,
    runSeed: options.runSeed,
    from,
    to: options.inputs,
    progress,
    slowMs: options.slowMs,
  };
  const worker = new Worker(BOOT, {
    eval: true,
    workerData: {
      ...task,
      tsx: import.meta.resolve('tsx/esm/api'),
      entry: new URL('./decoder-worker.ts', import.meta.url).href,
    },
    resourceLimits: { maxOldGenerationSizeMb: options.maxHeapMb, maxYoungGenerationSizeMb: 32, stackSizeMb: 1 },
  });
  return new Promise((resolve, reject) => {
    let ready = false;
    let last = from;
    let lastChange = Date.now();
    let lastLog = Date.now();
    let settled = false;
    const finish = (run: WorkerRun): void => {
      if (settled) return;
      settled = true;
      clearInterval(watchdog);
      resolve(run);
    };
    const watchdog = setInterval(() => {
      const now = Date.now();
      const at = Atomics.load(view, 0);
      if (at !== last) {
        last = at;
        lastChange = now;
      } else if (now - lastChange > options.hangMs) {
        void worker.terminate();
        finish({ stoppedAt: at });
      }
      if (now - lastLog > 10_000) {
        lastLog = now;
        options.log(`fuzz ${options.format}: ${at} of ${options.inputs} inputs`);
      }
    }, 200);
    const died = (error: string): void => {
      if (ready) finish({ stoppedAt: Atomics.load(view, 0), error });
      else if (!settled) {
        settled = true;
        clearInterval(watchdog);
        reject(new Error(`the fuzz worker did not start: ${error}`));
      }
    };
    worker.on('message', (message: WorkerMessage) => {
      if (message.type === 'ready') ready = true;
      else finish({ summary: message.summary });
    });
    worker.on('error', (err) => died(`${err.name}: ${err.message}`.slice(0, 300)));
    worker.on('exit', (code) => died(`worker exited with ${code}`));
  });
}

function merge(into: DecoderFuzzResult, summary: WorkerSummary): void {
  into.inputs += summary.inputs;
  into.spansDecoded += summary.spansDecoded;
  into.maxDecodeMs = Math.max(into.maxDecodeMs, summary.maxDecodeMs);
  into.maxInputBytes = Math.max(into.maxInputBytes, summary.maxInputBytes);
  for (const [key, n] of Object.entries(summary.outcomes)) into.outcomes[key] = (into.outcomes[key] ?? 0) + n;
  for (const [key, n] of Object.entries(summary.kinds)) into.kinds[key] = (into.kinds[key] ?? 0) + n;
  into.slow.push(...summary.slow.slice(0, 20 - into.slow.length));
  into.violations.push(...summary.violations.slice(0, 20 - into.violations.length));
}

/** Writes input `index` to the fixture directory (named by its hash) and returns the path. */
function saveInput(options: DecoderFuzzOptions, index: number): string {
  const { body } = makeInput(options.format, buildCorpus(), options.runSeed, index);
  const hash = createHash('sha256').update(body).digest('hex').slice(0, 16);
  mkdirSync(FIXTURE_DIR, { recursive: true });
  const file = path.join(FIXTURE_DIR, `${options.format}-${hash}.${options.format === 'json' ? 'json' : 'bin'}`);
  writeFileSync(file, body);
  return path.relative(REPO_ROOT, file);
}
