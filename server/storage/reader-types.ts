/**
 * The seam between the query API and PostgreSQL on the read side: what a search asks for and what
 * the reader returns. The query stage builds these values from Jaeger, Tempo and TraceQL requests;
 * the reader (trace-reader.ts) turns them into SQL. Times are exact unix nanoseconds (bigint).
 */
import type { SpanRow } from '../decode/types.js';

/**
 * A stored span as read back: the writer's row without its queue bookkeeping (nor its sampling
 * weight, which the query APIs do not show). JSON columns are text.
 */
export type StoredSpan = Omit<SpanRow, 'sizeBytes' | 'samplingWeight' | 'sharedAttributes'>;

/** The per-trace summary maintained at ingest (the `traces` table). */
export interface TraceSummary {
  traceId: Buffer;
  firstStartUnixNano: bigint;
  lastEndUnixNano: bigint;
  spanCount: number;
  errorCount: number;
  rootServiceName: string | null;
  rootSpanName: string | null;
  /** When a batch last added spans to the trace (a cache may keep only traces quiet for a while). */
  updatedAt: Date;
}

/** An inclusive span-start window in unix nanoseconds (stored times have microsecond precision). */
export interface TimeWindow {
  startUnixNano: bigint;
  endUnixNano: bigint;
}

export type Comparison = '=' | '!=' | '>' | '>=' | '<' | '<=' | '=~' | '!~';

/** A typed literal: bigint is an integer, number a float. Regex operators take a string pattern. */
export type Scalar = string | bigint | number | boolean;

/**
 * A condition on one span. Every condition of a query must hold for the same span.
 * - `intrinsic`: a span column. status and kind compare OTLP codes (number), duration nanoseconds
 *   (bigint), name / service / statusMessage text.
 * - `attribute`: a typed comparison on a span or resource attribute (`any`: either). A missing
 *   attribute, or one of another type than the literal, matches no operator.
 * - `tag`: Jaeger and Tempo legacy tag search: the attribute's text form (a number's digits,
 *   `true` / `false`) equals `value`, on the span or its resource.
 * Regex patterns match the whole value (TraceQL semantics) with PostgreSQL's regex engine.
 */
export type SpanCondition =
  | { target: 'intrinsic'; intrinsic: 'name' | 'service' | 'statusMessage'; op: Comparison; value: string }
  | { target: 'intrinsic'; intrinsic: 'status' | 'kind'; op: '=' | '!='; value: number }
  | { target: 'intrinsic'; intrinsic: 'duration'; op: Comparison; value: bigint }
  | { target: 'attribute'; scope: 'span' | 'resource' | 'any'; key: string; op: Comparison; value: Scalar }
  | { target: 'tag'; key: string; value: string };

/** A condition on the trace summary: its duration (ns, bigint), root span name or root service. */
export type TraceCondition =
  | { field: 'duration'; op: Comparison; value: bigint }
  | { field: 'rootName' | 'rootServiceName'; op: Comparison; value: string };

export interface SearchQuery {
  /** A trace matches when one of its spans starting in this window meets every span condition. */
  window: TimeWindow;
  spanConditions: SpanCondition[];
  traceConditions: TraceCondition[];
  /** At most this many traces, the ones with the latest matching span first. */
  limit: number;
}

export interface SearchHit {
  summary: TraceSummary;
  /** Start of the trace's latest matching span in the window: the result order. */
  lastMatchUnixNano: bigint;
}

export interface Operation {
  serviceName: string;
  spanName: string;
  /** OTLP SpanKind 0..5. */
  spanKind: number;
}

export interface DependencyLink {
  parent: string;
  child: string;
  callCount: number;
}

export interface ServiceStats {
  spanCount: number;
  errorCount: number;
}

export type TagScope = 'span' | 'resource';

/** An attribute whose values are asked for: a scope, or `any` for both. */
export interface AttributeRef {
  scope: TagScope | 'any';
  key: string;
}

export interface TraceReader {
  /**
   * The trace's summary and spans (sorted by start time) in one round trip, reading only the
   * partitions between its first start and last end; undefined when this tenant has no such trace
   * or none of its spans is stored any more.
   */
  getTrace(tenant: string, traceId: Buffer): Promise<{ summary: TraceSummary; spans: StoredSpan[] } | undefined>;
  /**
   * The trace's spans that start in `window`, sorted by start time: for a caller that already
   * knows the trace's [first start, last end] (a cache). Only the partitions of the window are
   * read. Empty when nothing is stored.
   */
  getTraceSpans(tenant: string, traceId: Buffer, window: TimeWindow): Promise<StoredSpan[]>;
  /** Every stored span of each trace, in one round trip, keyed by trace id (hex). */
  getSpansOfTraces(tenant: string, traces: readonly TraceSummary[]): Promise<Map<string, StoredSpan[]>>;
  /**
   * The traces with a span matching the query, newest match first, at most query.limit. Reads the
   * catalog for candidate services, then the matching spans of those services newest first, page by
   * page, and stops as soon as it has query.limit traces; values that match little or nothing are
   * answered from the GIN indexes on the attribute maps instead of by reading the window.
   */
  searchTraces(tenant: string, query: SearchQuery): Promise<SearchHit[]>;
  /**
   * For each given trace, its spans matching the query's span conditions in its window (at most
   * `perTrace`, earliest first) and how many matched in all, keyed by trace id (hex).
   */
  getMatchingSpans(
    tenant: string,
    query: SearchQuery,
    traces: readonly TraceSummary[],
    perTrace: number,
  ): Promise<Map<string, { spans: StoredSpan[]; matched: number }>>;
  /** Spans and error spans per service of each given trace, keyed by trace id (hex), then service. */
  getServiceStats(tenant: string, traces: readonly TraceSummary[]): Promise<Map<string, Map<string, ServiceStats>>>;
  /** Catalog operations, optionally only services / kinds given, seen in `window` when given. */
  listOperations(
    tenant: string,
    filter?: { services?: string[]; spanNames?: string[]; spanKinds?: number[]; window?: TimeWindow },
  ): Promise<Operation[]>;
  /** Calls between different services (parent span → child span) with the child started in `window`. */
  getDependencies(tenant: string, window: TimeWindow): Promise<DependencyLink[]>;
  /** Span and resource attribute keys in a sample of the newest spans of each service in `window`. */
  listTagNames(tenant: string, window: TimeWindow, samplePerService: number): Promise<Record<TagScope, string[]>>;
  /**
   * Distinct values (stored JSON text) of an attribute among the newest spans that carry it, per
   * service, in `window`, optionally only spans meeting `conditions`; at most `maxValues`.
   */
  listTagValues(
    tenant: string,
    attribute: AttributeRef,
    options: { window: TimeWindow; conditions: SpanCondition[]; samplePerService: number; maxValues: number },
  ): Promise<string[]>;
}
