/**
 * Fault catalog row 4 (reference/reliability.md), as issue #3 states it: producers that ignore acks
 * and flood. Four connections write 200-span frames as fast as TCP lets them, never waiting for an
 * ack (two of them never even read their acks), against the real `tracehouse serve` process with
 * its default limits. Meanwhile a well-behaved client sends one frame at a time and waits for its
 * ack. The server's peak RSS must stay under MEMORY_BOUND_MIB (the bound docs/websocket-protocol.md
 * states), and the well-behaved client must keep getting its acks.
 *
 * Why the bound holds: each connection stops being read once WS_MAX_UNACKED_FRAMES (32) frames or
 * WS_MAX_UNACKED_BYTES (1 MiB) are unacknowledged, so every flooder is held to about ten 200-span
 * frames in the queue and the rest waits in kernel buffers and in the flooder's own memory (TCP backpressure).
 */
import { readFileSync } from 'node:fs';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { ensureDistBuilt } from '../../helpers/build-dist.js';
import { useTestDatabase } from '../../helpers/db.js';
import { realisticSpans, toReadableSpans } from '../../helpers/otlp-fixtures.js';
import { spawnTracehouse, type TracehouseProcess } from '../../helpers/tracehouse-process.js';
import { RawWsClient, binaryFrame, wsUrl } from '../../helpers/ws-client.js';

const MEMORY_BOUND_MIB = 512;
const FLOOD_MS = 12_000;
const FLOODERS = 4;
const SPANS_PER_FLOOD_FRAME = 200;
const MAX_POLITE_LATENCY_MS = 10_000;
const CLIENT_BUFFER_BYTES = 8 * 1024 * 1024; // how much a flooder queues in its own memory

const db = useTestDatabase();
let server: TracehouseProcess;
const sockets: WebSocket[] = [];

beforeAll(async () => {
  const build = await ensureDistBuilt();
  if (build.diagnostics) console.warn(`tsc reported problems but emitted dist/:\n${build.diagnostics.slice(0, 2000)}`);
  server = await spawnTracehouse({ DATABASE_URL: db.connectionString, LOG_LEVEL: 'warn' });
  await server.waitReady(30_000);
});
afterAll(async () => {
  for (const socket of sockets) socket.terminate();
  await server?.stop();
});

/** Resident set size of the server process, current and peak (VmHWM), in MiB. */
function serverMemoryMiB(): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${server.child.pid}/status`, 'utf8');
  const kib = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rss: kib('VmRSS') / 1024, peak: kib('VmHWM') / 1024 };
}

function protobufOf(spans: ReturnType<typeof realisticSpans>): Uint8Array {
  return ProtobufTraceSerializer.serializeRequest(toReadableSpans({ spans }))!;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

interface Flooder {
  sent: number;
  acks: number;
  done: Promise<void>;
}

/** Sends frames without ever waiting for an ack; only its own send buffer slows it down. */
async function startFlooder(bodies: Uint8Array[], readAcks: boolean, until: number): Promise<Flooder> {
  const socket = new WebSocket(wsUrl(server.url), ['tracehouse.otlp.v1'], { perMessageDeflate: false });
  sockets.push(socket);
  socket.on('error', () => undefined);
  await new Promise((resolve, reject) => {
    socket.once('open', resolve);
    socket.once('error', reject);
  });
  const flooder: Flooder = { sent: 0, acks: 0, done: Promise.resolve() };
  if (readAcks) socket.on('message', () => (flooder.acks += 1));
  else socket.pause(); // never reads: its acks pile up in the kernel
  flooder.done = (async () => {
    while (Date.now() < until && socket.readyState === WebSocket.OPEN) {
      if (socket.bufferedAmount > CLIENT_BUFFER_BYTES) {
        await sleep(2);
        continue;
      }
      flooder.sent += 1;
      socket.send(binaryFrame(flooder.sent, bodies[flooder.sent % bodies.length]));
      if (flooder.sent % 8 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
  })();
  return flooder;
}

describe('a producer that ignores acks and floods', () => {
  it(`keeps the server under ${MEMORY_BOUND_MIB} MiB RSS while another connection keeps getting its acks`, async () => {
    // 32 distinct 200-span bodies per flooder, sent over and over (repeats are absorbed as duplicates).
    const bodies = Array.from({ length: FLOODERS }, (_, f) =>
      Array.from({ length: 32 }, (_, i) =>
        protobufOf(realisticSpans(SPANS_PER_FLOOD_FRAME, { nowMs: Date.now(), seed: f * 100 + i + 1 })),
      ),
    );
    const before = serverMemoryMiB();
    const until = Date.now() + FLOOD_MS;
    const flooders = await Promise.all(bodies.map((mine, f) => startFlooder(mine, f % 2 === 0, until)));

    const polite = await RawWsClient.connect(wsUrl(server.url));
    sockets.push(polite.socket);
    const latenciesMs: number[] = [];
    const statuses = new Map<number, number>();
    let seq = 0;
    const samples: number[] = [];
    while (Date.now() < until) {
      samples.push(serverMemoryMiB().rss);
      seq += 1;
      const frame = binaryFrame(seq, protobufOf(realisticSpans(20, { nowMs: Date.now() })));
      const sentAt = Date.now();
      for (;;) {
        polite.send(frame);
        const ack = await polite.ack(seq, 15_000);
        statuses.set(ack.status, (statuses.get(ack.status) ?? 0) + 1);
        if (ack.status === 200) break;
        expect(ack.retryable).toBe(true); // overload is a retryable 503, never a permanent error
        polite.ackCounts.delete(seq);
        await sleep((ack.retryAfterS ?? 1) * 1000);
      }
      latenciesMs.push(Date.now() - sentAt);
      await sleep(100);
    }
    await Promise.all(flooders.map((flooder) => flooder.done));
    const after = serverMemoryMiB();
    latenciesMs.sort((a, b) => a - b);
    const p99 = latenciesMs[Math.floor(latenciesMs.length * 0.99)];
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    const frames = [...metrics.matchAll(/^tracehouse_websocket_frames_total\{outcome="(\w+)"\} (\d+)/gm)].map(
      (m) => `${m[1]}=${m[2]}`,
    );
    console.info(
      `flood ${FLOOD_MS} ms: flooders sent ${flooders.map((f) => f.sent).join('/')} frames ` +
        `(acks read ${flooders.map((f) => f.acks).join('/')}); server frames ${frames.join(' ')}; ` +
        `RSS before ${before.rss.toFixed(0)} MiB, max sampled ${Math.max(...samples).toFixed(0)} MiB, ` +
        `peak ${after.peak.toFixed(0)} MiB (bound ${MEMORY_BOUND_MIB}); polite client: ${latenciesMs.length} frames, ` +
        `statuses ${JSON.stringify(Object.fromEntries(statuses))}, ack latency p50 ${latenciesMs[latenciesMs.length >> 1]} ms, ` +
        `p99 ${p99} ms, max ${latenciesMs.at(-1)} ms`,
    );

    expect(after.peak).toBeLessThan(MEMORY_BOUND_MIB);
    // The flood was real: far more frames than the per-connection limit were pushed at the server.
    expect(flooders.reduce((sum, flooder) => sum + flooder.sent, 0)).toBeGreaterThan(FLOODERS * 32 * 2);
    // The well-behaved connection was served throughout the flood: every frame it sent was acked
    // 200 (after retries if it met a 503), within seconds.
    expect(latenciesMs.length).toBeGreaterThanOrEqual(3);
    expect(latenciesMs.at(-1)).toBeLessThan(MAX_POLITE_LATENCY_MS);

    // After the flood the server still serves a fresh connection.
    for (const socket of sockets) socket.terminate();
    const fresh = await RawWsClient.connect(wsUrl(server.url));
    sockets.push(fresh.socket);
    fresh.send(binaryFrame(1, protobufOf(realisticSpans(5, { nowMs: Date.now() }))));
    expect(await fresh.ack(1, 15_000)).toMatchObject({ status: 200, accepted: 5 });
  });
});
