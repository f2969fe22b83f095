/**
 * Protobuf readers for opentelemetry.proto.trace.v1 Span, Span.Event, Span.Link and Status. A span
 * fills the request's SpanDraft and ends in acceptSpan; events and links are written as JSON text,
 * the ones beyond maxEventsPerSpan / maxLinksPerSpan skipped undecoded and counted.
 */
import { writeEventJson, writeLinkJson } from './any-value.js';
import type { DecodeContext } from './decode-context.js';
import { readAttributeField, readString } from './protobuf-attributes.js';
import type { ProtobufReader } from './protobuf-reader.js';
import { WireType, fieldTag as tag } from './protobuf-reader.js';
import type { SpanDraft } from './span-rows.js';
import { acceptSpan, addDropped, normalizeSpanKind, normalizeStatusCode, resetSpanDraft } from './span-rows.js';

const { LEN, VARINT, I64, I32 } = WireType;

// Span { 1 trace_id bytes; 2 span_id bytes; 3 trace_state string; 4 parent_span_id bytes; 5 name string;
//   6 kind enum; 7 start_time_unix_nano fixed64; 8 end_time_unix_nano fixed64; 9 attributes repeated KeyValue;
//   10 dropped_attributes_count uint32; 11 events repeated Event; 12 dropped_events_count uint32;
//   13 links repeated Link; 14 dropped_links_count uint32; 15 status Status; 16 flags fixed32 }
const SPAN_TRACE_ID = tag(1, LEN);
const SPAN_SPAN_ID = tag(2, LEN);
const SPAN_TRACE_STATE = tag(3, LEN);
const SPAN_PARENT_SPAN_ID = tag(4, LEN);
const SPAN_NAME = tag(5, LEN);
const SPAN_KIND = tag(6, VARINT);
const SPAN_START_TIME = tag(7, I64);
const SPAN_END_TIME = tag(8, I64);
const SPAN_ATTRIBUTES = tag(9, LEN);
const SPAN_DROPPED_ATTRIBUTES = tag(10, VARINT);
const SPAN_EVENTS = tag(11, LEN);
const SPAN_DROPPED_EVENTS = tag(12, VARINT);
const SPAN_LINKS = tag(13, LEN);
const SPAN_DROPPED_LINKS = tag(14, VARINT);
const SPAN_STATUS = tag(15, LEN);
const SPAN_FLAGS = tag(16, I32);
// Span.Event { 1 time_unix_nano fixed64; 2 name string; 3 attributes repeated KeyValue; 4 dropped_attributes_count uint32 }
const EVENT_TIME = tag(1, I64);
const EVENT_NAME = tag(2, LEN);
const EVENT_ATTRIBUTES = tag(3, LEN);
const EVENT_DROPPED_ATTRIBUTES = tag(4, VARINT);
// Span.Link { 1 trace_id bytes; 2 span_id bytes; 3 trace_state string; 4 attributes repeated KeyValue;
//   5 dropped_attributes_count uint32; 6 flags fixed32 }
const LINK_TRACE_ID = tag(1, LEN);
const LINK_SPAN_ID = tag(2, LEN);
const LINK_TRACE_STATE = tag(3, LEN);
const LINK_ATTRIBUTES = tag(4, LEN);
const LINK_DROPPED_ATTRIBUTES = tag(5, VARINT);
const LINK_FLAGS = tag(6, I32);
// Status { 1 reserved (deprecated code); 2 message string; 3 code enum }
const STATUS_MESSAGE = tag(2, LEN);
const STATUS_CODE = tag(3, VARINT);

const TRACE_ID_BYTES = 16;
const SPAN_ID_BYTES = 8;

/** Reads a Span message ending at `end` and stores it as a row or a reject. */
export function readSpan(ctx: DecodeContext, r: ProtobufReader, end: number): void {
  const d = ctx.draft;
  resetSpanDraft(d);
  const attributes = ctx.spanAttributes;
  attributes.reset();
  const { maxEventsPerSpan, maxLinksPerSpan } = ctx.limits;
  let events = '';
  let eventsKept = 0;
  let eventsDropped = 0;
  let links = '';
  let linksKept = 0;
  let linksDropped = 0;
  while (r.pos < end) {
    const t = r.readTag();
    switch (t) {
      case SPAN_TRACE_ID:
        d.traceId = readId(r, end, TRACE_ID_BYTES);
        break;
      case SPAN_SPAN_ID:
        d.spanId = readId(r, end, SPAN_ID_BYTES);
        break;
      case SPAN_TRACE_STATE:
        d.traceState = readString(ctx, r, end);
        break;
      case SPAN_PARENT_SPAN_ID: {
        const idEnd = r.readDelimitedEnd(end);
        const isRoot = idEnd === r.pos;
        d.parentSpanId = isRoot ? null : copyId(r, idEnd, SPAN_ID_BYTES);
        d.parentSpanIdInvalid = !isRoot && d.parentSpanId === null;
        r.pos = idEnd;
        break;
      }
      case SPAN_NAME:
        d.name = readString(ctx, r, end);
        break;
      case SPAN_KIND:
        d.kind = normalizeSpanKind(r.readVarint32());
        break;
      case SPAN_START_TIME:
        d.startTimeUnixNano = r.readFixed64();
        break;
      case SPAN_END_TIME:
        d.endTimeUnixNano = r.readFixed64();
        break;
      case SPAN_ATTRIBUTES:
        readAttributeField(ctx, r, end, attributes);
        break;
      case SPAN_DROPPED_ATTRIBUTES:
        d.droppedAttributesCount = r.readVarint32();
        break;
      case SPAN_EVENTS: {
        const eventEnd = r.readDelimitedEnd(end);
        if (eventsKept < maxEventsPerSpan) {
          const event = readEvent(ctx, r, eventEnd);
          events = eventsKept++ === 0 ? '[' + event : events + ',' + event;
        } else {
          eventsDropped++;
          r.pos = eventEnd;
        }
        break;
      }
      case SPAN_DROPPED_EVENTS:
        d.droppedEventsCount = r.readVarint32();
        break;
      case SPAN_LINKS: {
        const linkEnd = r.readDelimitedEnd(end);
        if (linksKept < maxLinksPerSpan) {
          const link = readLink(ctx, r, linkEnd);
          links = linksKept++ === 0 ? '[' + link : links + ',' + link;
        } else {
          linksDropped++;
          r.pos = linkEnd;
        }
        break;
      }
      case SPAN_DROPPED_LINKS:
        d.droppedLinksCount = r.readVarint32();
        break;
      case SPAN_STATUS:
        readStatus(ctx, r, r.readDelimitedEnd(end), d);
        break;
      case SPAN_FLAGS:
        d.flags = r.readFixed32();
        break;
      default:
        r.skipField(t, end);
    }
  }
  r.expectEnd(end);
  ctx.writeSpanAttributes();
  ctx.countDroppedAttributes(attributes.dropped);
  d.droppedAttributesCount = addDropped(d.droppedAttributesCount, attributes.dropped);
  if (eventsKept > 0) d.events = events + ']';
  if (eventsDropped > 0) ctx.countSanitized('events_dropped', eventsDropped);
  d.droppedEventsCount = addDropped(d.droppedEventsCount, eventsDropped);
  if (linksKept > 0) d.links = links + ']';
  if (linksDropped > 0) ctx.countSanitized('links_dropped', linksDropped);
  d.droppedLinksCount = addDropped(d.droppedLinksCount, linksDropped);
  acceptSpan(ctx, d);
}

function readEvent(ctx: DecodeContext, r: ProtobufReader, end: number): string {
  const list = ctx.eventAttributes;
  list.reset();
  let time = 0n;
  let name = '';
  let dropped = 0;
  while (r.pos < end) {
    const t = r.readTag();
    if (t === EVENT_TIME) time = r.readFixed64();
    else if (t === EVENT_NAME) name = readString(ctx, r, end);
    else if (t === EVENT_ATTRIBUTES) readAttributeField(ctx, r, end, list);
    else if (t === EVENT_DROPPED_ATTRIBUTES) dropped = r.readVarint32();
    else r.skipField(t, end);
  }
  r.expectEnd(end);
  ctx.countDroppedAttributes(list.dropped);
  return writeEventJson(time, name, list.toJson(), addDropped(dropped, list.dropped));
}

function readLink(ctx: DecodeContext, r: ProtobufReader, end: number): string {
  const list = ctx.linkAttributes;
  list.reset();
  let traceIdHex = '';
  let spanIdHex = '';
  let traceState = '';
  let dropped = 0;
  let flags = 0;
  while (r.pos < end) {
    const t = r.readTag();
    if (t === LINK_TRACE_ID) traceIdHex = readHex(r, end);
    else if (t === LINK_SPAN_ID) spanIdHex = readHex(r, end);
    else if (t === LINK_TRACE_STATE) traceState = readString(ctx, r, end);
    else if (t === LINK_ATTRIBUTES) readAttributeField(ctx, r, end, list);
    else if (t === LINK_DROPPED_ATTRIBUTES) dropped = r.readVarint32();
    else if (t === LINK_FLAGS) flags = r.readFixed32();
    else r.skipField(t, end);
  }
  r.expectEnd(end);
  ctx.countDroppedAttributes(list.dropped);
  return writeLinkJson(traceIdHex, spanIdHex, traceState, flags, list.toJson(), addDropped(dropped, list.dropped));
}

function readStatus(ctx: DecodeContext, r: ProtobufReader, end: number, d: SpanDraft): void {
  while (r.pos < end) {
    const t = r.readTag();
    if (t === STATUS_MESSAGE) d.statusMessage = readString(ctx, r, end);
    else if (t === STATUS_CODE) d.statusCode = normalizeStatusCode(r.readVarint32());
    else r.skipField(t, end);
  }
  r.expectEnd(end);
}

function readHex(r: ProtobufReader, limit: number): string {
  const end = r.readDelimitedEnd(limit);
  const hex = r.buf.toString('hex', r.pos, end);
  r.pos = end;
  return hex;
}

/** Reads a bytes field holding an id; null unless it is exactly `length` bytes and not all zero. */
function readId(r: ProtobufReader, limit: number, length: number): Buffer | null {
  const end = r.readDelimitedEnd(limit);
  const id = copyId(r, end, length);
  r.pos = end;
  return id;
}

/** Copies the id at r.pos..end out of the body (rows must not pin the request buffer). */
function copyId(r: ProtobufReader, end: number, length: number): Buffer | null {
  const start = r.pos;
  if (end - start !== length) return null;
  const buf = r.buf;
  const id = Buffer.allocUnsafe(length);
  let any = 0;
  for (let i = 0; i < length; i++) {
    const b = buf[start + i];
    id[i] = b;
    any |= b;
  }
  return any === 0 ? null : id;
}
