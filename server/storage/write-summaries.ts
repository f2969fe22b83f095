/**
 * The rows a write adds to `resources`, `attribute_sets`, `traces`, `operations` and `red_minute`, computed in Node
 * from the spans themselves, for the direct-COPY write (span-writer.ts). That write only commits
 * when every one of its spans is new (a duplicate aborts it), so aggregating all of them here is
 * exactly what INSERT_FROM_STAGE computes in SQL over the rows it inserted.
 *
 * Each summary travels to PostgreSQL as one JSON text (UPSERT_SUMMARIES in sql.ts): bytea as hex,
 * int64 as decimal strings, timestamps as the COPY text's own literals, so nothing is rounded on
 * the way. The SQL side sorts the rows into the same lock order as the staging write.
 */
import { TimestampFormatter } from './copy-text.js';
import { RED_BUCKET_BOUNDS_NS } from './red-sql.js';
import type { ResourceFields } from './resource-id.js';
import type { SpanBatch } from './types.js';
import type { CatalogRows, CommittedCatalog, CommittedIds, WriteCatalog } from './write-catalog.js';

/** The five JSON texts, parameters $1..$5 of UPSERT_SUMMARIES. */
export interface WriteSummaries {
  resources: string;
  traces: string;
  operations: string;
  redMinutes: string;
  attributeSets: string;
}

interface TraceSummary {
  tenant: string;
  traceId: string;
  firstNs: bigint;
  lastNs: bigint;
  spans: number;
  errors: number;
  rootNs: bigint;
  rootSpanId: Buffer | null;
  rootService: string | null;
  rootName: string | null;
}

interface OperationSummary {
  tenant: string;
  service: string;
  name: string;
  kind: number;
  firstNs: bigint;
  lastNs: bigint;
}

interface RedSummary {
  tenant: string;
  minuteNs: bigint;
  service: string;
  name: string;
  kind: number;
  status: number;
  spans: number;
  calls: number;
  durationSumNs: number;
  durationMaxNs: bigint;
  buckets: number[];
}

const NS_PER_MINUTE = 60_000_000_000n;
const STATUS_ERROR = 2;

/** An operation of one tenant, with its RED minutes by status code. */
interface OperationEntry {
  summary: OperationSummary;
  minutes: Array<Map<bigint, RedSummary> | undefined>;
}

/**
 * One pass over the rows. Rows of one trace and one operation come in runs (an exporter sends them
 * together), so the last trace is remembered, and operations are found through nested maps (tenant
 * → service → name → kind) instead of a built key per row.
 */
class Summarizer {
  readonly traces = new Map<string, TraceSummary>();
  readonly operations: OperationEntry[] = [];
  readonly #operationIndex = new Map<string, Map<string, Map<string, OperationEntry[]>>>();
  #lastTraceId: Buffer | undefined;
  #lastTrace: TraceSummary | undefined;

  add(tenant: string, row: Row): void {
    this.#trace(tenant, row);
    const operation = this.#operation(tenant, row);
    const start = row.startTimeUnixNano;
    if (start < operation.summary.firstNs) operation.summary.firstNs = start;
    if (start > operation.summary.lastNs) operation.summary.lastNs = start;
    const minuteNs = start - (((start % NS_PER_MINUTE) + NS_PER_MINUTE) % NS_PER_MINUTE);
    const minutes = (operation.minutes[row.statusCode] ??= new Map());
    let minute = minutes.get(minuteNs);
    if (minute === undefined) {
      minute = {
        tenant,
        minuteNs,
        service: row.serviceName,
        name: row.name,
        kind: row.kind,
        status: row.statusCode,
        spans: 0,
        calls: 0,
        durationSumNs: 0,
        durationMaxNs: 0n,
        buckets: new Array<number>(RED_BUCKET_BOUNDS_NS.length + 1).fill(0),
      };
      minutes.set(minuteNs, minute);
    }
    addToMinute(minute, row.endTimeUnixNano - start, row.samplingWeight);
  }

  #trace(tenant: string, row: Row): void {
    let trace = this.#lastTrace;
    if (trace === undefined || trace.tenant !== tenant || !row.traceId.equals(this.#lastTraceId!)) {
      const traceId = row.traceId.toString('hex');
      const key = `${tenant}\u0000${traceId}`;
      trace = this.traces.get(key);
      if (trace === undefined) {
        trace = {
          tenant,
          traceId,
          firstNs: row.startTimeUnixNano,
          lastNs: row.endTimeUnixNano,
          spans: 0,
          errors: 0,
          rootNs: 0n,
          rootSpanId: null,
          rootService: null,
          rootName: null,
        };
        this.traces.set(key, trace);
      }
      this.#lastTrace = trace;
      this.#lastTraceId = row.traceId;
    }
    addToTrace(trace, row);
  }

  #operation(tenant: string, row: Row): OperationEntry {
    let services = this.#operationIndex.get(tenant);
    if (services === undefined) this.#operationIndex.set(tenant, (services = new Map()));
    let names = services.get(row.serviceName);
    if (names === undefined) services.set(row.serviceName, (names = new Map()));
    let kinds = names.get(row.name);
    if (kinds === undefined) names.set(row.name, (kinds = []));
    let entry = kinds[row.kind];
    if (entry === undefined) {
      const summary = {
        tenant,
        service: row.serviceName,
        name: row.name,
        kind: row.kind,
        firstNs: row.startTimeUnixNano,
        lastNs: row.startTimeUnixNano,
      };
      entry = kinds[row.kind] = { summary, minutes: [] };
      this.operations.push(entry);
    }
    return entry;
  }
}

/**
 * The summaries of a write whose distinct resources and attribute sets are `catalog`
 * (encodeCopyBinary collects them); rows in `committed` are left out (already stored).
 */
export function summarizeWrite(
  batches: readonly SpanBatch[],
  catalog: WriteCatalog,
  committed?: CommittedCatalog,
): WriteSummaries {
  const summarizer = new Summarizer();
  for (const { tenant, rows } of batches) {
    for (const row of rows) summarizer.add(tenant, row);
  }
  const minutes: RedSummary[] = [];
  for (const operation of summarizer.operations) {
    for (const byMinute of operation.minutes) if (byMinute !== undefined) minutes.push(...byMinute.values());
  }
  return {
    resources: catalogJson(catalog.resources, committed?.resources, resourceJson),
    attributeSets: catalogJson(catalog.attributeSets, committed?.attributeSets, attributeSetJson),
    traces: tracesJson(summarizer.traces.values()),
    operations: operationsJson(summarizer.operations.map((o) => o.summary)),
    redMinutes: redJson(minutes),
  };
}

type Row = SpanBatch['rows'][number];

/** The catalog rows not in `committed`, as one JSON array of `rowJson`s. */
function catalogJson<T>(
  rows: CatalogRows<T>,
  committed: CommittedIds | undefined,
  rowJson: (tenant: string, id: bigint, row: T) => string,
): string {
  const out: string[] = [];
  for (const [tenant, ofTenant] of rows) {
    for (const [id, row] of ofTenant) if (!committed?.has(tenant, id)) out.push(rowJson(tenant, id, row));
  }
  return `[${out.join(',')}]`;
}

// The attribute fields and set texts are JSON texts already (decode's contract): embedded as they are.
function resourceJson(tenant: string, id: bigint, r: ResourceFields): string {
  return (
    `{"tenant":${JSON.stringify(tenant)},"id":"${id}",` +
    `"attributes":${r.resourceAttributes},"scope_name":${JSON.stringify(r.scopeName)},` +
    `"scope_version":${JSON.stringify(r.scopeVersion)},"scope_attributes":${r.scopeAttributes}}`
  );
}

function attributeSetJson(tenant: string, id: bigint, json: string): string {
  return `{"tenant":${JSON.stringify(tenant)},"id":"${id}","attributes":${json}}`;
}

/** The same aggregates as UPSERT_TRACES_FROM_INS: the root is the earliest parentless span. */
function addToTrace(trace: TraceSummary, row: Row): void {
  if (row.startTimeUnixNano < trace.firstNs) trace.firstNs = row.startTimeUnixNano;
  if (row.endTimeUnixNano > trace.lastNs) trace.lastNs = row.endTimeUnixNano;
  trace.spans++;
  if (row.statusCode === STATUS_ERROR) trace.errors++;
  if (row.parentSpanId !== null && row.parentSpanId !== undefined) return;
  if (
    trace.rootSpanId === null ||
    row.startTimeUnixNano < trace.rootNs ||
    (row.startTimeUnixNano === trace.rootNs && Buffer.compare(row.spanId, trace.rootSpanId) < 0)
  ) {
    trace.rootNs = row.startTimeUnixNano;
    trace.rootSpanId = row.spanId;
    trace.rootService = row.serviceName;
    trace.rootName = row.name;
  }
}

/** The same sums as insertRedMinutes (sql.ts): weighted calls, duration sum and cumulative buckets. */
function addToMinute(minute: RedSummary, durationNs: bigint, weight: number): void {
  minute.spans++;
  minute.calls += weight;
  const duration = Number(durationNs);
  minute.durationSumNs += weight * duration;
  if (durationNs > minute.durationMaxNs) minute.durationMaxNs = durationNs;
  const buckets = minute.buckets;
  for (let i = 0; i < RED_BUCKET_BOUNDS_NS.length; i++) {
    if (duration <= RED_BUCKET_BOUNDS_NS[i]) buckets[i] += weight;
  }
  buckets[RED_BUCKET_BOUNDS_NS.length] += weight;
}

function tracesJson(traces: Iterable<TraceSummary>): string {
  const timestamps = new TimestampFormatter();
  const out = [];
  for (const t of traces) {
    out.push({
      tenant: t.tenant,
      trace_id: t.traceId,
      first_start: timestamps.format(t.firstNs),
      last_end: timestamps.format(t.lastNs),
      first_ns: String(t.firstNs),
      last_ns: String(t.lastNs),
      spans: t.spans,
      errors: t.errors,
      root_service: t.rootService,
      root_name: t.rootName,
    });
  }
  return JSON.stringify(out);
}

function operationsJson(operations: Iterable<OperationSummary>): string {
  const timestamps = new TimestampFormatter();
  const out = [];
  for (const o of operations) {
    out.push({
      tenant: o.tenant,
      service: o.service,
      name: o.name,
      kind: o.kind,
      first_seen: timestamps.format(o.firstNs),
      last_seen: timestamps.format(o.lastNs),
    });
  }
  return JSON.stringify(out);
}

function redJson(minutes: Iterable<RedSummary>): string {
  const timestamps = new TimestampFormatter();
  const out = [];
  for (const m of minutes) {
    out.push({
      tenant: m.tenant,
      minute: timestamps.format(m.minuteNs),
      service: m.service,
      name: m.name,
      kind: m.kind,
      status: m.status,
      spans: m.spans,
      calls: m.calls,
      duration_sum_ns: m.durationSumNs,
      duration_max_ns: String(m.durationMaxNs),
      buckets: m.buckets,
    });
  }
  return JSON.stringify(out);
}
