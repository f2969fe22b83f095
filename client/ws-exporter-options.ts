/**
 * WsSpanExporter's options, defaults, counters and error type, and the slice of the WHATWG
 * WebSocket API it relies on (browsers' WebSocket and the `ws` package's both provide it).
 */
import type { WsAck } from './ws-protocol.js';

/** Any WHATWG-style WebSocket constructor: the browser's, or the `ws` package's. */
export type WebSocketConstructor = new (url: string, protocols: string[]) => object;

/** The part of the WHATWG WebSocket API the exporter uses. */
export interface WebSocketLike {
  readonly readyState: number;
  binaryType: string;
  onopen: (() => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: (() => void) | null;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
}

export interface WsSpanExporterOptions {
  /** ws:// or wss:// URL of /v1/traces/ws (a browser may carry its token in the query string). */
  url: string;
  /** Defaults to globalThis.WebSocket (browsers, Node ≥ 22). In Node 20 pass `WebSocket` from `ws`. */
  WebSocket?: WebSocketConstructor;
  /**
   * Subprotocols offered after tracehouse.otlp.v1: a browser, which cannot set headers, sends its
   * token as `bearer.<token>`. A function is called at every (re)connect, so a refreshed token is used.
   */
  protocols?: string[] | (() => string[]);
  /** Frames sent and not yet acked on the connection. Keep it ≤ the server's WS_MAX_UNACKED_FRAMES. Default 32. */
  maxInFlightFrames?: number;
  /** Exports waiting for their ack (sent or not); past it export() fails at once. Default 512. */
  maxPendingFrames?: number;
  /** Frame bytes of those exports; past it export() fails at once. Default 64 MiB. */
  maxPendingBytes?: number;
  /** A larger export fails at once. Match the server's WS_MAX_FRAME_BYTES. Default 16 MiB. */
  maxFrameBytes?: number;
  /** An export not acked within this time fails and is not sent again. Default 30 000 ms. */
  timeoutMillis?: number;
  /** Reconnect backoff: the first delay, doubled per failed attempt up to the cap, with jitter. */
  reconnectDelayMs?: number;
  maxReconnectDelayMs?: number;
  /** A connection that is not open after this long is abandoned and retried. Default 10 000 ms. */
  connectTimeoutMs?: number;
  /** How long forceFlush() and shutdown() wait for outstanding acks. Default 30 000 ms. */
  flushTimeoutMs?: number;
}

/** Counters for tests and diagnostics. */
export interface WsExporterStats {
  connections: number; // connections opened
  framesSent: number; // frames written, resends included
  acks: number; // acks matched to a frame in flight
  unexpectedAcks: number; // acks for no frame in flight (never expected from a correct server)
  retries: number; // 503/429 acks
  rejectedSpans: number; // partial-success rejects reported by the server
  closeCodes: Record<number, number>; // how connections ended (1006: dropped without a close frame)
}

/** Why an export failed: the server's error ack, or a client-side limit. */
export class WsExportError extends Error {
  constructor(
    message: string,
    readonly code?: number, // the ack's HTTP-equivalent status
    readonly ack?: WsAck,
  ) {
    super(message);
    this.name = 'WsExportError';
  }
}

export type ResolvedOptions = Required<Omit<WsSpanExporterOptions, 'WebSocket' | 'protocols'>>;

export const DEFAULTS: Omit<ResolvedOptions, 'url'> = {
  maxInFlightFrames: 32,
  maxPendingFrames: 512,
  maxPendingBytes: 64 * 1024 * 1024,
  maxFrameBytes: 16 * 1024 * 1024,
  timeoutMillis: 30_000,
  reconnectDelayMs: 100,
  maxReconnectDelayMs: 5000,
  connectTimeoutMs: 10_000,
  flushTimeoutMs: 30_000,
};

/** The options with every default filled in (an explicit `undefined` keeps the default). */
export function resolveOptions(options: WsSpanExporterOptions): ResolvedOptions {
  const given = Object.fromEntries(
    Object.entries(options).filter(([key, value]) => value !== undefined && key !== 'WebSocket' && key !== 'protocols'),
  );
  return { ...DEFAULTS, ...given, url: options.url };
}
