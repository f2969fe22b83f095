/**
 * Jaeger's v1 JSON trace model (jaeger internal/uimodel), the shape Grafana's Jaeger datasource
 * decodes, built from stored spans the way Jaeger translates OTLP:
 * - the resource becomes the process (service.name → serviceName, the other attributes → tags);
 * - the parent becomes a CHILD_OF reference, links become FOLLOWS_FROM references;
 * - kind, status, scope and trace state become the tags span.kind, otel.status_code, error,
 *   otel.status_description, otel.scope.name, otel.scope.version and w3c.tracestate;
 * - events become logs whose first field is `event` (the event name);
 * - times and durations are microseconds (floored), ids lowercase hex.
 * Arrays and key/value lists become string tags holding their JSON.
 */
import type { StoredSpan } from '../storage/reader-types.js';
import { parseAttributes, valueToText, type AnyValue, type KeyValue } from './any-value.js';
import { exactInt } from './exact-json.js';
import { toTraceSpan } from './trace-model.js';

export interface JaegerKeyValue {
  key: string;
  type: 'string' | 'bool' | 'int64' | 'float64';
  value: string | boolean | number | bigint;
}

export interface JaegerSpan {
  traceID: string;
  spanID: string;
  operationName: string;
  references: Array<{ refType: 'CHILD_OF' | 'FOLLOWS_FROM'; traceID: string; spanID: string }>;
  flags: number;
  startTime: number;
  duration: number;
  tags: JaegerKeyValue[];
  logs: Array<{ timestamp: number; fields: JaegerKeyValue[] }>;
  processID: string;
  warnings: null;
}

export interface JaegerTrace {
  traceID: string;
  spans: JaegerSpan[];
  processes: Record<string, { serviceName: string; tags: JaegerKeyValue[] }>;
  warnings: null;
}

export const KIND_NAMES = ['unspecified', 'internal', 'server', 'client', 'producer', 'consumer'] as const;
const STATUS_NAMES = ['UNSET', 'OK', 'ERROR'] as const;

export function toJaegerKeyValue(key: string, value: AnyValue): JaegerKeyValue {
  switch (value.type) {
    case 'bool':
      return { key, type: 'bool', value: value.value };
    case 'int':
      return { key, type: 'int64', value: exactInt(value.value) };
    case 'double':
      return { key, type: 'float64', value: value.value };
    default:
      return { key, type: 'string', value: valueToText(value) };
  }
}

function tagsOf(attributes: KeyValue[]): JaegerKeyValue[] {
  return attributes.map((kv) => toJaegerKeyValue(kv.key, kv.value));
}

const micros = (nanos: bigint): number => Number(nanos / 1000n);

function spanTags(span: StoredSpan, attributes: KeyValue[]): JaegerKeyValue[] {
  const tags = tagsOf(attributes);
  if (span.kind > 0 && span.kind < KIND_NAMES.length) {
    tags.push({ key: 'span.kind', type: 'string', value: KIND_NAMES[span.kind] });
  }
  if (span.statusCode === 1 || span.statusCode === 2) {
    tags.push({ key: 'otel.status_code', type: 'string', value: STATUS_NAMES[span.statusCode] });
  }
  if (span.statusCode === 2) tags.push({ key: 'error', type: 'bool', value: true });
  if (span.statusMessage !== '') {
    tags.push({ key: 'otel.status_description', type: 'string', value: span.statusMessage });
  }
  if (span.scopeName !== '') tags.push({ key: 'otel.scope.name', type: 'string', value: span.scopeName });
  if (span.scopeVersion !== '') tags.push({ key: 'otel.scope.version', type: 'string', value: span.scopeVersion });
  if (span.traceState !== '') tags.push({ key: 'w3c.tracestate', type: 'string', value: span.traceState });
  return tags;
}

/** One Jaeger trace from the stored spans of one trace (sorted by start time). */
export function toJaegerTrace(spans: readonly StoredSpan[]): JaegerTrace {
  const processes: JaegerTrace['processes'] = {};
  const processIds = new Map<string, string>();
  const traceID = spans.length > 0 ? spans[0].traceId.toString('hex') : '';
  const out: JaegerSpan[] = [];
  for (const stored of spans) {
    let processID = processIds.get(stored.resourceAttributes);
    if (processID === undefined) {
      processID = `p${processIds.size + 1}`;
      processIds.set(stored.resourceAttributes, processID);
      processes[processID] = {
        serviceName: stored.serviceName,
        tags: tagsOf(parseAttributes(stored.resourceAttributes).filter((kv) => kv.key !== 'service.name')),
      };
    }
    const span = toTraceSpan(stored);
    const references: JaegerSpan['references'] = [];
    if (stored.parentSpanId !== null) {
      references.push({ refType: 'CHILD_OF', traceID, spanID: stored.parentSpanId.toString('hex') });
    }
    for (const link of span.links) {
      references.push({ refType: 'FOLLOWS_FROM', traceID: link.traceId, spanID: link.spanId });
    }
    out.push({
      traceID,
      spanID: stored.spanId.toString('hex'),
      operationName: stored.name,
      references,
      flags: stored.flags & 0xff,
      startTime: micros(stored.startTimeUnixNano),
      duration: micros(stored.endTimeUnixNano - stored.startTimeUnixNano),
      tags: spanTags(stored, span.attributes),
      logs: span.events.map((event) => ({
        timestamp: micros(event.timeUnixNano),
        fields: [{ key: 'event', type: 'string', value: event.name }, ...tagsOf(event.attributes)],
      })),
      processID,
      warnings: null,
    });
  }
  return { traceID, spans: out, processes, warnings: null };
}
