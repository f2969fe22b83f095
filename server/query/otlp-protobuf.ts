/**
 * OTLP TracesData in protobuf, field numbers from opentelemetry-proto (trace/v1/trace.proto,
 * common/v1/common.proto, resource/v1/resource.proto). Tempo's `Trace` message (/api/traces/{id})
 * is wire-identical to TracesData; `TraceByIDResponse` (/api/v2/traces/{id}) wraps it in field 1.
 */
import type { AnyValue, KeyValue } from './any-value.js';
import { ProtoWriter } from './proto-writer.js';
import type { TraceResource, TraceSpan } from './trace-model.js';

function writeAnyValue(w: ProtoWriter, field: number, value: AnyValue): void {
  w.begin(field);
  switch (value.type) {
    case 'string':
      w.stringAlways(1, value.value);
      break;
    case 'bool':
      w.boolAlways(2, value.value);
      break;
    case 'int':
      w.int64Always(3, BigInt(value.value));
      break;
    case 'double':
      w.doubleAlways(4, value.value);
      break;
    case 'array':
      w.begin(5);
      for (const item of value.values) writeAnyValue(w, 1, item);
      w.end();
      break;
    case 'kvlist':
      w.begin(6);
      writeKeyValues(w, 1, value.values);
      w.end();
      break;
    case 'empty':
      break;
  }
  w.end();
}

function writeKeyValues(w: ProtoWriter, field: number, attributes: readonly KeyValue[]): void {
  for (const kv of attributes) {
    w.begin(field);
    w.string(1, kv.key);
    writeAnyValue(w, 2, kv.value);
    w.end();
  }
}

function hexBytes(hex: string): Buffer {
  return Buffer.from(hex, 'hex');
}

function writeSpan(w: ProtoWriter, span: TraceSpan): void {
  const s = span.stored;
  w.begin(2); // ScopeSpans.spans
  w.bytes(1, s.traceId);
  w.bytes(2, s.spanId);
  w.string(3, s.traceState);
  if (s.parentSpanId !== null) w.bytes(4, s.parentSpanId);
  w.string(5, s.name);
  w.int32(6, s.kind);
  w.fixed64(7, s.startTimeUnixNano);
  w.fixed64(8, s.endTimeUnixNano);
  writeKeyValues(w, 9, span.attributes);
  w.uint32(10, s.droppedAttributesCount);
  for (const event of span.events) {
    w.begin(11);
    w.fixed64(1, event.timeUnixNano);
    w.string(2, event.name);
    writeKeyValues(w, 3, event.attributes);
    w.uint32(4, event.droppedAttributesCount);
    w.end();
  }
  w.uint32(12, s.droppedEventsCount);
  for (const link of span.links) {
    w.begin(13);
    w.bytes(1, hexBytes(link.traceId));
    w.bytes(2, hexBytes(link.spanId));
    w.string(3, link.traceState);
    writeKeyValues(w, 4, link.attributes);
    w.uint32(5, link.droppedAttributesCount);
    w.fixed32(6, link.flags);
    w.end();
  }
  w.uint32(14, s.droppedLinksCount);
  if (s.statusCode !== 0 || s.statusMessage !== '') {
    w.begin(15);
    w.string(2, s.statusMessage);
    w.int32(3, s.statusCode);
    w.end();
  }
  w.fixed32(16, s.flags);
  w.end();
}

/** The ResourceSpans of `resources`, each in field `field` of the message being written. */
function writeResourceSpans(w: ProtoWriter, field: number, resources: readonly TraceResource[]): void {
  for (const resource of resources) {
    w.begin(field);
    w.begin(1); // ResourceSpans.resource
    writeKeyValues(w, 1, resource.attributes);
    w.end();
    for (const scope of resource.scopes) {
      w.begin(2); // ResourceSpans.scope_spans
      w.begin(1); // ScopeSpans.scope
      w.string(1, scope.name);
      w.string(2, scope.version);
      writeKeyValues(w, 3, scope.attributes);
      w.end();
      for (const span of scope.spans) writeSpan(w, span);
      w.end();
    }
    w.end();
  }
}

/** TracesData (= Tempo `Trace`): `repeated ResourceSpans resource_spans = 1`. */
export function encodeTracesData(resources: readonly TraceResource[]): Buffer {
  const w = new ProtoWriter();
  writeResourceSpans(w, 1, resources);
  return w.finish();
}

/** Tempo `TraceByIDResponse { Trace trace = 1; … PartialStatus status = 3 (COMPLETE = 0) }`. */
export function encodeTraceByIdResponse(resources: readonly TraceResource[]): Buffer {
  const w = new ProtoWriter();
  w.begin(1);
  writeResourceSpans(w, 1, resources);
  w.end();
  return w.finish();
}
