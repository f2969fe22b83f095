/**
 * Decodes an OTLP/JSON ExportTraceServiceRequest: JSON.parse (V8's parser is not recursive, so
 * deep input cannot overflow the stack), the forbidden-key check, then a walk over the known
 * fields that fills SpanDrafts. Unknown fields are ignored; both lowerCamelCase and snake_case
 * field names are accepted; trace and span ids are hex; int64 fields may be strings or numbers.
 */
import { isUtf8 } from 'node:buffer';
import { TracehouseError } from '../errors.js';
import { writeEventJson, writeLinkJson } from './any-value.js';
import type { DecodeContext } from './decode-context.js';
import { readAttributesJson } from './json-attributes.js';
import type { JsonObject } from './json-fields.js';
import {
  JsonShapeError,
  decodeHexId,
  isJsonObject,
  normalizeHex,
  prependPath,
  readArray,
  readEnum,
  readFixed64,
  readObject,
  readRawString,
  readUint32,
} from './json-fields.js';
import { assertNoForbiddenKeys } from './json-forbidden-keys.js';
import { sanitizeJsonString } from './sanitize.js';
import { acceptSpan, addDropped, normalizeSpanKind, normalizeStatusCode, resetSpanDraft } from './span-rows.js';

const SPAN_KIND_NAMES: Record<string, number> = {
  SPAN_KIND_UNSPECIFIED: 0,
  SPAN_KIND_INTERNAL: 1,
  SPAN_KIND_SERVER: 2,
  SPAN_KIND_CLIENT: 3,
  SPAN_KIND_PRODUCER: 4,
  SPAN_KIND_CONSUMER: 5,
};
const STATUS_CODE_NAMES: Record<string, number> = { STATUS_CODE_UNSET: 0, STATUS_CODE_OK: 1, STATUS_CODE_ERROR: 2 };
const TRACE_ID_BYTES = 16;
const SPAN_ID_BYTES = 8;
const BYTE_ORDER_MARK = '\uFEFF';

/** Parses and walks a whole JSON body, adding rows and rejects to ctx. */
export function walkJsonRequest(ctx: DecodeContext, body: Buffer): void {
  ctx.bodyHadInvalidUtf8 = !isUtf8(body);
  let text = body.toString('utf8');
  if (text.startsWith(BYTE_ORDER_MARK)) text = text.slice(1);
  if (isBlank(text)) return;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new TracehouseError('TH_ERR_DECODE_BAD_JSON', `invalid JSON: ${(err as Error).message}`);
  }
  assertNoForbiddenKeys(text, parsed);
  try {
    if (!isJsonObject(parsed)) throw new JsonShapeError('', 'expected an ExportTraceServiceRequest object');
    walkRequest(ctx, parsed);
  } catch (err) {
    if (!(err instanceof JsonShapeError)) throw err;
    throw new TracehouseError('TH_ERR_DECODE_BAD_JSON', `${formatPath(err.segments)}: ${err.message}`);
  }
}

/** True for '' and JSON whitespace only (an empty request is a success with zero spans). */
function isBlank(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) return false;
  }
  return true;
}

function formatPath(segments: string[]): string {
  let out = '';
  for (const segment of segments) {
    if (segment === '') continue;
    out += out === '' || segment.startsWith('[') ? segment : '.' + segment;
  }
  return out === '' ? 'request' : out;
}

function walkRequest(ctx: DecodeContext, request: JsonObject): void {
  const resourceSpans = readArray(request, 'resourceSpans', 'resource_spans');
  for (let i = 0; i < resourceSpans.length; i++) {
    try {
      walkResourceSpans(ctx, resourceSpans[i]);
    } catch (err) {
      throw prependPath(err, `resourceSpans[${i}]`);
    }
  }
}

function walkResourceSpans(ctx: DecodeContext, rs: unknown): void {
  if (!isJsonObject(rs)) throw new JsonShapeError('', 'expected a ResourceSpans object');
  ctx.resetResource();
  const resource = readObject(rs, 'resource', 'resource');
  if (resource !== undefined) {
    const list = ctx.resourceAttributeList;
    let serviceName: string | null;
    try {
      serviceName = readAttributesJson(ctx, resource, 'attributes', list, '"service.name"');
    } catch (err) {
      throw prependPath(err, 'resource');
    }
    ctx.countDroppedAttributes(list.dropped);
    ctx.serviceName = serviceName ?? '';
    ctx.resourceAttributes = list.toJson();
  }
  const scopeSpans = readArray(rs, 'scopeSpans', 'scope_spans');
  for (let i = 0; i < scopeSpans.length; i++) {
    try {
      walkScopeSpans(ctx, scopeSpans[i]);
    } catch (err) {
      throw prependPath(err, `scopeSpans[${i}]`);
    }
  }
}

function walkScopeSpans(ctx: DecodeContext, ss: unknown): void {
  if (!isJsonObject(ss)) throw new JsonShapeError('', 'expected a ScopeSpans object');
  ctx.resetScope();
  const scope = readObject(ss, 'scope', 'scope');
  if (scope !== undefined) {
    try {
      ctx.scopeName = sanitizeJsonString(ctx, readRawString(scope, 'name', 'name'));
      ctx.scopeVersion = sanitizeJsonString(ctx, readRawString(scope, 'version', 'version'));
      const list = ctx.scopeAttributeList;
      readAttributesJson(ctx, scope, 'attributes', list);
      ctx.countDroppedAttributes(list.dropped);
      ctx.scopeAttributes = list.toJson();
    } catch (err) {
      throw prependPath(err, 'scope');
    }
  }
  ctx.updateSharedSize();
  const spans = readArray(ss, 'spans', 'spans');
  for (let i = 0; i < spans.length; i++) {
    try {
      walkSpan(ctx, spans[i]);
    } catch (err) {
      throw prependPath(err, `spans[${i}]`);
    }
  }
}

function walkSpan(ctx: DecodeContext, span: unknown): void {
  if (!isJsonObject(span)) throw new JsonShapeError('', 'expected a Span object');
  const d = ctx.draft;
  resetSpanDraft(d);
  d.traceId = decodeHexId(readRawString(span, 'traceId', 'trace_id'), TRACE_ID_BYTES);
  d.spanId = decodeHexId(readRawString(span, 'spanId', 'span_id'), SPAN_ID_BYTES);
  const parentHex = readRawString(span, 'parentSpanId', 'parent_span_id');
  if (parentHex !== '') {
    d.parentSpanId = decodeHexId(parentHex, SPAN_ID_BYTES);
    d.parentSpanIdInvalid = d.parentSpanId === null;
  }
  d.traceState = sanitizeJsonString(ctx, readRawString(span, 'traceState', 'trace_state'));
  d.flags = readUint32(span, 'flags', 'flags');
  d.name = sanitizeJsonString(ctx, readRawString(span, 'name', 'name'));
  d.kind = normalizeSpanKind(readEnum(span, 'kind', 'kind', SPAN_KIND_NAMES));
  d.startTimeUnixNano = readFixed64(span, 'startTimeUnixNano', 'start_time_unix_nano');
  d.endTimeUnixNano = readFixed64(span, 'endTimeUnixNano', 'end_time_unix_nano');
  const attributes = ctx.spanAttributes;
  readAttributesJson(ctx, span, 'attributes', attributes);
  ctx.writeSpanAttributes();
  ctx.countDroppedAttributes(attributes.dropped);
  const receivedDropped = readUint32(span, 'droppedAttributesCount', 'dropped_attributes_count');
  d.droppedAttributesCount = addDropped(receivedDropped, attributes.dropped);

  const { maxEventsPerSpan, maxLinksPerSpan } = ctx.limits;
  const events = readArray(span, 'events', 'events');
  const eventsKept = Math.min(events.length, maxEventsPerSpan);
  if (eventsKept > 0) d.events = writeList(ctx, events, eventsKept, 'events', walkEvent);
  if (events.length > eventsKept) ctx.countSanitized('events_dropped', events.length - eventsKept);
  const droppedEvents = readUint32(span, 'droppedEventsCount', 'dropped_events_count');
  d.droppedEventsCount = addDropped(droppedEvents, events.length - eventsKept);

  const links = readArray(span, 'links', 'links');
  const linksKept = Math.min(links.length, maxLinksPerSpan);
  if (linksKept > 0) d.links = writeList(ctx, links, linksKept, 'links', walkLink);
  if (links.length > linksKept) ctx.countSanitized('links_dropped', links.length - linksKept);
  const droppedLinks = readUint32(span, 'droppedLinksCount', 'dropped_links_count');
  d.droppedLinksCount = addDropped(droppedLinks, links.length - linksKept);

  const status = readObject(span, 'status', 'status');
  if (status !== undefined) {
    try {
      d.statusMessage = sanitizeJsonString(ctx, readRawString(status, 'message', 'message'));
      d.statusCode = normalizeStatusCode(readEnum(status, 'code', 'code', STATUS_CODE_NAMES));
    } catch (err) {
      throw prependPath(err, 'status');
    }
  }
  acceptSpan(ctx, d);
}

/** Writes the first `kept` items of an events / links array as one JSON array text. */
function writeList(
  ctx: DecodeContext,
  items: readonly unknown[],
  kept: number,
  name: string,
  walkItem: (ctx: DecodeContext, item: unknown) => string,
): string {
  let out = '[';
  for (let i = 0; i < kept; i++) {
    try {
      out += (i === 0 ? '' : ',') + walkItem(ctx, items[i]);
    } catch (err) {
      throw prependPath(err, `${name}[${i}]`);
    }
  }
  return out + ']';
}

function walkEvent(ctx: DecodeContext, event: unknown): string {
  if (!isJsonObject(event)) throw new JsonShapeError('', 'expected an Event object');
  const time = readFixed64(event, 'timeUnixNano', 'time_unix_nano');
  const name = sanitizeJsonString(ctx, readRawString(event, 'name', 'name'));
  const list = ctx.eventAttributes;
  readAttributesJson(ctx, event, 'attributes', list);
  ctx.countDroppedAttributes(list.dropped);
  const dropped = addDropped(readUint32(event, 'droppedAttributesCount', 'dropped_attributes_count'), list.dropped);
  return writeEventJson(time, name, list.toJson(), dropped);
}

function walkLink(ctx: DecodeContext, link: unknown): string {
  if (!isJsonObject(link)) throw new JsonShapeError('', 'expected a Link object');
  const traceId = normalizeHex(readRawString(link, 'traceId', 'trace_id'));
  const spanId = normalizeHex(readRawString(link, 'spanId', 'span_id'));
  const traceState = sanitizeJsonString(ctx, readRawString(link, 'traceState', 'trace_state'));
  const flags = readUint32(link, 'flags', 'flags');
  const list = ctx.linkAttributes;
  readAttributesJson(ctx, link, 'attributes', list);
  ctx.countDroppedAttributes(list.dropped);
  const dropped = addDropped(readUint32(link, 'droppedAttributesCount', 'dropped_attributes_count'), list.dropped);
  return writeLinkJson(traceId, spanId, traceState, flags, list.toJson(), dropped);
}
