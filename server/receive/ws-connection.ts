/**
 * One WebSocket ingest connection: frames in, one ack per frame out, flow control and liveness.
 * Each frame goes through the same IngestPipeline as an HTTP request, and its ack is the same
 * OtlpDecision an HTTP response would carry (otlp-status.ts).
 *
 * Why it holds state: a frame counts as unacknowledged from the moment it is read until its ack has
 * been flushed to the socket. Past maxUnackedFrames or maxUnackedBytes the connection stops reading
 * (ws pause(): the kernel buffers fill and TCP backpressure stops the producer) and reads again as
 * acks go out. Counting until the ack is flushed, not merely queued, also bounds a producer that
 * never reads its acks: they stay in our socket buffer, so its frames stop being read too.
 *
 * States: open → draining (shutdown: new frames get a 503 shutting-down ack; frames already
 * admitted are committed and acked) → closing (close frame sent; later frames are ignored) → closed.
 *
 * Liveness, every ping interval: a reading connection that did not answer the last ping is
 * terminated. A paused one cannot see pongs, so it is judged by its acks instead: terminated when
 * acks are waiting to be flushed and none was flushed during a whole interval.
 */
import type { FastifyBaseLogger } from 'fastify';
import type { RawData, WebSocket } from 'ws';
import type { WebSocketConfig } from '../config.js';
import type { Metrics, WsFrameOutcome } from '../ops/metrics.js';
import type { IngestPipeline } from './ingest.js';
import {
  decideForError,
  decideForOutcome,
  decideForRefusal,
  encodeWebSocketAck,
  type OtlpDecision,
} from './otlp-status.js';
import { CloseCode, parseFrame } from './ws-envelope.js';

export interface WsConnectionDeps {
  pipeline: IngestPipeline;
  tenant: string;
  limits: Pick<WebSocketConfig, 'maxUnackedFrames' | 'maxUnackedBytes'>;
  retryAfterS: number;
  metrics: Metrics;
  log: FastifyBaseLogger;
}

const MAX_TIMER_MS = 2 ** 31 - 1;

export class WsConnection {
  readonly socket: WebSocket;
  readonly closed: Promise<void>;
  readonly #deps: WsConnectionDeps;
  readonly #unacked = new Map<number, number>(); // seq → frame bytes, until its ack is flushed
  #unackedBytes = 0;
  #awaitingCommit = 0;
  #acksUnflushed = 0;
  #acksFlushedSinceCheck = 0;
  #alive = true;
  #state: 'open' | 'draining' | 'closing' | 'closed' = 'open';
  #idleWaiters: Array<() => void> = [];
  #expiry: NodeJS.Timeout | undefined;
  #expiresAtMs = Infinity;

  constructor(socket: WebSocket, deps: WsConnectionDeps) {
    this.socket = socket;
    this.#deps = deps;
    socket.on('message', (data, isBinary) => this.#onMessage(toBuffer(data), isBinary));
    socket.on('pong', () => (this.#alive = true));
    this.closed = new Promise((resolve) => {
      socket.once('close', (code) => {
        this.#state = 'closed';
        clearTimeout(this.#expiry);
        deps.metrics.wsCloses.inc({ code: closeCodeLabel(code) });
        deps.log.debug({ code, unacked: this.#unacked.size }, 'websocket closed');
        resolve();
      });
    });
  }

  /** Shutdown, step 1: new frames are answered with a 503 shutting-down ack. */
  startDraining(): void {
    if (this.#state === 'open') this.#state = 'draining';
  }

  /** Resolves when no frame of this connection is waiting for its commit. */
  whenIdle(): Promise<void> {
    if (this.#awaitingCommit === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /**
   * Closes with 1008 when the connection's token expires (ms since the epoch): no frame is read
   * after that instant. Frames still waiting for their commit lose their ack; the client resends
   * them with a fresh token and the idempotent write absorbs the copies.
   */
  closeAt(expiresAtMs: number): void {
    this.#expiresAtMs = expiresAtMs;
    clearTimeout(this.#expiry);
    const delayMs = expiresAtMs - Date.now();
    if (delayMs <= 0) {
      this.#expire();
      return;
    }
    // setTimeout holds at most 2^31 - 1 ms (~24.8 days); a longer-lived token re-arms the timer.
    this.#expiry =
      delayMs > MAX_TIMER_MS
        ? setTimeout(() => this.closeAt(expiresAtMs), MAX_TIMER_MS)
        : setTimeout(() => this.#expire(), delayMs);
  }

  #expire(): void {
    if (this.#state === 'closing' || this.#state === 'closed') return;
    this.#deps.log.info('websocket token expired: closed with 1008');
    this.close(CloseCode.POLICY_VIOLATION, 'token expired');
  }

  close(code: number, reason: string): void {
    if (this.#state === 'closing' || this.#state === 'closed') return;
    this.#state = 'closing';
    if (this.socket.isPaused) this.socket.resume(); // the client's close frame must be read
    this.socket.close(code, reason);
  }

  terminate(why: string): void {
    if (this.#state === 'closed') return;
    this.#deps.log.info({ why, unacked: this.#unacked.size }, 'websocket terminated');
    this.#state = 'closing';
    this.socket.terminate();
  }

  /** Called once per ping interval by the connection registry. */
  checkLiveness(): void {
    if (this.#state === 'closing' || this.#state === 'closed') return;
    if (this.socket.isPaused) {
      if (this.#acksUnflushed > 0 && this.#acksFlushedSinceCheck === 0) this.terminate('client stopped reading acks');
      this.#acksFlushedSinceCheck = 0;
      return;
    }
    if (!this.#alive) {
      this.terminate('missed pong');
      return;
    }
    this.#alive = false;
    this.#acksFlushedSinceCheck = 0;
    this.socket.ping();
  }

  #onMessage(data: Buffer, isBinary: boolean): void {
    if (this.#state === 'closing' || this.#state === 'closed') return;
    if (Date.now() >= this.#expiresAtMs) {
      this.#expire(); // the timer has not fired yet, but nothing is read past the token's expiry
      return;
    }
    this.#alive = true;
    const frame = parseFrame(data, isBinary);
    if (!frame.ok) {
      this.#protocolError(frame.closeCode, frame.reason);
      return;
    }
    const { seq } = frame;
    if (this.#unacked.has(seq)) {
      this.#protocolError(CloseCode.POLICY_VIOLATION, `sequence id ${seq} is already unacknowledged`);
      return;
    }
    this.#unacked.set(seq, data.length);
    this.#unackedBytes += data.length;
    this.#applyBackpressure();

    const { pipeline, retryAfterS } = this.#deps;
    const refusal =
      pipeline.refusalBeforeRead('websocket') ??
      (this.#state === 'draining' ? 'TH_ERR_BATCH_SHUTTING_DOWN' : undefined);
    if (refusal !== undefined) {
      this.#answer(seq, decideForRefusal(refusal, retryAfterS));
      return;
    }
    void this.#ingest(seq, frame.body, frame.format);
  }

  async #ingest(seq: number, body: Buffer, format: 'protobuf' | 'json'): Promise<void> {
    const { pipeline, tenant, retryAfterS, log } = this.#deps;
    this.#awaitingCommit += 1;
    let decision: OtlpDecision;
    try {
      decision = decideForOutcome(await pipeline.ingest(body, format, tenant, 'websocket'));
    } catch (err) {
      decision = decideForError(err, retryAfterS);
      if (decision.statusCode >= 500 && !decision.retryable) log.error({ err, seq }, 'websocket frame failed');
      else log.debug({ seq, code: decision.code, status: decision.statusCode }, 'websocket frame refused');
    }
    this.#answer(seq, decision);
    this.#awaitingCommit -= 1;
    if (this.#awaitingCommit === 0) for (const resolve of this.#idleWaiters.splice(0)) resolve();
  }

  #answer(seq: number, decision: OtlpDecision): void {
    this.#deps.metrics.wsFrames.inc({ outcome: frameOutcome(decision) });
    if (this.socket.readyState !== this.socket.OPEN) {
      this.#release(seq);
      return;
    }
    this.#acksUnflushed += 1;
    this.socket.send(encodeWebSocketAck(seq, decision), () => {
      this.#acksUnflushed -= 1;
      this.#acksFlushedSinceCheck += 1;
      this.#release(seq);
    });
  }

  #release(seq: number): void {
    const bytes = this.#unacked.get(seq);
    if (bytes === undefined) return;
    this.#unacked.delete(seq);
    this.#unackedBytes -= bytes;
    if (this.socket.isPaused && !this.#overLimit() && this.#state !== 'closed') {
      this.#alive = true; // a pong may be waiting unread behind the frames we did not read
      this.socket.resume();
    }
  }

  #overLimit(): boolean {
    const { maxUnackedFrames, maxUnackedBytes } = this.#deps.limits;
    return this.#unacked.size >= maxUnackedFrames || this.#unackedBytes >= maxUnackedBytes;
  }

  #applyBackpressure(): void {
    if (!this.socket.isPaused && this.#overLimit()) this.socket.pause();
  }

  #protocolError(code: number, reason: string): void {
    this.#deps.metrics.wsFrames.inc({ outcome: 'protocol_error' });
    this.#deps.log.info({ code, reason }, 'websocket protocol error');
    this.close(code, reason);
  }
}

function frameOutcome(decision: OtlpDecision): WsFrameOutcome {
  if (decision.code === undefined) return 'committed';
  return decision.retryable ? 'refused' : 'rejected';
}

const KNOWN_CLOSE_CODES = new Set([1000, 1001, 1002, 1003, 1005, 1006, 1007, 1008, 1009, 1011, 1012, 1013]);

export function closeCodeLabel(code: number): string {
  return KNOWN_CLOSE_CODES.has(code) ? String(code) : 'other';
}

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}
