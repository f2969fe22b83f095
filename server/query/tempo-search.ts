/**
 * Tempo search: the request (TraceQL `q`, or the legacy logfmt `tags`, plus minDuration /
 * maxDuration on the trace duration) → a SearchQuery, and the hits → Tempo's search JSON, where
 * every uint64 is a decimal string and a span set lists the matched spans with the attributes the
 * query conditions named.
 */
import type { SearchQuery, SpanCondition, StoredSpan, TimeWindow, TraceCondition } from '../storage/reader-types.js';
import { parseAttributes, type AnyValue } from './any-value.js';
import { KIND_NAMES } from './jaeger-model.js';
import { toOtlpAnyValue } from './otlp-json.js';
import { one, parseDuration, parseEpoch, parseLogfmt, resolveWindow, type QueryString } from './params.js';
import { DEFAULT_LOOKBACK_NANOS, nowNanos, type QueryRouteOptions } from './route-support.js';
import type { TempoSearchHit } from './trace-queries.js';
import { parseTraceQL } from './traceql.js';

export interface TempoSearchRequest {
  q?: string;
  tags?: string;
  minDuration?: string;
  maxDuration?: string;
  window: TimeWindow;
  limit: number;
}

const STATUS_NAMES = ['unset', 'ok', 'error'];

/** Tempo's start / end (epoch seconds, or any unit by magnitude); the last hour without them. */
export function tempoWindow(query: QueryString, options: QueryRouteOptions): TimeWindow {
  const start = one(query, 'start');
  const end = one(query, 'end');
  return resolveWindow(
    start === undefined ? undefined : parseEpoch(start, 'start'),
    end === undefined ? undefined : parseEpoch(end, 'end'),
    nowNanos(options),
    DEFAULT_LOOKBACK_NANOS,
  );
}

/** Tempo's legacy tag search: well-known tags map to intrinsics, the rest match text forms. */
function legacyTagConditions(text: string): { span: SpanCondition[]; trace: TraceCondition[] } {
  const span: SpanCondition[] = [];
  const trace: TraceCondition[] = [];
  for (const [key, value] of parseLogfmt(text, 'tags')) {
    if (key === 'service.name') span.push({ target: 'intrinsic', intrinsic: 'service', op: '=', value });
    else if (key === 'name') span.push({ target: 'intrinsic', intrinsic: 'name', op: '=', value });
    else if (key === 'root.service.name') trace.push({ field: 'rootServiceName', op: '=', value });
    else if (key === 'root.name') trace.push({ field: 'rootName', op: '=', value });
    else if (key === 'error' && value === 'true') {
      span.push({ target: 'intrinsic', intrinsic: 'status', op: '=', value: 2 });
    } else if (key === 'status.code' && STATUS_NAMES.includes(value)) {
      span.push({ target: 'intrinsic', intrinsic: 'status', op: '=', value: STATUS_NAMES.indexOf(value) });
    } else span.push({ target: 'tag', key, value });
  }
  return { span, trace };
}

export function toTempoSearchQuery(request: TempoSearchRequest): SearchQuery {
  const parsed = request.q !== undefined ? parseTraceQL(request.q) : { spanConditions: [], traceConditions: [] };
  const spanConditions = [...parsed.spanConditions];
  const traceConditions = [...parsed.traceConditions];
  if (request.tags !== undefined) {
    const legacy = legacyTagConditions(request.tags);
    spanConditions.push(...legacy.span);
    traceConditions.push(...legacy.trace);
  }
  if (request.minDuration !== undefined) {
    traceConditions.push({ field: 'duration', op: '>=', value: parseDuration(request.minDuration, 'minDuration') });
  }
  if (request.maxDuration !== undefined) {
    traceConditions.push({ field: 'duration', op: '<=', value: parseDuration(request.maxDuration, 'maxDuration') });
  }
  return { window: request.window, spanConditions, traceConditions, limit: request.limit };
}

type Shown = { key: string; value: AnyValue };

/** The attributes a span set shows for one span: those the query's conditions referred to. */
function shownAttributes(span: StoredSpan, conditions: readonly SpanCondition[]): Shown[] {
  const shown: Shown[] = [];
  const seen = new Set<string>();
  let spanAttributes: ReturnType<typeof parseAttributes> | undefined;
  let resourceAttributes: ReturnType<typeof parseAttributes> | undefined;
  const add = (key: string, value: AnyValue | undefined) => {
    if (value === undefined || seen.has(key)) return;
    seen.add(key);
    shown.push({ key, value });
  };
  for (const c of conditions) {
    if (c.target === 'intrinsic') {
      if (c.intrinsic === 'service') add('service.name', { type: 'string', value: span.serviceName });
      else if (c.intrinsic === 'status') add('status', { type: 'string', value: STATUS_NAMES[span.statusCode] });
      else if (c.intrinsic === 'kind') add('kind', { type: 'string', value: KIND_NAMES[span.kind] });
      else if (c.intrinsic === 'statusMessage') add('statusMessage', { type: 'string', value: span.statusMessage });
      continue;
    }
    const key = c.key;
    if (c.target === 'tag' || c.scope !== 'resource') {
      spanAttributes ??= parseAttributes(span.attributes);
      add(key, spanAttributes.find((kv) => kv.key === key)?.value);
    }
    if (c.target === 'tag' || c.scope !== 'span') {
      resourceAttributes ??= parseAttributes(span.resourceAttributes);
      add(key, resourceAttributes.find((kv) => kv.key === key)?.value);
    }
  }
  return shown;
}

/** Tempo's search answer. */
export function toTempoSearchResponse(hits: readonly TempoSearchHit[], query: SearchQuery): unknown {
  return {
    traces: hits.map((hit) => {
      const s = hit.summary;
      const spanSet = {
        spans: hit.matched.map((span) => ({
          spanID: span.spanId.toString('hex'),
          name: span.name,
          startTimeUnixNano: span.startTimeUnixNano.toString(),
          durationNanos: (span.endTimeUnixNano - span.startTimeUnixNano).toString(),
          attributes: shownAttributes(span, query.spanConditions).map((a) => ({
            key: a.key,
            value: toOtlpAnyValue(a.value),
          })),
        })),
        matched: hit.matchedCount,
      };
      return {
        traceID: s.traceId.toString('hex'),
        rootServiceName: s.rootServiceName ?? '<root span not yet received>',
        rootTraceName: s.rootSpanName ?? '',
        startTimeUnixNano: s.firstStartUnixNano.toString(),
        durationMs: Number((s.lastEndUnixNano - s.firstStartUnixNano) / 1_000_000n),
        spanSet,
        spanSets: [spanSet],
        serviceStats: Object.fromEntries(
          [...hit.services].map(([service, stats]) => [
            service,
            { spanCount: stats.spanCount, errorCount: stats.errorCount },
          ]),
        ),
      };
    }),
    metrics: { inspectedTraces: hits.length, inspectedBytes: '0', completedJobs: 1, totalJobs: 1 },
  };
}
