/**
 * The client side of the tracehouse.otlp.v1 WebSocket protocol (docs/websocket-protocol.md):
 * frame encoding and ack parsing. Browser-safe: Uint8Array, DataView and JSON only.
 */

export const WS_SUBPROTOCOL = 'tracehouse.otlp.v1';

/** Bytes before the protobuf body in a binary frame: the big-endian unsigned 64-bit sequence id. */
export const BINARY_HEADER_BYTES = 8;

/** The server's answer to one frame: 200 (committed, maybe partially) or an error. */
export interface WsAck {
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

/** A binary frame: 8-byte big-endian sequence id, then the ExportTraceServiceRequest bytes. */
export function encodeBinaryFrame(seq: number, body: Uint8Array): Uint8Array {
  if (!Number.isSafeInteger(seq) || seq < 0) throw new RangeError(`sequence id ${seq} is not in [0, 2^53 - 1]`);
  const frame = new Uint8Array(BINARY_HEADER_BYTES + body.length);
  const view = new DataView(frame.buffer);
  view.setUint32(0, Math.floor(seq / 2 ** 32));
  view.setUint32(4, seq % 2 ** 32);
  frame.set(body, BINARY_HEADER_BYTES);
  return frame;
}

/** A text frame: the decimal sequence id, a newline, then the OTLP/JSON ExportTraceServiceRequest. */
export function encodeTextFrame(seq: number, json: string): string {
  if (!Number.isSafeInteger(seq) || seq < 0) throw new RangeError(`sequence id ${seq} is not in [0, 2^53 - 1]`);
  return `${seq}\n${json}`;
}

/** Parses an ack text frame; undefined when it is not one. */
export function parseAck(text: string): WsAck | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const ack = value as WsAck;
  return Number.isSafeInteger(ack.seq) && Number.isInteger(ack.status) ? ack : undefined;
}
