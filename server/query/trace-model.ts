/**
 * A trace as the encoders see it: stored spans grouped back into resources and instrumentation
 * scopes (as OTLP sends them), with attributes, events and links parsed into typed values. Spans
 * with the same stored resource attributes share one resource; within it, the same scope name,
 * version and attributes share one scope. Order: resources and scopes by first appearance, spans
 * as given (the reader sorts them by start time).
 */
import type { StoredSpan } from '../storage/reader-types.js';
import { parseAttributes, parseStoredJson, type AnyValue, type KeyValue } from './any-value.js';

export interface TraceEvent {
  timeUnixNano: bigint;
  name: string;
  attributes: KeyValue[];
  droppedAttributesCount: number;
}

export interface TraceLink {
  traceId: string; // hex
  spanId: string; // hex
  traceState: string;
  flags: number;
  attributes: KeyValue[];
  droppedAttributesCount: number;
}

export interface TraceSpan {
  stored: StoredSpan;
  attributes: KeyValue[];
  events: TraceEvent[];
  links: TraceLink[];
}

export interface TraceScope {
  name: string;
  version: string;
  attributes: KeyValue[];
  spans: TraceSpan[];
}

export interface TraceResource {
  serviceName: string;
  attributes: KeyValue[];
  scopes: TraceScope[];
}

function field(object: KeyValue[], key: string): AnyValue | undefined {
  for (const kv of object) if (kv.key === key) return kv.value;
  return undefined;
}

function text(value: AnyValue | undefined): string {
  return value?.type === 'string' ? value.value : '';
}

function count(value: AnyValue | undefined): number {
  return value?.type === 'int' ? Number(value.value) : 0;
}

function attributesOf(value: AnyValue | undefined): KeyValue[] {
  return value?.type === 'kvlist' ? value.values : [];
}

function objects(json: string): KeyValue[][] {
  if (json === '[]') return [];
  const value = parseStoredJson(json);
  if (value.type !== 'array') return [];
  return value.values.filter((v) => v.type === 'kvlist').map((v) => (v as { values: KeyValue[] }).values);
}

export function parseEvents(json: string): TraceEvent[] {
  return objects(json).map((event) => ({
    timeUnixNano: BigInt(text(field(event, 'timeUnixNano')) || '0'),
    name: text(field(event, 'name')),
    attributes: attributesOf(field(event, 'attributes')),
    droppedAttributesCount: count(field(event, 'droppedAttributesCount')),
  }));
}

export function parseLinks(json: string): TraceLink[] {
  return objects(json).map((link) => ({
    traceId: text(field(link, 'traceId')),
    spanId: text(field(link, 'spanId')),
    traceState: text(field(link, 'traceState')),
    flags: count(field(link, 'flags')),
    attributes: attributesOf(field(link, 'attributes')),
    droppedAttributesCount: count(field(link, 'droppedAttributesCount')),
  }));
}

export function toTraceSpan(stored: StoredSpan): TraceSpan {
  return {
    stored,
    attributes: parseAttributes(stored.attributes),
    events: parseEvents(stored.events),
    links: parseLinks(stored.links),
  };
}

/** Groups spans (of one or several traces) into resources and scopes. */
export function groupSpans(spans: readonly StoredSpan[]): TraceResource[] {
  const resources = new Map<string, TraceResource>();
  const scopes = new Map<TraceResource, Map<string, TraceScope>>();
  for (const stored of spans) {
    let resource = resources.get(stored.resourceAttributes);
    if (resource === undefined) {
      resource = {
        serviceName: stored.serviceName,
        attributes: parseAttributes(stored.resourceAttributes),
        scopes: [],
      };
      resources.set(stored.resourceAttributes, resource);
      scopes.set(resource, new Map());
    }
    const scopeKey = `${stored.scopeName}\u0000${stored.scopeVersion}\u0000${stored.scopeAttributes}`;
    const byKey = scopes.get(resource)!;
    let scope = byKey.get(scopeKey);
    if (scope === undefined) {
      scope = {
        name: stored.scopeName,
        version: stored.scopeVersion,
        attributes: parseAttributes(stored.scopeAttributes),
        spans: [],
      };
      byKey.set(scopeKey, scope);
      resource.scopes.push(scope);
    }
    scope.spans.push(toTraceSpan(stored));
  }
  return [...resources.values()];
}
