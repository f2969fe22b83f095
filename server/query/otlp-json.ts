/**
 * OTLP/JSON (the protobuf JSON mapping of TracesData) for Jaeger api_v3 and Tempo's JSON trace
 * answers: lowerCamelCase field names, ids as lowercase hex, enums as numbers, 64-bit integers as
 * decimal strings, default values (0, "", empty lists) omitted.
 *
 * One deliberate exception, `eventTimeAsNumber`: Grafana's Jaeger v3 client decodes
 * `events[].timeUnixNano` into an int64 and fails on the string form, so v3 writes it as an exact
 * JSON number (the OTLP/JSON mapping accepts both forms when decoding).
 */
import type { AnyValue, KeyValue } from './any-value.js';
import type { TraceResource, TraceSpan } from './trace-model.js';

export interface OtlpJsonOptions {
  eventTimeAsNumber?: boolean;
}

export type OtlpJsonAnyValue = Record<string, unknown>;

export function toOtlpAnyValue(value: AnyValue): OtlpJsonAnyValue {
  switch (value.type) {
    case 'string':
      return { stringValue: value.value };
    case 'bool':
      return { boolValue: value.value };
    case 'int':
      return { intValue: value.value };
    case 'double':
      return { doubleValue: value.value };
    case 'array':
      return { arrayValue: { values: value.values.map(toOtlpAnyValue) } };
    case 'kvlist':
      return { kvlistValue: { values: toOtlpKeyValues(value.values) } };
    case 'empty':
      return {};
  }
}

export function toOtlpKeyValues(attributes: readonly KeyValue[]): Array<{ key: string; value: OtlpJsonAnyValue }> {
  return attributes.map((kv) => ({ key: kv.key, value: toOtlpAnyValue(kv.value) }));
}

/** Adds `key: value` unless value is a proto3 default (0, '', empty list). */
function put(target: Record<string, unknown>, key: string, value: unknown): void {
  if (value === 0 || value === '' || (Array.isArray(value) && value.length === 0)) return;
  target[key] = value;
}

function spanToJson(span: TraceSpan, options: OtlpJsonOptions): Record<string, unknown> {
  const s = span.stored;
  const out: Record<string, unknown> = { traceId: s.traceId.toString('hex'), spanId: s.spanId.toString('hex') };
  put(out, 'traceState', s.traceState);
  if (s.parentSpanId !== null) out.parentSpanId = s.parentSpanId.toString('hex');
  put(out, 'flags', s.flags);
  out.name = s.name;
  put(out, 'kind', s.kind);
  out.startTimeUnixNano = s.startTimeUnixNano.toString();
  out.endTimeUnixNano = s.endTimeUnixNano.toString();
  put(out, 'attributes', toOtlpKeyValues(span.attributes));
  put(out, 'droppedAttributesCount', s.droppedAttributesCount);
  put(
    out,
    'events',
    span.events.map((e) => {
      const event: Record<string, unknown> = {
        timeUnixNano: options.eventTimeAsNumber ? e.timeUnixNano : e.timeUnixNano.toString(),
      };
      put(event, 'name', e.name);
      put(event, 'attributes', toOtlpKeyValues(e.attributes));
      put(event, 'droppedAttributesCount', e.droppedAttributesCount);
      return event;
    }),
  );
  put(out, 'droppedEventsCount', s.droppedEventsCount);
  put(
    out,
    'links',
    span.links.map((l) => {
      const link: Record<string, unknown> = { traceId: l.traceId, spanId: l.spanId };
      put(link, 'traceState', l.traceState);
      put(link, 'attributes', toOtlpKeyValues(l.attributes));
      put(link, 'droppedAttributesCount', l.droppedAttributesCount);
      put(link, 'flags', l.flags);
      return link;
    }),
  );
  put(out, 'droppedLinksCount', s.droppedLinksCount);
  const status: Record<string, unknown> = {};
  put(status, 'message', s.statusMessage);
  put(status, 'code', s.statusCode);
  out.status = status;
  return out;
}

/** `{ resourceSpans: [...] }`: TracesData in OTLP/JSON. Serialize with stringifyExact (event times may be bigint). */
export function toOtlpTracesData(
  resources: readonly TraceResource[],
  options: OtlpJsonOptions = {},
): { resourceSpans: unknown[] } {
  return {
    resourceSpans: resources.map((resource) => ({
      resource: { attributes: toOtlpKeyValues(resource.attributes) },
      scopeSpans: resource.scopes.map((scope) => {
        const instrumentationScope: Record<string, unknown> = {};
        put(instrumentationScope, 'name', scope.name);
        put(instrumentationScope, 'version', scope.version);
        put(instrumentationScope, 'attributes', toOtlpKeyValues(scope.attributes));
        return { scope: instrumentationScope, spans: scope.spans.map((span) => spanToJson(span, options)) };
      }),
    })),
  };
}
