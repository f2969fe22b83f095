/**
 * The ONE place that decides what an OTLP client is told, for HTTP and WebSocket alike
 * (DESIGN decision 2, OTLP spec "Failures" and "Partial Success"). First a transport-neutral
 * OtlpDecision, then one encoder per transport:
 *   committed                  → 200 (partialSuccess when spans were rejected)
 *   permanent problem          → 400 / 413 / 415, never retried by clients
 *   transient problem          → 503 + Retry-After, retried by clients
 * HTTP bodies (ExportTraceServiceResponse or google.rpc.Status) are in the request's encoding
 * (protobuf or JSON); a WebSocket ack is a small JSON text frame (docs/websocket-protocol.md).
 */
import { ERRORS, TracehouseError, isTracehouseError, type ErrorCode } from '../errors.js';
import type { WireFormat } from '../decode/types.js';
import type { IngestOutcome } from './ingest.js';

export interface OtlpReply {
  statusCode: number;
  retryAfterS?: number;
  contentType: string;
  body: Buffer | string;
  code?: ErrorCode;
}

const CONTENT_TYPES: Record<WireFormat, string> = {
  protobuf: 'application/x-protobuf',
  json: 'application/json',
};

export const SUPPORTED_MEDIA_TYPES = 'application/x-protobuf, application/json';
export const SUPPORTED_ENCODINGS = 'gzip, identity';

/** Maps errors raised anywhere on the ingest path (ours, fastify's, zlib's) to one of our codes. */
export function toTracehouseError(err: unknown): TracehouseError {
  if (isTracehouseError(err)) return err;
  const { code, message } = (err ?? {}) as { code?: string; message?: string };
  switch (code) {
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_ERR_CTP_INVALID_TYPE':
      return new TracehouseError(
        'TH_ERR_RECEIVE_UNSUPPORTED_MEDIA_TYPE',
        `unsupported Content-Type; supported: ${SUPPORTED_MEDIA_TYPES}`,
      );
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new TracehouseError('TH_ERR_RECEIVE_BODY_TOO_LARGE');
    case 'Z_DATA_ERROR':
    case 'Z_BUF_ERROR':
    case 'Z_NEED_DICT':
      return new TracehouseError('TH_ERR_RECEIVE_BAD_GZIP', `invalid gzip body: ${message ?? code}`);
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
    case 'ECONNRESET':
    case 'ECONNABORTED':
    case 'ERR_STREAM_PREMATURE_CLOSE':
      return new TracehouseError('TH_ERR_RECEIVE_BODY_ABORTED', `request body incomplete: ${message ?? code}`);
    default:
      return new TracehouseError('TH_ERR_INTERNAL', undefined, { cause: err });
  }
}

/** What a client is told about one export request, before any transport encodes it. */
export interface OtlpDecision {
  statusCode: number;
  retryable: boolean;
  retryAfterS?: number; // only when retryable
  code?: ErrorCode; // only for errors
  grpcCode?: number; // only for errors
  message?: string; // only for errors: what went wrong, without the code
  accepted: number; // spans committed (0 for errors)
  rejectedSpans: number; // spans permanently rejected in a committed request
  errorMessage: string; // why they were rejected ('' when none)
}

export function decideForOutcome(outcome: IngestOutcome): OtlpDecision {
  return {
    statusCode: 200,
    retryable: false,
    accepted: outcome.accepted,
    rejectedSpans: outcome.rejected,
    errorMessage: outcome.rejected > 0 ? outcome.rejectMessage : '',
  };
}

export function decideForError(err: unknown, retryAfterS: number): OtlpDecision {
  const error = toTracehouseError(err);
  return {
    statusCode: error.httpStatus,
    retryable: error.retryable,
    retryAfterS: error.retryable ? (error.retryAfterS ?? retryAfterS) : undefined, // rate limits know theirs
    code: error.code,
    grpcCode: error.grpcCode,
    message: error.code === 'TH_ERR_INTERNAL' ? ERRORS.TH_ERR_INTERNAL.description : error.message,
    accepted: 0,
    rejectedSpans: 0,
    errorMessage: '',
  };
}

/** The HTTP answer: ExportTraceServiceResponse on 200, google.rpc.Status otherwise. */
export function encodeHttpReply(decision: OtlpDecision, format: WireFormat): OtlpReply {
  if (decision.code === undefined) {
    const partial =
      decision.rejectedSpans > 0
        ? { rejectedSpans: decision.rejectedSpans, errorMessage: decision.errorMessage }
        : undefined;
    return { statusCode: 200, contentType: CONTENT_TYPES[format], body: encodeExportResponse(partial, format) };
  }
  return {
    statusCode: decision.statusCode,
    retryAfterS: decision.retryAfterS,
    contentType: CONTENT_TYPES[format],
    body: encodeStatus(decision.grpcCode ?? 0, `${decision.code}: ${decision.message ?? ''}`, format),
    code: decision.code,
  };
}

/**
 * The WebSocket ack for the frame with sequence id `seq`: one JSON text frame, e.g.
 *   {"seq":7,"status":200,"accepted":512,"rejectedSpans":0}
 *   {"seq":8,"status":200,"accepted":9,"rejectedSpans":1,"errorMessage":"1 span rejected: …"}
 *   {"seq":9,"status":503,"code":"TH_ERR_BATCH_QUEUE_FULL","message":"…","retryable":true,"retryAfterS":1}
 */
export function encodeWebSocketAck(seq: number, decision: OtlpDecision): string {
  if (decision.code === undefined) {
    const ack: Record<string, unknown> = {
      seq,
      status: 200,
      accepted: decision.accepted,
      rejectedSpans: decision.rejectedSpans,
    };
    if (decision.rejectedSpans > 0) ack.errorMessage = decision.errorMessage;
    return JSON.stringify(ack);
  }
  const ack: Record<string, unknown> = {
    seq,
    status: decision.statusCode,
    code: decision.code,
    message: decision.message,
    retryable: decision.retryable,
  };
  if (decision.retryAfterS !== undefined) ack.retryAfterS = decision.retryAfterS;
  return JSON.stringify(ack);
}

export function replyForOutcome(outcome: IngestOutcome, format: WireFormat): OtlpReply {
  return encodeHttpReply(decideForOutcome(outcome), format);
}

export function replyForError(err: unknown, format: WireFormat, retryAfterS: number): OtlpReply {
  return encodeHttpReply(decideForError(err, retryAfterS), format);
}

/**
 * Refusals before a request or frame is read (queue full, storage backing off, shutting down) get
 * the same answer every time, hundreds per second under overload: it is built once per code,
 * Retry-After and format, not from a new Error with its stack trace per refusal. State: those few
 * answers, shared and never modified.
 */
const refusalDecisions = new Map<string, OtlpDecision>();
const refusalReplies = new Map<string, OtlpReply>();

export function decideForRefusal(code: ErrorCode, retryAfterS: number): OtlpDecision {
  const key = `${code}:${retryAfterS}`;
  let decision = refusalDecisions.get(key);
  if (decision === undefined) {
    refusalDecisions.set(key, (decision = decideForError(new TracehouseError(code), retryAfterS)));
  }
  return decision;
}

export function replyForRefusal(code: ErrorCode, format: WireFormat, retryAfterS: number): OtlpReply {
  const key = `${code}:${retryAfterS}:${format}`;
  let reply = refusalReplies.get(key);
  if (reply === undefined) {
    refusalReplies.set(key, (reply = encodeHttpReply(decideForRefusal(code, retryAfterS), format)));
  }
  return reply;
}

interface PartialSuccess {
  rejectedSpans: number;
  errorMessage: string;
}

/** ExportTraceServiceResponse { ExportTracePartialSuccess partial_success = 1 { int64 rejected_spans = 1; string error_message = 2 } } */
function encodeExportResponse(partial: PartialSuccess | undefined, format: WireFormat): Buffer | string {
  if (format === 'json') {
    return partial
      ? JSON.stringify({
          partialSuccess: { rejectedSpans: String(partial.rejectedSpans), errorMessage: partial.errorMessage },
        })
      : '{}';
  }
  if (!partial) return Buffer.alloc(0);
  const inner = Buffer.concat([varintField(1, partial.rejectedSpans), stringField(2, partial.errorMessage)]);
  return lengthDelimited(1, inner);
}

/** google.rpc.Status { int32 code = 1; string message = 2; repeated Any details = 3 } */
function encodeStatus(code: number, message: string, format: WireFormat): Buffer | string {
  if (format === 'json') return JSON.stringify({ code, message });
  return Buffer.concat([varintField(1, code), stringField(2, message)]);
}

function varint(value: number): Buffer {
  const bytes: number[] = [];
  let v = value;
  while (v > 0x7f) {
    bytes.push((v % 128) | 0x80);
    v = Math.floor(v / 128);
  }
  bytes.push(v);
  return Buffer.from(bytes);
}

function varintField(field: number, value: number): Buffer {
  return Buffer.concat([varint(field << 3), varint(value)]);
}

function stringField(field: number, value: string): Buffer {
  return lengthDelimited(field, Buffer.from(value, 'utf8'));
}

function lengthDelimited(field: number, payload: Buffer): Buffer {
  return Buffer.concat([varint((field << 3) | 2), varint(payload.length), payload]);
}
