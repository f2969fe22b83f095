/**
 * The decode stage: one OTLP ExportTraceServiceRequest body in, span rows and per-span rejects out.
 * Pure: no I/O, no clock (the accepted time window comes in options.window).
 *
 * Guarantees:
 * - Whole-request problems (malformed protobuf or JSON, nesting deeper than maxAnyValueDepth,
 *   a `__proto__` / `constructor` JSON key) throw a TracehouseError with a 400 code; nothing else
 *   is ever thrown, whatever the input (a stack overflow becomes TH_ERR_DECODE_TOO_DEEP, and a bug
 *   TH_ERR_INTERNAL).
 * - A span with a bad id or timestamp is not stored; it is counted in `rejected` under one reason.
 * - Every stored string is valid for PostgreSQL text / jsonb; every change made on the way
 *   (replacement characters, truncation, dropped attributes / events / links) is counted in `sanitized`.
 * - The returned rows are new objects owned by the caller; they do not reference `body`.
 */
import { TracehouseError } from '../errors.js';
import { DecodeContext } from './decode-context.js';
import { walkJsonRequest } from './otlp-json.js';
import { walkProtobufRequest } from './otlp-protobuf.js';
import type { DecodedRequest, DecodeOptions, WireFormat } from './types.js';

export type {
  DecodedRequest,
  DecodeLimits,
  DecodeOptions,
  RejectReason,
  SanitizeKind,
  SpanRow,
  TimeWindow,
  WireFormat,
} from './types.js';
export { REJECT_REASONS, SANITIZE_KINDS } from './types.js';
export { AttributeSharing } from './attribute-sharing.js';

export function decodeExportRequest(body: Buffer, format: WireFormat, options: DecodeOptions): DecodedRequest {
  const ctx = new DecodeContext(options);
  try {
    if (format === 'protobuf') walkProtobufRequest(ctx, body);
    else walkJsonRequest(ctx, body);
  } catch (err) {
    throw toTracehouseError(err, format);
  }
  return {
    rows: ctx.rows,
    spanCount: ctx.spanCount,
    rejected: ctx.rejectedCounts(),
    rejectMessage: ctx.rejectMessage(),
    sanitized: ctx.sanitizedCounts(),
  };
}

function toTracehouseError(err: unknown, format: WireFormat): TracehouseError {
  if (err instanceof TracehouseError) return err;
  if (err instanceof RangeError && /call stack/i.test(err.message)) {
    return new TracehouseError('TH_ERR_DECODE_TOO_DEEP', 'the request is nested too deeply to decode', { cause: err });
  }
  return new TracehouseError('TH_ERR_INTERNAL', `unexpected error decoding an OTLP ${format} request`, { cause: err });
}
