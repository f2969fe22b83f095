/**
 * A raw tracehouse.otlp.v1 client for tests that need to send exactly the bytes they choose (bad
 * envelopes, reused ids, floods) and see every ack and the close code. Keeps every ack in order of
 * arrival and counts acks per sequence id, so a test can check "each frame acked exactly once".
 * Real clients use client/ws-span-exporter.ts.
 */
import WebSocket from 'ws';
import { WS_SUBPROTOCOL } from '../../server/receive/ws-envelope.js';

export interface Ack {
  seq: number;
  status: number;
  accepted?: number;
  rejectedSpans?: number;
  errorMessage?: string;
  code?: string;
  message?: string;
  retryable?: boolean;
  retryAfterS?: number;
}

export interface CloseInfo {
  code: number;
  reason: string;
}

/** ws://host:port/v1/traces/ws for a server listening at http://host:port. */
export function wsUrl(httpUrl: string, query = ''): string {
  return `${httpUrl.replace(/^http/, 'ws')}/v1/traces/ws${query}`;
}

export function binaryFrame(seq: number | bigint, body: Uint8Array): Buffer {
  const frame = Buffer.allocUnsafe(8 + body.length);
  frame.writeBigUInt64BE(BigInt(seq), 0);
  frame.set(body, 8);
  return frame;
}

export function textFrame(seq: number, json: string): string {
  return `${seq}\n${json}`;
}

export class RawWsClient {
  readonly socket: WebSocket;
  readonly acks: Ack[] = [];
  readonly ackCounts = new Map<number, number>();
  readonly closed: Promise<CloseInfo>;
  readonly #waiters = new Set<() => void>();

  private constructor(socket: WebSocket) {
    this.socket = socket;
    socket.on('message', (data, isBinary) => {
      if (isBinary) throw new Error('the server sent a binary frame');
      const ack = JSON.parse(String(data)) as Ack;
      this.acks.push(ack);
      this.ackCounts.set(ack.seq, (this.ackCounts.get(ack.seq) ?? 0) + 1);
      for (const wake of this.#waiters) wake();
    });
    this.closed = new Promise((resolve) => {
      socket.once('close', (code, reason) => {
        resolve({ code, reason: reason.toString() });
        for (const wake of this.#waiters) wake();
      });
    });
  }

  /** Opens a connection; rejects with the HTTP status when the server refuses the upgrade. */
  static connect(url: string, options: { protocols?: string[]; headers?: Record<string, string> } = {}) {
    const socket = new WebSocket(url, options.protocols ?? [WS_SUBPROTOCOL], {
      headers: options.headers,
      perMessageDeflate: false,
    });
    return new Promise<RawWsClient>((resolve, reject) => {
      socket.once('open', () => resolve(new RawWsClient(socket)));
      socket.once('unexpected-response', (request, response) => {
        request.destroy();
        reject(
          Object.assign(new Error(`upgrade refused with HTTP ${response.statusCode}`), { status: response.statusCode }),
        );
      });
      socket.once('error', reject);
    });
  }

  send(data: Buffer | string): void {
    this.socket.send(data);
  }

  /** Resolves when `predicate` holds, checked after every ack and on close. */
  async waitFor(predicate: () => boolean, timeoutMs: number, what: string): Promise<void> {
    if (predicate()) return;
    let timer: NodeJS.Timeout | undefined;
    let wake: () => void = () => undefined;
    try {
      await new Promise<void>((resolve, reject) => {
        wake = () => predicate() && resolve();
        this.#waiters.add(wake);
        timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs);
      });
    } finally {
      this.#waiters.delete(wake);
      clearTimeout(timer);
    }
  }

  async ack(seq: number, timeoutMs = 10_000): Promise<Ack> {
    await this.waitFor(() => this.ackCounts.has(seq), timeoutMs, `the ack of frame ${seq}`);
    return this.acks.find((ack) => ack.seq === seq)!;
  }

  async waitClosed(timeoutMs = 10_000): Promise<CloseInfo> {
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        this.closed,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`connection still open after ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Closes (1000) and waits for the close; terminates a connection that does not answer. */
  async close(): Promise<void> {
    if (this.socket.readyState === WebSocket.CLOSED) return;
    this.socket.close(1000);
    await this.waitClosed(5000).catch(() => this.socket.terminate());
  }
}
