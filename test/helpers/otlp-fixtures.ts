/**
 * OTLP request bodies for tests and benchmarks, encoded by the OpenTelemetry JS SDK's own
 * serializers (@opentelemetry/otlp-transformer), an encoder independent of our decoder.
 *
 *   const spans = realisticSpans(512, { nowMs: Date.now() });
 *   const { protobuf, json } = buildRequest({ spans });
 *
 * Spans are plain FixtureSpan objects (hex ids, bigint nanosecond times, OTLP kind numbers) so tests
 * can build edge cases directly. Spans sharing one FixtureResource / FixtureScope object are grouped
 * into one ResourceSpans / ScopeSpans, as the SDK does.
 */
import { randomBytes } from 'node:crypto';
import type { Attributes, HrTime, Link, SpanContext, SpanKind, TraceState } from '@opentelemetry/api';
import { JsonTraceSerializer, ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';
import type { ReadableSpan, TimedEvent } from '@opentelemetry/sdk-trace-base';

/** What the SDK serializers can encode: Uint8Array → bytes, nested arrays / objects → array / kvlist. */
export type FixtureValue =
  string | number | boolean | Uint8Array | null | FixtureValue[] | { [key: string]: FixtureValue };
export type FixtureAttributes = Record<string, FixtureValue>;

export interface FixtureResource {
  attributes: FixtureAttributes;
}

export interface FixtureScope {
  name: string;
  version?: string;
  attributes?: FixtureAttributes;
}

export interface FixtureEvent {
  name: string;
  timeUnixNano: bigint;
  attributes?: FixtureAttributes;
  droppedAttributesCount?: number;
}

export interface FixtureLink {
  traceId: string;
  spanId: string;
  traceState?: string;
  sampled?: boolean;
  isRemote?: boolean;
  attributes?: FixtureAttributes;
  droppedAttributesCount?: number;
}

export interface FixtureSpan {
  traceId: string; // 32 hex digits
  spanId: string; // 16 hex digits
  parentSpanId?: string;
  parentIsRemote?: boolean;
  traceState?: string;
  sampled?: boolean; // W3C sampled flag, default true
  name: string;
  kind?: number; // OTLP SpanKind 0..5, default 1 (internal)
  startTimeUnixNano: bigint;
  endTimeUnixNano: bigint;
  attributes?: FixtureAttributes;
  events?: FixtureEvent[];
  links?: FixtureLink[];
  status?: { code: 0 | 1 | 2; message?: string };
  droppedAttributesCount?: number;
  droppedEventsCount?: number;
  droppedLinksCount?: number;
  resource?: FixtureResource;
  scope?: FixtureScope;
}

export interface BuildRequestOptions {
  spans: FixtureSpan[];
  /** Used for spans without their own resource. */
  resource?: FixtureResource;
  /** Used for spans without their own scope. */
  scope?: FixtureScope;
}

export interface EncodedRequest {
  protobuf: Buffer;
  json: string;
}

export const DEFAULT_RESOURCE: FixtureResource = { attributes: { 'service.name': 'fixture-service' } };
export const DEFAULT_SCOPE: FixtureScope = { name: '@tracehouse/fixtures', version: '1.0.0' };

const NS_PER_S = 1_000_000_000n;

export function toHrTime(unixNano: bigint): HrTime {
  return [Number(unixNano / NS_PER_S), Number(unixNano % NS_PER_S)];
}

/** Encodes the spans as an ExportTraceServiceRequest in OTLP protobuf and OTLP/JSON. */
export function buildRequest(options: BuildRequestOptions): EncodedRequest {
  const spans = toReadableSpans(options);
  return {
    protobuf: Buffer.from(ProtobufTraceSerializer.serializeRequest(spans) ?? new Uint8Array()),
    json: Buffer.from(JsonTraceSerializer.serializeRequest(spans) ?? new Uint8Array()).toString('utf8'),
  };
}

/** The SDK ReadableSpans the serializers take; resources and scopes are shared by identity. */
export function toReadableSpans(options: BuildRequestOptions): ReadableSpan[] {
  const resources = new Map<FixtureResource, ReadableSpan['resource']>();
  const scopes = new Map<FixtureScope, ReadableSpan['instrumentationScope']>();
  return options.spans.map((span) => {
    const fixtureResource = span.resource ?? options.resource ?? DEFAULT_RESOURCE;
    let resource = resources.get(fixtureResource);
    if (resource === undefined) {
      resource = resourceFromAttributes(fixtureResource.attributes as Attributes);
      resources.set(fixtureResource, resource);
    }
    const fixtureScope = span.scope ?? options.scope ?? DEFAULT_SCOPE;
    let scope = scopes.get(fixtureScope);
    if (scope === undefined) {
      scope = { ...fixtureScope } as ReadableSpan['instrumentationScope'];
      scopes.set(fixtureScope, scope);
    }
    return toReadableSpan(span, resource, scope);
  });
}

function fixedTraceState(serialized: string | undefined): TraceState | undefined {
  if (serialized === undefined) return undefined;
  return { serialize: () => serialized } as TraceState;
}

function toReadableSpan(
  span: FixtureSpan,
  resource: ReadableSpan['resource'],
  instrumentationScope: ReadableSpan['instrumentationScope'],
): ReadableSpan {
  const context: SpanContext = {
    traceId: span.traceId,
    spanId: span.spanId,
    traceFlags: span.sampled === false ? 0 : 1,
    traceState: fixedTraceState(span.traceState),
  };
  const parentSpanContext: SpanContext | undefined =
    span.parentSpanId === undefined
      ? undefined
      : { traceId: span.traceId, spanId: span.parentSpanId, traceFlags: 1, isRemote: span.parentIsRemote ?? false };
  const kind = span.kind ?? 1;
  const startTime = toHrTime(span.startTimeUnixNano);
  const endTime = toHrTime(span.endTimeUnixNano);
  const events: TimedEvent[] = (span.events ?? []).map((e) => ({
    name: e.name,
    time: toHrTime(e.timeUnixNano),
    attributes: e.attributes as Attributes | undefined,
    droppedAttributesCount: e.droppedAttributesCount,
  }));
  const links: Link[] = (span.links ?? []).map((l) => ({
    context: {
      traceId: l.traceId,
      spanId: l.spanId,
      traceFlags: l.sampled === false ? 0 : 1,
      isRemote: l.isRemote,
      traceState: fixedTraceState(l.traceState),
    },
    attributes: l.attributes as Attributes | undefined,
    droppedAttributesCount: l.droppedAttributesCount,
  }));
  return {
    name: span.name,
    // The SDK's SpanKind has no "unspecified"; the serializers write kind + 1, or 0 when it is unset.
    kind: (kind === 0 ? undefined : kind - 1) as SpanKind,
    spanContext: () => context,
    parentSpanContext,
    startTime,
    endTime,
    status: { code: span.status?.code ?? 0, message: span.status?.message },
    attributes: (span.attributes ?? {}) as Attributes,
    links,
    events,
    duration: toHrTime(span.endTimeUnixNano - span.startTimeUnixNano),
    ended: true,
    resource,
    instrumentationScope,
    droppedAttributesCount: span.droppedAttributesCount ?? 0,
    droppedEventsCount: span.droppedEventsCount ?? 0,
    droppedLinksCount: span.droppedLinksCount ?? 0,
  };
}

/** A small seeded PRNG (mulberry32): deterministic fixtures and fuzz inputs. Returns [0, 1). */
export function createRng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomHex(bytes: number, rng?: () => number): string {
  if (rng === undefined) return randomBytes(bytes).toString('hex');
  let out = '';
  for (let i = 0; i < bytes; i++) {
    out += Math.floor(rng() * 256)
      .toString(16)
      .padStart(2, '0');
  }
  // An all-zero id is invalid; the chance is negligible, but keep fixtures valid.
  return /^0+$/.test(out) ? '0'.repeat(bytes * 2 - 1) + '1' : out;
}

export interface RealisticSpanOptions {
  /** Start times fall within the minute before this instant. */
  nowMs: number;
  /** Seeds attribute values and, when given, the ids too (otherwise ids come from crypto). */
  seed?: number;
  spansPerTrace?: number;
  resource?: FixtureResource;
}

const ROUTES = ['/api/orders', '/api/orders/:id', '/api/users/:id', '/api/cart', '/health', '/api/search'];
const METHODS = ['GET', 'POST', 'PUT', 'DELETE'];
const OPERATIONS = ['SELECT orders', 'INSERT orders', 'GET /api/orders', 'redis GET', 'render cart', 'charge card'];

/** The resource of realisticSpans: 8 attributes like a Node.js service's. */
export function realisticResource(serviceName = 'checkout'): FixtureResource {
  return {
    attributes: {
      'service.name': serviceName,
      'service.version': '2.14.3',
      'service.namespace': 'shop',
      'service.instance.id': 'checkout-7d9f8c6b5-x2k4p',
      'deployment.environment': 'production',
      'host.name': 'ip-10-0-12-34.eu-west-1.compute.internal',
      'telemetry.sdk.language': 'nodejs',
      'telemetry.sdk.version': '2.12.1',
    },
  };
}

/**
 * n spans shaped like real traffic: ~16 spans per trace (a root and its children), 10 attributes
 * each (strings, ints, a double, a bool, a string array), an event with attributes on ~30 %, a link
 * on ~10 %, ~5 % errors, unique ids, start times in the minute before nowMs (ns precision).
 */
export function realisticSpans(n: number, options: RealisticSpanOptions): FixtureSpan[] {
  const rng = createRng(options.seed ?? 0x7ac3);
  const idRng = options.seed === undefined ? undefined : rng;
  const perTrace = options.spansPerTrace ?? 16;
  const resource = options.resource ?? realisticResource();
  const scope: FixtureScope = { name: '@opentelemetry/instrumentation-http', version: '0.57.2' };
  const nowNs = BigInt(Math.floor(options.nowMs)) * 1_000_000n;
  const pick = <T>(items: readonly T[]): T => items[Math.floor(rng() * items.length)];
  const spans: FixtureSpan[] = [];
  let traceId = '';
  let rootId = '';
  for (let i = 0; i < n; i++) {
    const isRoot = i % perTrace === 0;
    if (isRoot) traceId = randomHex(16, idRng);
    const spanId = randomHex(8, idRng);
    if (isRoot) rootId = spanId;
    const start = nowNs - BigInt(Math.floor(rng() * 60_000_000_000)) - 1n;
    const durationNs = BigInt(Math.floor(rng() * 250_000_000)) + 1000n;
    const isError = rng() < 0.05;
    const span: FixtureSpan = {
      traceId,
      spanId,
      parentSpanId: isRoot ? undefined : rootId,
      name: pick(OPERATIONS),
      kind: isRoot ? 2 : pick([1, 3, 3, 4]),
      startTimeUnixNano: start,
      endTimeUnixNano: start + durationNs,
      attributes: {
        'http.request.method': pick(METHODS),
        'http.route': pick(ROUTES),
        'http.response.status_code': isError ? 500 : 200,
        'url.full': `https://shop.example.com${pick(ROUTES)}?page=${Math.floor(rng() * 100)}`,
        'server.address': 'shop.example.com',
        'server.port': 443,
        'user_agent.original': 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36',
        'app.cart.items': Math.floor(rng() * 20),
        'app.sampling.ratio': Math.round(rng() * 1000) / 1000 + 0.0005,
        'app.feature_flags': ['new-checkout', pick(['a', 'b', 'c'])],
      },
      status: isError ? { code: 2, message: 'upstream returned 500' } : { code: 0 },
      resource,
      scope,
    };
    if (rng() < 0.3) {
      span.events = [
        {
          name: isError ? 'exception' : 'cache.miss',
          timeUnixNano: start + durationNs / 2n,
          attributes: isError
            ? { 'exception.type': 'UpstreamError', 'exception.message': 'upstream returned 500' }
            : { 'cache.key': `cart:${spanId}` },
        },
      ];
    }
    if (rng() < 0.1) {
      span.links = [
        { traceId: randomHex(16, idRng), spanId: randomHex(8, idRng), attributes: { 'link.kind': 'follows' } },
      ];
    }
    spans.push(span);
  }
  return spans;
}
