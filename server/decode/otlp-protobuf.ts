/**
 * A hand-written walker for a protobuf opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest.
 * It reads the wire format in one pass per message (two for ResourceSpans and ScopeSpans, whose
 * resource / scope may follow their spans) and fills SpanDrafts without building message objects;
 * reference/performance.md §2.2 measured this ~1.75× faster than protobufjs. Unknown fields are skipped.
 */
import type { DecodeContext } from './decode-context.js';
import { readAttributeField, readString } from './protobuf-attributes.js';
import { ProtobufReader, WireType, fieldTag as tag } from './protobuf-reader.js';
import { readSpan } from './protobuf-span.js';

const { LEN } = WireType;

// ExportTraceServiceRequest { 1 resource_spans repeated ResourceSpans }
const REQUEST_RESOURCE_SPANS = tag(1, LEN);
// ResourceSpans { 1 resource Resource; 2 scope_spans repeated ScopeSpans; 3 schema_url string (unused) }
const RESOURCE_SPANS_RESOURCE = tag(1, LEN);
const RESOURCE_SPANS_SCOPE_SPANS = tag(2, LEN);
// Resource { 1 attributes repeated KeyValue; 2 dropped_attributes_count uint32 (not stored) }
const RESOURCE_ATTRIBUTES = tag(1, LEN);
// ScopeSpans { 1 scope InstrumentationScope; 2 spans repeated Span; 3 schema_url string (unused) }
const SCOPE_SPANS_SCOPE = tag(1, LEN);
const SCOPE_SPANS_SPANS = tag(2, LEN);
// InstrumentationScope { 1 name; 2 version; 3 attributes repeated KeyValue; 4 dropped_attributes_count (not stored) }
const SCOPE_NAME = tag(1, LEN);
const SCOPE_VERSION = tag(2, LEN);
const SCOPE_ATTRIBUTES = tag(3, LEN);
const SERVICE_NAME_KEY = '"service.name"'; // as JSON text, like AttributeList keys

/** Walks a whole request body, adding rows and rejects to ctx. Throws TracehouseError when malformed. */
export function walkProtobufRequest(ctx: DecodeContext, body: Buffer): void {
  const r = new ProtobufReader(body);
  const end = body.length;
  while (r.pos < end) {
    const t = r.readTag();
    if (t === REQUEST_RESOURCE_SPANS) readResourceSpans(ctx, r, r.readDelimitedEnd(end));
    else r.skipField(t, end);
  }
}

function readResourceSpans(ctx: DecodeContext, r: ProtobufReader, end: number): void {
  const start = r.pos;
  let resourceStart = -1;
  let resourceEnd = -1;
  while (r.pos < end) {
    const t = r.readTag();
    if (t === RESOURCE_SPANS_RESOURCE) {
      resourceEnd = r.readDelimitedEnd(end);
      resourceStart = r.pos;
      r.pos = resourceEnd;
    } else {
      r.skipField(t, end);
    }
  }
  r.expectEnd(end);
  ctx.resetResource();
  if (resourceStart >= 0) {
    r.pos = resourceStart;
    readResource(ctx, r, resourceEnd);
  }
  r.pos = start;
  while (r.pos < end) {
    const t = r.readTag();
    if (t === RESOURCE_SPANS_SCOPE_SPANS) readScopeSpans(ctx, r, r.readDelimitedEnd(end));
    else r.skipField(t, end);
  }
}

function readResource(ctx: DecodeContext, r: ProtobufReader, end: number): void {
  const list = ctx.resourceAttributeList;
  list.reset();
  let serviceNameJson: string | null = null;
  while (r.pos < end) {
    const t = r.readTag();
    if (t === RESOURCE_ATTRIBUTES) {
      const kept = list.length;
      readAttributeField(ctx, r, end, list);
      if (list.length > kept && list.lastKey() === SERVICE_NAME_KEY) serviceNameJson = ctx.lastStringJson;
    } else {
      r.skipField(t, end);
    }
  }
  r.expectEnd(end);
  ctx.countDroppedAttributes(list.dropped);
  ctx.serviceName = serviceNameJson === null ? '' : (JSON.parse(serviceNameJson) as string);
  ctx.resourceAttributes = list.toJson();
}

function readScopeSpans(ctx: DecodeContext, r: ProtobufReader, end: number): void {
  const start = r.pos;
  let scopeStart = -1;
  let scopeEnd = -1;
  while (r.pos < end) {
    const t = r.readTag();
    if (t === SCOPE_SPANS_SCOPE) {
      scopeEnd = r.readDelimitedEnd(end);
      scopeStart = r.pos;
      r.pos = scopeEnd;
    } else {
      r.skipField(t, end);
    }
  }
  r.expectEnd(end);
  ctx.resetScope();
  if (scopeStart >= 0) {
    r.pos = scopeStart;
    readScope(ctx, r, scopeEnd);
  }
  ctx.updateSharedSize();
  r.pos = start;
  while (r.pos < end) {
    const t = r.readTag();
    if (t === SCOPE_SPANS_SPANS) readSpan(ctx, r, r.readDelimitedEnd(end));
    else r.skipField(t, end);
  }
}

function readScope(ctx: DecodeContext, r: ProtobufReader, end: number): void {
  const list = ctx.scopeAttributeList;
  list.reset();
  while (r.pos < end) {
    const t = r.readTag();
    if (t === SCOPE_NAME) ctx.scopeName = readString(ctx, r, end);
    else if (t === SCOPE_VERSION) ctx.scopeVersion = readString(ctx, r, end);
    else if (t === SCOPE_ATTRIBUTES) readAttributeField(ctx, r, end, list);
    else r.skipField(t, end);
  }
  r.expectEnd(end);
  ctx.countDroppedAttributes(list.dropped);
  ctx.scopeAttributes = list.toJson();
}
