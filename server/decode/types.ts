/**
 * The seam between decode and the rest of the pipeline. decode is pure: bytes in, rows and
 * per-span rejects out; it does no I/O and reads no clock (the caller passes the time window).
 */
import type { AttributeSharing } from './attribute-sharing.js';

/** Why one span was not stored although its request was well formed. A closed list. */
export type RejectReason =
  | 'invalid_trace_id'
  | 'invalid_span_id'
  | 'invalid_parent_span_id'
  | 'start_time_too_old'
  | 'start_time_too_new'
  | 'end_before_start'
  | 'end_time_too_new'; // past 2^63 - 1 ns (year 2262): PostgreSQL's bigint cannot hold it

export const REJECT_REASONS: readonly RejectReason[] = [
  'invalid_trace_id',
  'invalid_span_id',
  'invalid_parent_span_id',
  'start_time_too_old',
  'start_time_too_new',
  'end_before_start',
  'end_time_too_new',
];

/** What decode changed in a span that it still stored. Counted, never silent. */
export type SanitizeKind =
  | 'invalid_utf8'
  | 'nul_byte'
  | 'lone_surrogate'
  | 'value_truncated'
  | 'attributes_dropped'
  | 'events_dropped'
  | 'links_dropped';

export const SANITIZE_KINDS: readonly SanitizeKind[] = [
  'invalid_utf8',
  'nul_byte',
  'lone_surrogate',
  'value_truncated',
  'attributes_dropped',
  'events_dropped',
  'links_dropped',
];

/**
 * One span, ready for storage. Strings are sanitized (valid UTF-8, no NUL) and every JSON field is
 * already serialized, valid for PostgreSQL jsonb. The writer owns the array it is given.
 */
export interface SpanRow {
  traceId: Buffer; // 16 bytes, not all zero
  spanId: Buffer; // 8 bytes, not all zero
  parentSpanId: Buffer | null; // 8 bytes, or null for a root span
  traceState: string;
  flags: number;
  name: string;
  kind: number; // OTLP SpanKind 0..5
  serviceName: string; // resource attribute service.name, '' when absent
  startTimeUnixNano: bigint;
  endTimeUnixNano: bigint;
  statusCode: number; // OTLP StatusCode 0 unset, 1 ok, 2 error
  statusMessage: string;
  /** JSON object text: the span's attributes that are not in sharedAttributes. */
  attributes: string;
  /**
   * JSON object text: the span's attributes stored once per distinct set (migrations/000006), '{}'
   * when none. Never shares a key with `attributes`; the span's attributes are both together.
   */
  sharedAttributes: string;
  resourceAttributes: string; // JSON object text
  scopeName: string;
  scopeVersion: string;
  scopeAttributes: string; // JSON object text
  events: string; // JSON array text
  links: string; // JSON array text
  droppedAttributesCount: number;
  droppedEventsCount: number;
  droppedLinksCount: number;
  /**
   * How many spans this one stands for (>= 1): the SDK's adjusted count from tracestate `ot=th:…`
   * (decode), multiplied by tracehouse's own sampler's (receive/sampler.ts). 1 when nothing sampled.
   */
  samplingWeight: number;
  /** Approximate bytes this row holds in memory, used by the queue's byte limit. */
  sizeBytes: number;
}

export interface DecodeLimits {
  maxAnyValueDepth: number; // deeper nesting → TH_ERR_DECODE_TOO_DEEP
  maxAttributeValueBytes: number; // longer strings/bytes are truncated
  maxAttributesPerSpan: number; // also applies to resource, scope, event and link attributes
  maxEventsPerSpan: number;
  maxLinksPerSpan: number;
}

/** The accepted window for span start times, in unix nanoseconds, inclusive. */
export interface TimeWindow {
  minStartUnixNano: bigint;
  maxStartUnixNano: bigint;
}

export interface DecodeOptions {
  limits: DecodeLimits;
  window: TimeWindow;
  /** Splits span attributes into shared and own pairs; without it every pair is the row's own. */
  sharing?: AttributeSharing;
}

export interface DecodedRequest {
  rows: SpanRow[];
  /** Total spans in the request: rows.length + rejected spans. */
  spanCount: number;
  rejected: Partial<Record<RejectReason, number>>;
  /** A short human message naming the reject reasons, '' when none. */
  rejectMessage: string;
  sanitized: Partial<Record<SanitizeKind, number>>;
}

export type WireFormat = 'protobuf' | 'json';
