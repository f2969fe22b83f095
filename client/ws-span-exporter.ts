/**
 * An OpenTelemetry JS SpanExporter that streams to tracehouse over one WebSocket
 * (docs/websocket-protocol.md): each export() is one binary frame with its own sequence id, and
 * its callback runs when the server's ack for that id arrives, that is after the spans are committed.
 * Runs in browsers (globalThis.WebSocket) and in Node (pass the `ws` package's WebSocket).
 *
 * Why it holds state: every export is pending until acked. Pending exports are kept in sequence
 * order; at most maxInFlightFrames of them are on the wire at once. When the connection drops, all
 * unacknowledged frames are sent again, in order, on the next connection (reconnect with
 * exponential backoff and jitter); the server's writes are idempotent, so a frame that was
 * committed but not acked before the drop is stored once. A 503/429 ack is retried on the same
 * connection after its retryAfterS; any other error ack fails the export (OTLP: do not retry).
 * Pending exports are bounded: past maxPendingFrames / maxPendingBytes export() fails at once, and
 * an export not acked within timeoutMillis fails and is not sent again.
 */
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import {
  WsExportError,
  resolveOptions,
  type ResolvedOptions,
  type WebSocketConstructor,
  type WebSocketLike,
  type WsExporterStats,
  type WsSpanExporterOptions,
} from './ws-exporter-options.js';
import { BINARY_HEADER_BYTES, WS_SUBPROTOCOL, encodeBinaryFrame, parseAck, type WsAck } from './ws-protocol.js';

export { WsExportError, type WebSocketConstructor, type WsExporterStats, type WsSpanExporterOptions };

interface PendingExport {
  seq: number;
  frame: Uint8Array;
  callback: (result: ExportResult) => void;
  sent: boolean; // on the wire on the current connection, not yet acked
  notBefore: number; // Date.now() before which a refused frame is not resent
  timer: ReturnType<typeof setTimeout>;
}

const MESSAGE_TOO_BIG = 1009;
const TRY_AGAIN_LATER = 1013;

export class WsSpanExporter implements SpanExporter {
  readonly stats: WsExporterStats = {
    connections: 0,
    framesSent: 0,
    acks: 0,
    unexpectedAcks: 0,
    retries: 0,
    rejectedSpans: 0,
    closeCodes: {},
  };
  readonly #options: ResolvedOptions;
  readonly #WebSocket: WebSocketConstructor;
  readonly #protocols: () => string[];
  readonly #pending = new Map<number, PendingExport>(); // in sequence order
  #pendingBytes = 0;
  #inFlight = 0;
  #nextSeq = 1;
  #socket: WebSocketLike | undefined;
  #open = false;
  #failedAttempts = 0;
  #reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  #connectTimer: ReturnType<typeof setTimeout> | undefined;
  #pumpTimer: ReturnType<typeof setTimeout> | undefined;
  #pumpAt = Infinity;
  #stopped = false;
  #drainWaiters: Array<() => void> = [];

  constructor(options: WsSpanExporterOptions) {
    const { WebSocket, protocols } = options;
    const ctor = WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (ctor === undefined) throw new TypeError('no WebSocket implementation: pass the `WebSocket` option');
    this.#WebSocket = ctor;
    this.#protocols = typeof protocols === 'function' ? protocols : () => protocols ?? [];
    this.#options = resolveOptions(options);
  }

  /** Exports waiting for their ack. */
  get pending(): number {
    return this.#pending.size;
  }

  export(spans: ReadableSpan[], resultCallback: (result: ExportResult) => void): void {
    const fail = (message: string): void =>
      resultCallback({ code: ExportResultCode.FAILED, error: new WsExportError(message) });
    if (this.#stopped) return fail('the exporter is shut down');
    const body = ProtobufTraceSerializer.serializeRequest(spans);
    if (body === undefined) return fail('the spans could not be serialized');
    const bytes = BINARY_HEADER_BYTES + body.length;
    const { maxFrameBytes, maxPendingFrames, maxPendingBytes, timeoutMillis } = this.#options;
    if (bytes > maxFrameBytes) return fail(`export of ${bytes} bytes is over maxFrameBytes (${maxFrameBytes})`);
    if (this.#pending.size >= maxPendingFrames || this.#pendingBytes + bytes > maxPendingBytes) {
      return fail(`too many exports waiting for acks (${this.#pending.size}, ${this.#pendingBytes} bytes)`);
    }
    const seq = this.#nextSeq++;
    const timer = setTimeout(() => this.#finish(seq, failed(`no ack within ${timeoutMillis} ms`)), timeoutMillis);
    const frame = encodeBinaryFrame(seq, body);
    this.#pending.set(seq, { seq, frame, callback: resultCallback, sent: false, notBefore: 0, timer });
    this.#pendingBytes += bytes;
    if (this.#socket === undefined && this.#reconnectTimer === undefined) this.#connect();
    this.#pump();
  }

  /** Resolves when every pending export is acked; rejects after flushTimeoutMs. */
  forceFlush(): Promise<void> {
    return this.#waitDrained(this.#options.flushTimeoutMs);
  }

  /** Refuses new exports, waits for outstanding acks (flushTimeoutMs), fails the rest, closes. */
  async shutdown(): Promise<void> {
    this.#stopped = true;
    await this.#waitDrained(this.#options.flushTimeoutMs).catch(() => undefined);
    for (const seq of [...this.#pending.keys()]) this.#finish(seq, failed('the exporter shut down before the ack'));
    clearTimeout(this.#reconnectTimer);
    clearTimeout(this.#pumpTimer);
    this.#reconnectTimer = this.#pumpTimer = undefined;
    this.#dropSocket(1000, 'exporter shut down');
  }

  #connect(): void {
    const socket = new this.#WebSocket(this.#options.url, [WS_SUBPROTOCOL, ...this.#protocols()]) as WebSocketLike;
    socket.binaryType = 'arraybuffer';
    this.#socket = socket;
    this.#open = false;
    socket.onopen = () => {
      if (socket !== this.#socket) return;
      clearTimeout(this.#connectTimer);
      this.#open = true;
      this.stats.connections += 1;
      this.#pump();
    };
    socket.onmessage = (event) => {
      if (socket === this.#socket && typeof event.data === 'string') this.#onAck(event.data);
    };
    socket.onclose = (event) => {
      if (socket === this.#socket) this.#onClose(event.code);
    };
    socket.onerror = () => undefined; // a close event follows
    this.#connectTimer = setTimeout(() => {
      if (socket !== this.#socket || this.#open) return;
      this.#dropSocket(1000, 'connect timeout');
      this.#onClose(1006);
    }, this.#options.connectTimeoutMs);
  }

  /** Forgets the current socket (its events are ignored from now on) and closes it. */
  #dropSocket(code: number, reason: string): void {
    const socket = this.#socket;
    clearTimeout(this.#connectTimer);
    this.#socket = undefined;
    this.#open = false;
    if (socket === undefined) return;
    socket.onopen = socket.onmessage = socket.onclose = null;
    try {
      socket.close(code, reason);
    } catch {
      // closing a socket that never opened may throw in some implementations; it is gone either way
    }
  }

  #onClose(code: number): void {
    this.stats.closeCodes[code] = (this.stats.closeCodes[code] ?? 0) + 1;
    clearTimeout(this.#connectTimer);
    this.#socket = undefined;
    this.#open = false;
    this.#inFlight = 0;
    let largest: PendingExport | undefined;
    for (const entry of this.#pending.values()) {
      if (entry.sent && (largest === undefined || entry.frame.length > largest.frame.length)) largest = entry;
      entry.sent = false;
    }
    // 1009: one of the frames on the wire was over the server's limit; resending it would loop.
    if (code === MESSAGE_TOO_BIG && largest !== undefined) {
      this.#finish(largest.seq, failed('the server closed with 1009: frame over its size limit', 413));
    }
    if (this.#stopped || this.#pending.size === 0) return; // reconnect lazily on the next export
    const base = Math.min(
      this.#options.maxReconnectDelayMs,
      this.#options.reconnectDelayMs * 2 ** this.#failedAttempts,
    );
    const delay = Math.max(code === TRY_AGAIN_LATER ? 1000 : 0, base * (0.5 + Math.random() / 2));
    this.#failedAttempts = Math.min(this.#failedAttempts + 1, 30);
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = undefined;
      if (!this.#stopped && this.#pending.size > 0 && this.#socket === undefined) this.#connect();
    }, delay);
  }

  #onAck(text: string): void {
    const ack = parseAck(text);
    const entry = ack === undefined ? undefined : this.#pending.get(ack.seq);
    if (ack === undefined || entry === undefined || !entry.sent) {
      this.stats.unexpectedAcks += 1;
      return;
    }
    this.stats.acks += 1;
    this.#failedAttempts = 0;
    entry.sent = false;
    this.#inFlight -= 1;
    if (ack.status === 200) {
      this.stats.rejectedSpans += ack.rejectedSpans ?? 0;
      this.#finish(ack.seq, { code: ExportResultCode.SUCCESS });
    } else if (ack.retryable) {
      this.stats.retries += 1;
      entry.notBefore = Date.now() + (ack.retryAfterS ?? 1) * 1000;
    } else {
      this.#finish(ack.seq, failed(`${ack.status} ${ack.code ?? ''}: ${ack.message ?? ''}`, ack.status, ack));
    }
    this.#pump();
  }

  /** Sends pending frames in sequence order while the in-flight window allows. */
  #pump(): void {
    const socket = this.#socket;
    if (socket === undefined || !this.#open) return;
    const now = Date.now();
    let retryAt = Infinity;
    for (const entry of this.#pending.values()) {
      if (this.#inFlight >= this.#options.maxInFlightFrames) break;
      if (entry.sent) continue;
      if (entry.notBefore > now) {
        retryAt = Math.min(retryAt, entry.notBefore);
        continue;
      }
      socket.send(entry.frame);
      entry.sent = true;
      this.#inFlight += 1;
      this.stats.framesSent += 1;
    }
    if (retryAt < this.#pumpAt) {
      clearTimeout(this.#pumpTimer);
      this.#pumpAt = retryAt;
      this.#pumpTimer = setTimeout(() => {
        this.#pumpAt = Infinity;
        this.#pumpTimer = undefined;
        this.#pump();
      }, retryAt - now);
    }
  }

  #finish(seq: number, result: ExportResult): void {
    const entry = this.#pending.get(seq);
    if (entry === undefined) return;
    this.#pending.delete(seq);
    this.#pendingBytes -= entry.frame.length;
    clearTimeout(entry.timer);
    if (entry.sent) this.#inFlight -= 1;
    entry.callback(result);
    if (this.#pending.size === 0) {
      clearTimeout(this.#pumpTimer);
      this.#pumpTimer = undefined;
      this.#pumpAt = Infinity;
      for (const resolve of this.#drainWaiters.splice(0)) resolve();
    }
  }

  #waitDrained(timeoutMs: number): Promise<void> {
    if (this.#pending.size === 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#drainWaiters = this.#drainWaiters.filter((waiter) => waiter !== done);
        reject(new WsExportError(`${this.#pending.size} exports still unacknowledged after ${timeoutMs} ms`));
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        resolve();
      };
      this.#drainWaiters.push(done);
    });
  }
}

function failed(message: string, code?: number, ack?: WsAck): ExportResult {
  return { code: ExportResultCode.FAILED, error: new WsExportError(message, code, ack) };
}
