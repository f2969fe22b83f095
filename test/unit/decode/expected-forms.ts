/**
 * The stored forms of server/decode/any-value.ts, computed independently from SDK-side values
 * (what the OpenTelemetry JS serializers are given), so the SDK oracle tests compare against a
 * second implementation of the spec rather than against the decoder itself.
 */
import type { HrTime, Link } from '@opentelemetry/api';
import type { ReadableSpan, TimedEvent } from '@opentelemetry/sdk-trace-base';

const TWO_POW_63 = 2 ** 63;

export function hrTimeToNs(time: HrTime): bigint {
  return BigInt(time[0]) * 1_000_000_000n + BigInt(time[1]);
}

function expectedDouble(v: number): string {
  if (Number.isNaN(v)) return '"NaN"';
  if (v === Infinity) return '"Infinity"';
  if (v === -Infinity) return '"-Infinity"';
  // integral: the shortest round-trip digits plus ".0"; exponent-free above 1e21 too
  if (Number.isInteger(v)) return Math.abs(v) < 1e21 ? `${v}.0` : `${BigInt(v)}.0`;
  return JSON.stringify(v);
}

/** The JSON text an SDK attribute value is stored as (the SDK writes integral numbers as int64). */
export function expectedValueJson(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'boolean') return String(value);
  if (typeof value === 'number') {
    const isInt = Number.isInteger(value) && value >= -TWO_POW_63 && value < TWO_POW_63;
    return isInt ? BigInt(value).toString() : expectedDouble(value);
  }
  if (value instanceof Uint8Array) return JSON.stringify(Buffer.from(value).toString('base64'));
  if (Array.isArray(value)) return `[${value.map(expectedValueJson).join(',')}]`;
  return expectedAttributesJson(value as Record<string, unknown>);
}

export function expectedAttributesJson(attributes: Record<string, unknown> | undefined): string {
  const entries = Object.entries(attributes ?? {});
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${expectedValueJson(v)}`).join(',')}}`;
}

/** Stored events and links leave out the fields at their OTLP default (JSON.stringify drops undefined). */
function expectedEventJson(e: TimedEvent): string {
  const attributes = expectedAttributesJson(e.attributes);
  return JSON.stringify({
    timeUnixNano: hrTimeToNs(e.time).toString(),
    name: e.name,
    attributes: attributes === '{}' ? undefined : '@ATTRS@',
    droppedAttributesCount: e.droppedAttributesCount || undefined,
  }).replace('"@ATTRS@"', attributes);
}

/** OTLP Span.flags / Link.flags as the SDK writes them: W3C flags, has-is-remote bit, is-remote bit. */
export function expectedFlags(traceFlags: number, isRemote: boolean | undefined): number {
  return (traceFlags & 0xff) | 0x100 | (isRemote ? 0x200 : 0);
}

function expectedLinkJson(l: Link): string {
  const attributes = expectedAttributesJson(l.attributes);
  return JSON.stringify({
    traceId: l.context.traceId,
    spanId: l.context.spanId,
    traceState: l.context.traceState?.serialize() || undefined,
    flags: expectedFlags(l.context.traceFlags, l.context.isRemote) || undefined,
    attributes: attributes === '{}' ? undefined : '@ATTRS@',
    droppedAttributesCount: l.droppedAttributesCount || undefined,
  }).replace('"@ATTRS@"', attributes);
}

/** A SpanRow as comparableRows() shows it, computed from the ReadableSpan. */
export function expectedRow(span: ReadableSpan): Record<string, unknown> {
  const ctx = span.spanContext();
  const resourceAttributes = span.resource.attributes as Record<string, unknown>;
  const serviceName = resourceAttributes['service.name'];
  const scope = span.instrumentationScope as ReadableSpan['instrumentationScope'] & {
    attributes?: Record<string, unknown>;
  };
  const events = span.events.map(expectedEventJson);
  const links = span.links.map(expectedLinkJson);
  return {
    traceId: ctx.traceId,
    spanId: ctx.spanId,
    parentSpanId: span.parentSpanContext?.spanId ?? null,
    traceState: ctx.traceState?.serialize() ?? '',
    flags: expectedFlags(ctx.traceFlags, span.parentSpanContext?.isRemote),
    name: span.name,
    kind: span.kind === undefined ? 0 : span.kind + 1,
    serviceName: typeof serviceName === 'string' ? serviceName : '',
    startTimeUnixNano: hrTimeToNs(span.startTime).toString(),
    endTimeUnixNano: hrTimeToNs(span.endTime).toString(),
    statusCode: span.status.code,
    statusMessage: span.status.message ?? '',
    attributes: expectedAttributesJson(span.attributes),
    sharedAttributes: '{}',
    resourceAttributes: expectedAttributesJson(resourceAttributes),
    scopeName: scope.name,
    scopeVersion: scope.version ?? '',
    scopeAttributes: expectedAttributesJson(scope.attributes),
    events: `[${events.join(',')}]`,
    links: `[${links.join(',')}]`,
    droppedAttributesCount: span.droppedAttributesCount,
    droppedEventsCount: span.droppedEventsCount,
    droppedLinksCount: span.droppedLinksCount,
    samplingWeight: expectedSamplingWeight(ctx.traceState?.serialize() ?? ''),
  };
}

/** 2^56 / (2^56 − T) for an `ot=th:T` member of the tracestate (hex, zero-padded to 14 digits), else 1. */
function expectedSamplingWeight(traceState: string): number {
  const th = /(?:^|,)\s*ot=(?:[^,]*;)?th:([0-9a-f]{1,14})(?:[;,]|$)/.exec(traceState)?.[1];
  return th === undefined ? 1 : 2 ** 56 / (2 ** 56 - parseInt(th.padEnd(14, '0'), 16));
}
