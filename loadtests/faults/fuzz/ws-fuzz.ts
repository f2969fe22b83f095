/**
 * Fuzzing of the WebSocket frame handler through real connections to a running server: each
 * connection keeps up to `window` frames unacknowledged; every frame must get exactly one ack with
 * an OTLP status the protocol allows (200, 400, 429, 503) within ackTimeoutMs, and a connection may
 * close only when the fuzzer sent an envelope fault, with that fault's close code. Any other ack,
 * a missing ack or an unexpected close is a finding: the frame is saved for replay.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import WebSocket from 'ws';
import { REPO_ROOT } from '../../../test/helpers/build-dist.js';
import { FIXTURE_DIR } from './decoder-fuzz.js';
import { createRng, inputSeed, type Rng } from './mutate.js';
import { frameSource, makeFault, makeFrame, type EnvelopeFault, type FrameSource } from './ws-frames.js';

export interface WsFuzzOptions {
  /** http://host:port of the server. */
  url: string;
  frames: number;
  connections: number;
  window: number;
  ackTimeoutMs: number;
  /** Share of steps that send an envelope fault instead of a frame. */
  faultShare: number;
  maxFrameBytes: number;
  runSeed: number;
  log(message: string): void;
}

export interface WsFuzzResult {
  frames: number;
  seconds: number;
  acks: Record<string, number>;
  faults: Record<string, number>;
  maxAckMs: number;
  findings: string[];
}

const ALLOWED_STATUSES = new Set([200, 400, 429, 503]);
/** Codes that mean decode let through what storage cannot hold, or a bug (server/errors.ts). */
const BUG_CODES = new Set(['TH_ERR_STORAGE_REJECTED_DATA', 'TH_ERR_INTERNAL']);
const SUBPROTOCOL = 'tracehouse.otlp.v1';

interface Pending {
  index: number;
  sentAt: number;
  data: Buffer;
}

export async function fuzzWebSocket(options: WsFuzzOptions): Promise<WsFuzzResult> {
  const started = performance.now();
  const source = frameSource(options.runSeed);
  const result: WsFuzzResult = { frames: 0, seconds: 0, acks: {}, faults: {}, maxAckMs: 0, findings: [] };
  let next = 0;
  let lastLog = Date.now();
  const take = (): number | undefined => (next < options.frames ? next++ : undefined);
  const finding = (problem: string, data?: Buffer): void => {
    if (result.findings.length >= 20) return;
    result.findings.push(data ? `${problem}; saved as ${saveFrame(data)}` : problem);
    options.log(`ws fuzz finding: ${problem}`);
  };
  const loops = Array.from({ length: options.connections }, (_, i) =>
    connectionLoop(options, source, createRng(inputSeed(options.runSeed, 1e9 + i)), take, result, finding, () => {
      if (Date.now() - lastLog > 10_000) {
        lastLog = Date.now();
        options.log(`ws fuzz: ${result.frames} of ${options.frames} frames acked`);
      }
    }),
  );
  await Promise.all(loops);
  result.seconds = (performance.now() - started) / 1000;
  return result;
}

async function connectionLoop(
  options: WsFuzzOptions,
  source: FrameSource,
  rng: Rng,
  take: () => number | undefined,
  result: WsFuzzResult,
  finding: (problem: string, data?: Buffer) => void,
  progress: () => void,
): Promise<void> {
  let connection = await Connection.open(options.url, true);
  let seq = 1;
  /** Counts the acks that came in, checks them, and gives up on frames past the ack timeout. */
  const settle = (): void => {
    for (const ack of connection.takeAcks()) {
      result.frames += 1;
      result.acks[String(ack.status)] = (result.acks[String(ack.status)] ?? 0) + 1;
      result.maxAckMs = Math.max(result.maxAckMs, ack.ms);
      if (!ALLOWED_STATUSES.has(ack.status) || BUG_CODES.has(ack.code ?? '')) {
        finding(`frame ${ack.index} answered ${ack.status} ${ack.code ?? ''}`, ack.data);
      }
      if (ack.index < 0) finding(`an ack for seq ${ack.seq}, which was not waiting for one (a second ack?)`);
    }
    for (const [s, p] of connection.pending) {
      if (performance.now() - p.sentAt <= options.ackTimeoutMs) continue;
      finding(`frame ${p.index} (seq ${s}) not acked within ${options.ackTimeoutMs} ms`, p.data);
      connection.pending.delete(s);
    }
  };
  const reopenIfClosed = async (): Promise<void> => {
    if (connection.closedWith === undefined) return;
    finding(`connection closed unexpectedly with ${connection.closedWith} (${connection.pending.size} frames unacked)`);
    for (const p of connection.pending.values()) finding(`frame ${p.index} lost to an unexpected close`, p.data);
    connection = await Connection.open(options.url, true);
  };

  /** Sends a fault on a connection of its own (this one keeps its frames in flight meanwhile). */
  const fault = async (fault: EnvelopeFault): Promise<void> => {
    result.faults[fault.name] = (result.faults[fault.name] ?? 0) + 1;
    const problem = await sendFault(options, fault);
    if (problem) finding(`envelope fault ${fault.name}: ${problem}`, fault.frames[0]?.data);
  };

  for (let index = take(); index !== undefined && result.findings.length < 20; index = take()) {
    if (rng() < options.faultShare) await fault(makeFault(rng, seq++, options.maxFrameBytes));
    const frame = makeFrame(source, index, seq++);
    if (frame.closeCode !== undefined) {
      await fault({ name: 'json-body-not-utf8', frames: [frame], closeCode: frame.closeCode });
      continue;
    }
    settle();
    while (connection.pending.size >= options.window && connection.closedWith === undefined) {
      await connection.nextEvent(options.ackTimeoutMs);
      settle();
    }
    await reopenIfClosed();
    connection.send(seq - 1, index, frame.data, frame.binary);
    progress();
  }
  await connection.drain(options.ackTimeoutMs);
  settle();
  await reopenIfClosed();
  if (connection.pending.size > 0) finding(`${connection.pending.size} frames never acked at the end`);
  await connection.close();
}

/** Sends one envelope fault on a connection of its own; '' when the server closed as prescribed. */
async function sendFault(options: WsFuzzOptions, fault: EnvelopeFault): Promise<string> {
  const connection = await Connection.open(options.url, !fault.noSubprotocol);
  for (const frame of fault.frames) connection.socket.send(frame.data, { binary: frame.binary });
  const closed = await connection.waitClosed(options.ackTimeoutMs);
  const acks = connection.takeAcks();
  if (closed === fault.closeCode) return '';
  if (closed === undefined && fault.name === 'reused-seq' && acks.length === 2 && acks.every((a) => a.status === 200)) {
    await connection.close(); // the first frame was acked before the second arrived: the id was free again
    return '';
  }
  await connection.close();
  return `expected close ${fault.closeCode}, got ${closed ?? 'no close'} and acks ${acks.map((a) => a.status).join(',')}`;
}

interface ReceivedAck {
  seq: number;
  /** The frame's input index, or -1 when no frame with this seq was waiting for an ack. */
  index: number;
  status: number;
  code?: string;
  ms: number;
  data: Buffer;
}

class Connection {
  readonly pending = new Map<number, Pending>();
  #acks: ReceivedAck[] = [];
  #wake: (() => void) | undefined;
  closedWith: number | undefined;
  #expectClose = false;

  private constructor(readonly socket: WebSocket) {
    socket.on('message', (data) => {
      const ack = JSON.parse(String(data)) as { seq: number; status: number; code?: string };
      const sent = this.pending.get(ack.seq);
      this.pending.delete(ack.seq);
      this.#acks.push({
        seq: ack.seq,
        index: sent?.index ?? -1,
        status: ack.status,
        code: ack.code,
        ms: sent ? performance.now() - sent.sentAt : 0,
        data: sent?.data ?? Buffer.alloc(0),
      });
      this.#wake?.();
    });
    socket.on('close', (code) => {
      if (!this.#expectClose) this.closedWith = code;
      this.#wake?.();
    });
    socket.on('error', () => undefined);
  }

  static open(url: string, withSubprotocol: boolean): Promise<Connection> {
    const socket = new WebSocket(`${url.replace(/^http/, 'ws')}/v1/traces/ws`, withSubprotocol ? [SUBPROTOCOL] : [], {
      perMessageDeflate: false,
    });
    const connection = new Connection(socket);
    return new Promise((resolve, reject) => {
      socket.once('open', () => resolve(connection));
      socket.once('error', reject);
    });
  }

  send(seq: number, index: number, data: Buffer, binary: boolean): void {
    this.pending.set(seq, { index, sentAt: performance.now(), data });
    this.socket.send(data, { binary });
  }

  takeAcks(): ReceivedAck[] {
    const acks = this.#acks;
    this.#acks = [];
    return acks;
  }

  /**
   * Resolves at the next ack or close to arrive, or after timeoutMs. It never resolves at once for
   * acks already received: a loop awaiting it would then spin on microtasks and starve the socket.
   */
  nextEvent(timeoutMs: number): Promise<void> {
    if (this.closedWith !== undefined) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, timeoutMs);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = done;
    });
  }

  async drain(timeoutMs: number): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (this.pending.size > 0 && this.closedWith === undefined && performance.now() < deadline) {
      await this.nextEvent(deadline - performance.now());
    }
  }

  /** The close code the server sent, or undefined when it did not close within timeoutMs. */
  async waitClosed(timeoutMs: number): Promise<number | undefined> {
    const deadline = performance.now() + timeoutMs;
    while (this.closedWith === undefined && performance.now() < deadline) {
      await this.nextEvent(deadline - performance.now());
    }
    return this.closedWith;
  }

  async close(): Promise<void> {
    if (this.socket.readyState === WebSocket.CLOSED) return;
    this.#expectClose = true;
    this.socket.close(1000);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.socket.terminate();
        resolve();
      }, 5000);
      this.socket.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}

function saveFrame(data: Buffer): string {
  const hash = createHash('sha256').update(data).digest('hex').slice(0, 16);
  mkdirSync(FIXTURE_DIR, { recursive: true });
  const file = path.join(FIXTURE_DIR, `ws-${hash}.frame`);
  writeFileSync(file, data);
  return path.relative(REPO_ROOT, file);
}
