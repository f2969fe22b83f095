/**
 * WsSpanExporter's own logic against a scripted WebSocket (the integration tests run it against the
 * real server): sequence ids, the in-flight window, resend in order after a reconnect, retry after
 * a 503 ack, permanent failures, the pending bound, 1009, timeouts and shutdown.
 */
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { WsSpanExporter, type WsSpanExporterOptions } from '../../../client/ws-span-exporter.js';
import type { WsAck } from '../../../client/ws-protocol.js';
import { realisticSpans, toReadableSpans } from '../../helpers/otlp-fixtures.js';

/** A WebSocket whose server side the test plays: open(), ack(), drop(). */
class ScriptedSocket {
  static instances: ScriptedSocket[] = [];
  readyState = 0;
  binaryType = 'blob';
  sent: number[] = []; // sequence ids, in send order
  closedWith: number | undefined;
  onopen: (() => void) | null = null;
  onmessage: ((event: { data: unknown }) => void) | null = null;
  onclose: ((event: { code: number; reason: string }) => void) | null = null;
  onerror: (() => void) | null = null;

  constructor(
    readonly url: string,
    readonly protocols: string[],
  ) {
    ScriptedSocket.instances.push(this);
  }

  static get last(): ScriptedSocket {
    return ScriptedSocket.instances.at(-1)!;
  }

  send(data: Uint8Array): void {
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    this.sent.push(view.getUint32(0) * 2 ** 32 + view.getUint32(4));
  }

  close(code?: number): void {
    this.closedWith = code;
    this.readyState = 3;
  }

  open(): void {
    this.readyState = 1;
    this.onopen?.();
  }

  ack(ack: Partial<WsAck> & { seq: number }): void {
    this.onmessage?.({ data: JSON.stringify({ status: 200, accepted: 1, rejectedSpans: 0, ...ack }) });
  }

  drop(code = 1006): void {
    this.readyState = 3;
    this.onclose?.({ code, reason: '' });
  }
}

const spans = (n = 2) => toReadableSpans({ spans: realisticSpans(n, { nowMs: Date.now() }) });

function makeExporter(options: Partial<WsSpanExporterOptions> = {}): WsSpanExporter {
  return new WsSpanExporter({ url: 'ws://127.0.0.1:1/v1/traces/ws', WebSocket: ScriptedSocket, ...options });
}

function exportOnce(exporter: WsSpanExporter, n = 2): { result: () => ExportResult | undefined } {
  let result: ExportResult | undefined;
  exporter.export(spans(n), (r) => {
    if (result !== undefined) throw new Error('callback called twice');
    result = r;
  });
  return { result: () => result };
}

beforeEach(() => {
  vi.useFakeTimers();
  ScriptedSocket.instances = [];
});
afterEach(() => {
  vi.useRealTimers();
});

describe('WsSpanExporter', () => {
  it('connects lazily with the tracehouse.otlp.v1 subprotocol and succeeds an export when its 200 ack arrives', () => {
    const exporter = makeExporter({ protocols: ['bearer.token'] });
    expect(ScriptedSocket.instances).toEqual([]);
    const a = exportOnce(exporter);
    const socket = ScriptedSocket.last;
    expect(socket.protocols).toEqual(['tracehouse.otlp.v1', 'bearer.token']);
    expect(socket.binaryType).toBe('arraybuffer');
    socket.open();
    expect(socket.sent).toEqual([1]);
    expect(a.result()).toBeUndefined();
    socket.ack({ seq: 1, accepted: 2, rejectedSpans: 1, errorMessage: '1 span rejected' });
    expect(a.result()).toEqual({ code: ExportResultCode.SUCCESS }); // partial success is not retried
    expect(exporter.stats).toMatchObject({ acks: 1, rejectedSpans: 1, unexpectedAcks: 0 });
    expect(exporter.pending).toBe(0);
  });

  it('keeps at most maxInFlightFrames on the wire and sends the next as acks come back', () => {
    const exporter = makeExporter({ maxInFlightFrames: 2 });
    const results = [1, 2, 3, 4].map(() => exportOnce(exporter));
    const socket = ScriptedSocket.last;
    socket.open();
    expect(socket.sent).toEqual([1, 2]);
    socket.ack({ seq: 2 });
    expect(socket.sent).toEqual([1, 2, 3]);
    socket.ack({ seq: 1 });
    socket.ack({ seq: 3 });
    socket.ack({ seq: 4 });
    expect(results.map((r) => r.result()?.code)).toEqual([0, 0, 0, 0]);
  });

  it('resends every unacknowledged frame, in sequence order, on the next connection after a backoff', () => {
    const exporter = makeExporter({ reconnectDelayMs: 100 });
    const results = [1, 2, 3, 4, 5].map(() => exportOnce(exporter));
    const first = ScriptedSocket.last;
    first.open();
    first.ack({ seq: 2 });
    first.ack({ seq: 4 });
    first.drop(1006);
    expect(ScriptedSocket.instances).toHaveLength(1);
    vi.advanceTimersByTime(100);
    const second = ScriptedSocket.last;
    expect(second).not.toBe(first);
    second.open();
    expect(second.sent).toEqual([1, 3, 5]);
    for (const seq of [5, 1, 3]) second.ack({ seq });
    expect(results.map((r) => r.result()?.code)).toEqual([0, 0, 0, 0, 0]);
    expect(exporter.stats).toMatchObject({ connections: 2, framesSent: 8, acks: 5, closeCodes: { 1006: 1 } });
  });

  it('backs off exponentially while reconnects fail, and asks for fresh protocols (a refreshed token) each time', () => {
    let token = 0;
    const exporter = makeExporter({
      reconnectDelayMs: 100,
      maxReconnectDelayMs: 400,
      protocols: () => [`bearer.t${++token}`],
    });
    exportOnce(exporter);
    ScriptedSocket.last.drop();
    const delays: number[] = [];
    for (let attempt = 0; attempt < 4; attempt++) {
      const before = ScriptedSocket.instances.length;
      let waited = 0;
      while (ScriptedSocket.instances.length === before) {
        vi.advanceTimersByTime(10);
        waited += 10;
      }
      delays.push(waited);
      ScriptedSocket.last.drop();
    }
    // base × 2^attempt capped at 400 ms, times a jitter factor in [0.5, 1]
    expect(delays[0]).toBeLessThanOrEqual(200);
    expect(delays[2]).toBeGreaterThanOrEqual(200);
    expect(delays[3]).toBeLessThanOrEqual(400);
    expect(ScriptedSocket.instances.map((s) => s.protocols[1])).toEqual([
      'bearer.t1',
      'bearer.t2',
      'bearer.t3',
      'bearer.t4',
      'bearer.t5',
    ]);
  });

  it('retries a frame refused with a retryable 503 ack after retryAfterS, with the same sequence id', () => {
    const exporter = makeExporter();
    const a = exportOnce(exporter);
    const socket = ScriptedSocket.last;
    socket.open();
    socket.ack({ seq: 1, status: 503, code: 'TH_ERR_BATCH_QUEUE_FULL', retryable: true, retryAfterS: 2 });
    vi.advanceTimersByTime(1999);
    expect(socket.sent).toEqual([1]);
    vi.advanceTimersByTime(1);
    expect(socket.sent).toEqual([1, 1]);
    socket.ack({ seq: 1 });
    expect(a.result()?.code).toBe(ExportResultCode.SUCCESS);
    expect(exporter.stats.retries).toBe(1);
  });

  it('fails an export on a permanent error ack and never sends it again', () => {
    const exporter = makeExporter({ reconnectDelayMs: 1 });
    const a = exportOnce(exporter);
    const b = exportOnce(exporter);
    const socket = ScriptedSocket.last;
    socket.open();
    socket.ack({ seq: 1, status: 400, code: 'TH_ERR_DECODE_BAD_PROTOBUF', message: 'truncated', retryable: false });
    expect(a.result()?.code).toBe(ExportResultCode.FAILED);
    expect(a.result()?.error).toMatchObject({ code: 400, message: '400 TH_ERR_DECODE_BAD_PROTOBUF: truncated' });
    socket.drop();
    vi.advanceTimersByTime(10);
    ScriptedSocket.last.open();
    expect(ScriptedSocket.last.sent).toEqual([2]);
    expect(b.result()).toBeUndefined();
  });

  it('fails fast past maxPendingFrames and maxFrameBytes, without touching the connection', () => {
    const exporter = makeExporter({ maxPendingFrames: 2, maxFrameBytes: 64 * 1024 });
    exportOnce(exporter);
    exportOnce(exporter);
    const third = exportOnce(exporter);
    expect(third.result()).toMatchObject({
      code: ExportResultCode.FAILED,
      error: { message: expect.stringMatching(/waiting for acks/) },
    });
    ScriptedSocket.last.open();
    ScriptedSocket.last.ack({ seq: 1 });
    const huge = exportOnce(exporter, 400);
    expect(huge.result()).toMatchObject({
      code: ExportResultCode.FAILED,
      error: { message: expect.stringMatching(/maxFrameBytes/) },
    });
    expect(exporter.pending).toBe(1);
  });

  it('after a 1009 close fails the largest frame that was on the wire and resends the others', () => {
    const exporter = makeExporter({ reconnectDelayMs: 1 });
    const small = exportOnce(exporter, 1);
    const big = exportOnce(exporter, 50);
    ScriptedSocket.last.open();
    ScriptedSocket.last.drop(1009);
    expect(big.result()).toMatchObject({ code: ExportResultCode.FAILED, error: { code: 413 } });
    vi.advanceTimersByTime(10);
    ScriptedSocket.last.open();
    expect(ScriptedSocket.last.sent).toEqual([1]);
    ScriptedSocket.last.ack({ seq: 1 });
    expect(small.result()?.code).toBe(ExportResultCode.SUCCESS);
  });

  it('fails an export not acked within timeoutMillis and does not resend it; a late ack counts as unexpected', () => {
    const exporter = makeExporter({ timeoutMillis: 1000, reconnectDelayMs: 1 });
    const a = exportOnce(exporter);
    ScriptedSocket.last.open();
    vi.advanceTimersByTime(1000);
    expect(a.result()).toMatchObject({ code: ExportResultCode.FAILED, error: { message: 'no ack within 1000 ms' } });
    ScriptedSocket.last.ack({ seq: 1 });
    expect(exporter.stats.unexpectedAcks).toBe(1);
  });

  it('forceFlush waits for every ack; shutdown fails what is left after flushTimeoutMs, closes, refuses new exports', async () => {
    const exporter = makeExporter({ flushTimeoutMs: 500 });
    const a = exportOnce(exporter);
    const b = exportOnce(exporter);
    const socket = ScriptedSocket.last;
    socket.open();
    let flushed = false;
    void exporter.forceFlush().then(() => (flushed = true));
    socket.ack({ seq: 1 });
    await vi.advanceTimersByTimeAsync(0);
    expect(flushed).toBe(false);
    socket.ack({ seq: 2 });
    await vi.advanceTimersByTimeAsync(0);
    expect(flushed).toBe(true);
    expect([a.result()?.code, b.result()?.code]).toEqual([0, 0]);

    const c = exportOnce(exporter);
    const shutdown = exporter.shutdown();
    await vi.advanceTimersByTimeAsync(500);
    await shutdown;
    expect(c.result()).toMatchObject({ code: ExportResultCode.FAILED });
    expect(socket.closedWith).toBe(1000);
    expect(exportOnce(exporter).result()).toMatchObject({ code: ExportResultCode.FAILED });
    expect(vi.getTimerCount()).toBe(0);
  });
});
