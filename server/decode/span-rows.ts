/**
 * Validation and row building shared by the protobuf and JSON decoders. A decoder fills the one
 * SpanDraft of its request (reset per span), then calls acceptSpan, which either stores a SpanRow
 * or counts the span under exactly one RejectReason (the first that applies, in the order of
 * REJECT_REASONS).
 */
import type { DecodeContext } from './decode-context.js';
import { sdkSamplingWeight } from './ot-tracestate.js';
import type { SpanRow } from './types.js';

/** A span as decoded, before validation. Ids are null when missing or malformed. */
export interface SpanDraft {
  traceId: Buffer | null;
  spanId: Buffer | null;
  /** null for a root span (absent or empty parent); see parentSpanIdInvalid. */
  parentSpanId: Buffer | null;
  parentSpanIdInvalid: boolean;
  traceState: string;
  flags: number;
  name: string;
  kind: number;
  startTimeUnixNano: bigint;
  endTimeUnixNano: bigint;
  statusCode: number;
  statusMessage: string;
  attributes: string;
  sharedAttributes: string;
  droppedAttributesCount: number;
  events: string;
  droppedEventsCount: number;
  links: string;
  droppedLinksCount: number;
}

export function createSpanDraft(): SpanDraft {
  return {
    traceId: null,
    spanId: null,
    parentSpanId: null,
    parentSpanIdInvalid: false,
    traceState: '',
    flags: 0,
    name: '',
    kind: 0,
    startTimeUnixNano: 0n,
    endTimeUnixNano: 0n,
    statusCode: 0,
    statusMessage: '',
    attributes: '{}',
    sharedAttributes: '{}',
    droppedAttributesCount: 0,
    events: '[]',
    droppedEventsCount: 0,
    links: '[]',
    droppedLinksCount: 0,
  };
}

export function resetSpanDraft(draft: SpanDraft): void {
  draft.traceId = null;
  draft.spanId = null;
  draft.parentSpanId = null;
  draft.parentSpanIdInvalid = false;
  draft.traceState = '';
  draft.flags = 0;
  draft.name = '';
  draft.kind = 0;
  draft.startTimeUnixNano = 0n;
  draft.endTimeUnixNano = 0n;
  draft.statusCode = 0;
  draft.statusMessage = '';
  draft.attributes = '{}';
  draft.sharedAttributes = '{}';
  draft.droppedAttributesCount = 0;
  draft.events = '[]';
  draft.droppedEventsCount = 0;
  draft.links = '[]';
  draft.droppedLinksCount = 0;
}

const MAX_SPAN_KIND = 5; // SPAN_KIND_CONSUMER
const MAX_STATUS_CODE = 2; // STATUS_CODE_ERROR
/** Dropped counts are capped so they fit a PostgreSQL integer column. */
const MAX_DROPPED_COUNT = 2147483647;
/** Fixed per-row overhead in sizeBytes: ids, numbers, object headers. */
const ROW_OVERHEAD_BYTES = 100;

/** OTLP enums are open: an unknown SpanKind is stored as 0 (unspecified). */
export function normalizeSpanKind(kind: number): number {
  return kind >= 0 && kind <= MAX_SPAN_KIND ? kind : 0;
}

/** An unknown StatusCode is stored as 0 (unset). */
export function normalizeStatusCode(code: number): number {
  return code >= 0 && code <= MAX_STATUS_CODE ? code : 0;
}

/** Adds dropped items to a received dropped count, capped at 2^31 - 1. */
export function addDropped(received: number, dropped: number): number {
  const total = received + dropped;
  return total > MAX_DROPPED_COUNT ? MAX_DROPPED_COUNT : total;
}

/** True when every byte of the id is zero (an invalid OTLP id). */
export function isAllZero(id: Uint8Array): boolean {
  for (let i = 0; i < id.length; i++) if (id[i] !== 0) return false;
  return true;
}

/**
 * A span's end must fit a PostgreSQL bigint (readers compute it as start_time_unix_nano + duration_ns):
 * a larger end (a fixed64 can reach 2^64 - 1) made the COPY of the whole batch fail (found by the
 * fault suite's WebSocket fuzzer).
 */
const MAX_STORABLE_NS = 2n ** 63n - 1n;

/**
 * V8 keeps a string built with `+` as a tree of ConsString pieces until something reads it flat.
 * A row's JSON texts wait in the batch queue, for seconds under overload, so each tree outlives
 * young collections and the scavenger copies every piece of it (~40 per span for 10 attributes).
 * Reading one character flattens the tree in place into one sequential string: a copy the COPY
 * encoder would otherwise make when it writes the text. Measured in the overload fault scenario:
 * scavenge time 12.0 s → 5.8 s, server CPU 55.9 s → 45.4 s over the same minute.
 */
// eslint-disable-next-line @typescript-eslint/no-unused-vars -- written only, so the read is never optimized away
let flattenProbe = 0;
function flattened(text: string): string {
  flattenProbe ^= text.charCodeAt(0);
  return text;
}

/** Validates the draft and stores a row, or counts the span as rejected. */
export function acceptSpan(ctx: DecodeContext, d: SpanDraft): void {
  ctx.spanCount++;
  const traceId = d.traceId;
  const spanId = d.spanId;
  if (traceId === null) return ctx.countRejected('invalid_trace_id');
  if (spanId === null) return ctx.countRejected('invalid_span_id');
  if (d.parentSpanIdInvalid) return ctx.countRejected('invalid_parent_span_id');
  const start = d.startTimeUnixNano;
  const end = d.endTimeUnixNano;
  if (start < ctx.window.minStartUnixNano) return ctx.countRejected('start_time_too_old');
  if (start > ctx.window.maxStartUnixNano) return ctx.countRejected('start_time_too_new');
  if (end < start) return ctx.countRejected('end_before_start');
  if (end > MAX_STORABLE_NS) return ctx.countRejected('end_time_too_new');
  const row: SpanRow = {
    traceId,
    spanId,
    parentSpanId: d.parentSpanId,
    traceState: d.traceState,
    // fixed32 reinterpreted as int32: all defined bits (0-9) unchanged, and it fits a PostgreSQL integer.
    flags: d.flags | 0,
    name: d.name,
    kind: d.kind,
    serviceName: ctx.serviceName,
    startTimeUnixNano: start,
    endTimeUnixNano: end,
    statusCode: d.statusCode,
    statusMessage: d.statusMessage,
    attributes: flattened(d.attributes),
    sharedAttributes: d.sharedAttributes,
    resourceAttributes: ctx.resourceAttributes,
    scopeName: ctx.scopeName,
    scopeVersion: ctx.scopeVersion,
    scopeAttributes: ctx.scopeAttributes,
    events: flattened(d.events),
    links: flattened(d.links),
    droppedAttributesCount: d.droppedAttributesCount,
    droppedEventsCount: d.droppedEventsCount,
    droppedLinksCount: d.droppedLinksCount,
    samplingWeight: d.traceState === '' ? 1 : sdkSamplingWeight(d.traceState),
    sizeBytes:
      ROW_OVERHEAD_BYTES +
      ctx.sharedSizeBytes +
      d.name.length +
      d.traceState.length +
      d.statusMessage.length +
      d.attributes.length +
      d.sharedAttributes.length +
      d.events.length +
      d.links.length,
  };
  ctx.rows.push(row);
}
