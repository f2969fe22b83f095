/**
 * How cached values are written into Redis strings, losslessly: ids as hex, nanosecond times as
 * decimal strings (never through a JSON number), JSON columns as the exact text the reader returned.
 * A trace is one JSON array: a format number, its id, two tables of the long strings its spans
 * share (resource and scope attributes), then one array per span. The key prefix carries the
 * format version (qc:v1), so a changed layout never reads an old value.
 */
import type { Operation, StoredSpan, TimeWindow } from '../storage/reader-types.js';

const TRACE_FORMAT = 1;

type SpanTuple = [
  spanId: string,
  parentSpanId: string | null,
  traceState: string,
  flags: number,
  name: string,
  kind: number,
  serviceName: string,
  startTimeUnixNano: string,
  endTimeUnixNano: string,
  statusCode: number,
  statusMessage: string,
  attributes: string,
  resourceAttributes: number,
  scopeName: string,
  scopeVersion: string,
  scopeAttributes: number,
  events: string,
  links: string,
  droppedAttributesCount: number,
  droppedEventsCount: number,
  droppedLinksCount: number,
];

/** Every field of a StoredSpan is encoded: adding one to SpanRow fails to compile until it is. */
export const ENCODED_FIELDS = [
  'traceId',
  'spanId',
  'parentSpanId',
  'traceState',
  'flags',
  'name',
  'kind',
  'serviceName',
  'startTimeUnixNano',
  'endTimeUnixNano',
  'statusCode',
  'statusMessage',
  'attributes',
  'resourceAttributes',
  'scopeName',
  'scopeVersion',
  'scopeAttributes',
  'events',
  'links',
  'droppedAttributesCount',
  'droppedEventsCount',
  'droppedLinksCount',
] as const satisfies ReadonlyArray<keyof StoredSpan>;
type Unencoded = Exclude<keyof StoredSpan, (typeof ENCODED_FIELDS)[number]>;
export const ALL_FIELDS_ENCODED: [Unencoded] extends [never] ? true : Unencoded = true;

/** The trace as a string, or undefined when a span belongs to another trace (never cached). */
export function encodeTrace(traceId: Buffer, spans: readonly StoredSpan[]): string | undefined {
  const resources = new StringTable();
  const scopes = new StringTable();
  const tuples: SpanTuple[] = [];
  for (const s of spans) {
    if (!s.traceId.equals(traceId)) return undefined;
    tuples.push([
      s.spanId.toString('hex'),
      s.parentSpanId === null ? null : s.parentSpanId.toString('hex'),
      s.traceState,
      s.flags,
      s.name,
      s.kind,
      s.serviceName,
      s.startTimeUnixNano.toString(),
      s.endTimeUnixNano.toString(),
      s.statusCode,
      s.statusMessage,
      s.attributes,
      resources.indexOf(s.resourceAttributes),
      s.scopeName,
      s.scopeVersion,
      scopes.indexOf(s.scopeAttributes),
      s.events,
      s.links,
      s.droppedAttributesCount,
      s.droppedEventsCount,
      s.droppedLinksCount,
    ]);
  }
  return JSON.stringify([TRACE_FORMAT, traceId.toString('hex'), resources.values, scopes.values, tuples]);
}

/** The spans of an encoded trace; throws on a value that is not one, or is another trace's. */
export function decodeTrace(text: string, traceId: Buffer): StoredSpan[] {
  const [format, id, resources, scopes, tuples] = JSON.parse(text) as [number, string, string[], string[], SpanTuple[]];
  if (format !== TRACE_FORMAT || id !== traceId.toString('hex') || !Array.isArray(tuples)) {
    throw new Error('cached trace has another format or trace id');
  }
  return tuples.map((t) => ({
    traceId: Buffer.from(traceId),
    spanId: Buffer.from(t[0], 'hex'),
    parentSpanId: t[1] === null ? null : Buffer.from(t[1], 'hex'),
    traceState: t[2],
    flags: t[3],
    name: t[4],
    kind: t[5],
    serviceName: t[6],
    startTimeUnixNano: BigInt(t[7]),
    endTimeUnixNano: BigInt(t[8]),
    statusCode: t[9],
    statusMessage: t[10],
    attributes: t[11],
    resourceAttributes: lookUp(resources, t[12]),
    scopeName: t[13],
    scopeVersion: t[14],
    scopeAttributes: lookUp(scopes, t[15]),
    events: t[16],
    links: t[17],
    droppedAttributesCount: t[18],
    droppedEventsCount: t[19],
    droppedLinksCount: t[20],
  }));
}

export function encodeWindow(window: TimeWindow): string {
  return `${window.startUnixNano} ${window.endUnixNano}`;
}

export function decodeWindow(text: string): TimeWindow {
  const match = /^(\d+) (\d+)$/.exec(text);
  if (!match) throw new Error('cached trace window is malformed');
  return { startUnixNano: BigInt(match[1]), endUnixNano: BigInt(match[2]) };
}

export function encodeOperations(operations: readonly Operation[]): string {
  return JSON.stringify(operations.map((op) => [op.serviceName, op.spanName, op.spanKind]));
}

export function decodeOperations(text: string): Operation[] {
  const rows = JSON.parse(text) as Array<[string, string, number]>;
  if (!Array.isArray(rows)) throw new Error('cached catalog is malformed');
  return rows.map(([serviceName, spanName, spanKind]) => ({ serviceName, spanName, spanKind }));
}

class StringTable {
  readonly values: string[] = [];
  readonly #index = new Map<string, number>();

  indexOf(value: string): number {
    let index = this.#index.get(value);
    if (index === undefined) {
      index = this.values.length;
      this.values.push(value);
      this.#index.set(value, index);
    }
    return index;
  }
}

function lookUp(table: readonly string[], index: number): string {
  const value = table[index];
  if (typeof value !== 'string') throw new Error('cached trace refers to a missing shared string');
  return value;
}
