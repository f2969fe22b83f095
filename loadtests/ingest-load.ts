/**
 * OTLP/HTTP ingest load for the query benchmark, run in its own process so that posting 270 kB
 * request bodies never delays the benchmark's latency measurements (they would share an event
 * loop otherwise). The parent forks this file and talks to it over IPC:
 *   parent → { type: 'start', url, requests, concurrency, intervalMs }   encode, then post
 *   child  → { type: 'ready' }, then { type: 'progress', acknowledged, failures, bodiesLeft } every 250 ms
 *   parent → { type: 'stop' }   child answers a last progress and exits
 * Bodies are encoded up front (OpenTelemetry's protobuf serializer), 512 fresh realistic spans
 * each, cycling over the benchmark's services. `intervalMs` 0 posts flat out; otherwise each loop
 * posts every intervalMs (open loop, no catch-up burst when behind).
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { realisticResource, realisticSpans, toReadableSpans } from '../test/helpers/otlp-fixtures.js';

export const SPANS_PER_REQUEST = 512;

export interface LoadStart {
  type: 'start';
  url: string;
  requests: number;
  services: number;
  concurrency: number;
  intervalMs: number;
}

export interface LoadProgress {
  type: 'progress';
  acknowledged: number;
  failures: Record<string, number>;
  bodiesLeft: number;
}

type ChildMessage = { type: 'ready' } | LoadProgress;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function encodeBodies(count: number, services: number): Uint8Array[] {
  const bodies: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const spans = realisticSpans(SPANS_PER_REQUEST, {
      nowMs: Date.now(),
      seed: i + 1 + Math.floor(Math.random() * 1e9),
      resource: realisticResource(`svc-${i % services}`),
    });
    bodies.push(ProtobufTraceSerializer.serializeRequest(toReadableSpans({ spans })) ?? new Uint8Array());
  }
  return bodies;
}

async function runChild(): Promise<void> {
  const start = await new Promise<LoadStart>((resolve) => process.once('message', (m) => resolve(m as LoadStart)));
  const bodies = encodeBodies(start.requests, start.services);
  let next = 0;
  let acknowledged = 0;
  let stopped = false;
  const failures: Record<string, number> = {};
  const report = () =>
    process.send!({
      type: 'progress',
      acknowledged,
      failures,
      bodiesLeft: bodies.length - next,
    } satisfies LoadProgress);
  process.on('message', (m) => {
    if ((m as { type: string }).type === 'stop') stopped = true;
  });
  process.send!({ type: 'ready' });
  const timer = setInterval(report, 250);
  const loop = async (offsetMs: number) => {
    await sleep(offsetMs);
    let due = performance.now();
    while (!stopped && next < bodies.length) {
      const body = bodies[next++];
      const response = await fetch(start.url, {
        method: 'POST',
        headers: { 'content-type': 'application/x-protobuf' },
        body: body as Uint8Array<ArrayBuffer>,
      }).catch(() => undefined);
      await response?.arrayBuffer();
      const status = response?.status ?? 0;
      if (status === 200) acknowledged += SPANS_PER_REQUEST;
      else failures[String(status)] = (failures[String(status)] ?? 0) + 1;
      due += start.intervalMs;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      else due = performance.now();
    }
  };
  await Promise.all(
    Array.from({ length: start.concurrency }, (_, i) => loop((i * start.intervalMs) / start.concurrency)),
  );
  while (!stopped) await sleep(50);
  clearInterval(timer);
  report();
  process.disconnect();
}

/** The parent's handle on a load process. */
export class IngestLoad {
  acknowledged = 0;
  failures: Record<string, number> = {};
  bodiesLeft = Infinity;
  readonly #child = fork(fileURLToPath(import.meta.url), [], { execArgv: ['--import', 'tsx'] });

  /** Encodes the bodies in the child and starts posting; resolves once posting began. */
  async start(options: Omit<LoadStart, 'type'>): Promise<void> {
    const ready = new Promise<void>((resolve, reject) => {
      this.#child.on('message', (m: ChildMessage) => {
        if (m.type === 'ready') resolve();
        else ({ acknowledged: this.acknowledged, failures: this.failures, bodiesLeft: this.bodiesLeft } = m);
      });
      this.#child.once('exit', (code) => reject(new Error(`ingest load process exited with ${code}`)));
    });
    this.#child.send({ type: 'start', ...options } satisfies LoadStart);
    await ready;
  }

  async stop(): Promise<void> {
    const exited = new Promise((resolve) => this.#child.once('exit', resolve));
    if (this.#child.connected) this.#child.send({ type: 'stop' });
    await exited;
  }
}

if (process.send !== undefined && process.argv[1] === fileURLToPath(import.meta.url)) await runChild();
