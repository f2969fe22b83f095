/**
 * The WebSocket ingest envelope (docs/websocket-protocol.md), subprotocol `tracehouse.otlp.v1`:
 *   binary frame = 8-byte big-endian unsigned sequence id + ExportTraceServiceRequest (protobuf)
 *   text frame   = decimal sequence id + "\n" + ExportTraceServiceRequest (OTLP/JSON)
 * Sequence ids are chosen by the client, in [0, 2^53 − 1] so that they survive JSON in the ack.
 * A frame whose id cannot be read is a protocol error: the connection closes with 1007.
 */
import type { WireFormat } from '../decode/types.js';

export const WS_SUBPROTOCOL = 'tracehouse.otlp.v1';

/** The close codes tracehouse sends (RFC 6455 §7.4.1 and the IANA registry). */
export const CloseCode = {
  NORMAL: 1000,
  GOING_AWAY: 1001, // shutdown: reconnect, possibly to another instance
  PROTOCOL_ERROR: 1002, // the tracehouse.otlp.v1 subprotocol was not negotiated
  INVALID_PAYLOAD: 1007, // malformed envelope, or a text frame that is not UTF-8
  POLICY_VIOLATION: 1008, // a sequence id reused while still unacknowledged
  MESSAGE_TOO_BIG: 1009, // a frame over WS_MAX_FRAME_BYTES
  INTERNAL_ERROR: 1011,
  TRY_AGAIN_LATER: 1013, // WS_MAX_CONNECTIONS reached
} as const;

export const BINARY_HEADER_BYTES = 8;
const MAX_SEQ_DIGITS = 16; // 2^53 − 1 has 16 digits
const NEWLINE = 0x0a;

export type ParsedFrame =
  { ok: true; seq: number; format: WireFormat; body: Buffer } | { ok: false; closeCode: number; reason: string };

/** Splits a frame into its sequence id and OTLP body. Never throws; the body is a view, not a copy. */
export function parseFrame(data: Buffer, isBinary: boolean): ParsedFrame {
  return isBinary ? parseBinary(data) : parseText(data);
}

function parseBinary(data: Buffer): ParsedFrame {
  if (data.length < BINARY_HEADER_BYTES) {
    return invalid(`binary frame of ${data.length} bytes has no 8-byte sequence id`);
  }
  const seq = data.readBigUInt64BE(0);
  if (seq > BigInt(Number.MAX_SAFE_INTEGER)) return invalid(`sequence id ${seq} is above 2^53 - 1`);
  return { ok: true, seq: Number(seq), format: 'protobuf', body: data.subarray(BINARY_HEADER_BYTES) };
}

function parseText(data: Buffer): ParsedFrame {
  const end = data.subarray(0, MAX_SEQ_DIGITS + 1).indexOf(NEWLINE);
  if (end <= 0) return invalid('text frame does not start with a decimal sequence id and a newline');
  let seq = 0;
  for (let i = 0; i < end; i++) {
    const digit = data[i] - 0x30;
    if (digit < 0 || digit > 9) return invalid('text frame sequence id is not a decimal number');
    seq = seq * 10 + digit;
  }
  if (seq > Number.MAX_SAFE_INTEGER) return invalid('sequence id is above 2^53 - 1');
  return { ok: true, seq, format: 'json', body: data.subarray(end + 1) };
}

function invalid(reason: string): ParsedFrame {
  return { ok: false, closeCode: CloseCode.INVALID_PAYLOAD, reason };
}
