/**
 * WebSocket ingest load (autocannon cannot speak WebSocket): `connections` sockets on the
 * tracehouse.otlp.v1 subprotocol (client/ws-protocol.ts), each keeping up to `window` binary frames
 * unacknowledged. A frame's sequence id is its request number r, so every ack lands in the ledger
 * under the request it answers. Bounded: no reconnects, no resends; when the time is up it stops
 * sending, waits (at most drainMs) for the acks of the frames in flight, then closes. A frame whose
 * ack never came stays "sent, no answer" in the ledger.
 */
import WebSocket from 'ws';
import { BINARY_HEADER_BYTES, WS_SUBPROTOCOL, parseAck } from '../../client/ws-protocol.js';
import type { Ledger } from './ledger.js';
import { templateOf, type Template } from './templates.js';

export interface WsLoadOptions {
  url: string; // http://host:port of the server
  connections: number;
  window: number; // unacknowledged frames per connection
  seconds: number;
  drainMs?: number;
}

export interface WsLoadRun {
  startedAt: number;
  endedAt: number;
  closeCodes: Record<number, number>;
  unexpectedAcks: number;
}

function frameFor(templates: Template[], ledger: Ledger, r: number): Buffer {
  const template = templateOf(templates, r).protobuf;
  const frame = Buffer.allocUnsafe(BINARY_HEADER_BYTES + template.body.length);
  frame.writeBigUInt64BE(BigInt(r), 0);
  template.body.copy(frame, BINARY_HEADER_BYTES);
  template.patchInto(frame.subarray(BINARY_HEADER_BYTES), ledger.tag, r);
  return frame;
}

export async function runWsLoad(templates: Template[], ledger: Ledger, options: WsLoadOptions): Promise<WsLoadRun> {
  const url = `${options.url.replace(/^http/, 'ws')}/v1/traces/ws`;
  const closeCodes: Record<number, number> = {};
  let unexpectedAcks = 0;
  let sending = true;
  const startedAt = performance.now();

  const connection = async (): Promise<void> => {
    const socket = new WebSocket(url, [WS_SUBPROTOCOL], { perMessageDeflate: false });
    const inFlight = new Set<number>();
    let settle: () => void = () => undefined;
    const done = new Promise<void>((resolve) => (settle = resolve));
    const pump = (): void => {
      while (sending && inFlight.size < options.window && socket.readyState === WebSocket.OPEN) {
        const r = ledger.take();
        const frame = frameFor(templates, ledger, r);
        inFlight.add(r);
        ledger.sent(r, frame.length);
        socket.send(frame);
      }
      if (!sending && inFlight.size === 0) settle();
    };
    socket.on('open', pump);
    socket.on('message', (data, isBinary) => {
      const ack = isBinary ? undefined : parseAck(String(data));
      if (ack === undefined || !inFlight.delete(ack.seq)) {
        unexpectedAcks++;
        return;
      }
      ledger.answered(ack.seq, ack.status, (ack.rejectedSpans ?? 0) > 0);
      pump();
    });
    socket.on('error', () => undefined);
    socket.on('close', (code) => {
      closeCodes[code] = (closeCodes[code] ?? 0) + 1;
      settle();
    });
    let drainTimer: NodeJS.Timeout | undefined;
    const stopTimer = setTimeout(() => {
      sending = false;
      pump();
      // Acks still outstanding get drainMs, then the connection is closed regardless.
      drainTimer = setTimeout(settle, options.drainMs ?? 10_000);
    }, options.seconds * 1000);
    await done;
    clearTimeout(stopTimer);
    clearTimeout(drainTimer);
    if (socket.readyState === WebSocket.OPEN || socket.readyState === WebSocket.CONNECTING) {
      let killTimer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        socket.once('close', () => resolve());
        socket.close(1000);
        killTimer = setTimeout(() => (socket.terminate(), resolve()), 5000);
      });
      clearTimeout(killTimer);
    }
  };

  await Promise.all(Array.from({ length: options.connections }, connection));
  return { startedAt, endedAt: startedAt + options.seconds * 1000, closeCodes, unexpectedAcks };
}
