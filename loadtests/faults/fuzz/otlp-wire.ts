/**
 * A byte-level OTLP protobuf encoder for attacks and fuzzing: every string field takes raw bytes,
 * so a body can carry NUL, invalid UTF-8 or an encoded surrogate that no SDK encoder would write,
 * and every field can be repeated, omitted or given the wrong wire type by the caller. Field
 * numbers are those of opentelemetry-proto (trace/v1, common/v1, resource/v1).
 */

export type Bytes = Buffer | string;

export const WIRE = { VARINT: 0, I64: 1, LEN: 2, SGROUP: 3, EGROUP: 4, I32: 5 } as const;

/** Shared one-byte varints: generators call varint() a lot, and tiny Buffers are costly to make. */
const SMALL = Array.from({ length: 0x80 }, (_, i) => Buffer.from([i]));
export const EMPTY = Buffer.alloc(0);

export function varint(value: number | bigint): Buffer {
  if (typeof value === 'number' && value >= 0 && value < 0x80 && Number.isInteger(value)) return SMALL[value];
  if (typeof value === 'number' && value >= 0 && value <= 0x7fffffff) {
    const out: number[] = [];
    let v = value;
    while (v >= 0x80) {
      out.push((v & 0x7f) | 0x80);
      v >>>= 7;
    }
    out.push(v);
    return Buffer.from(out);
  }
  let v = BigInt.asUintN(64, BigInt(value));
  const out: number[] = [];
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return Buffer.from(out);
}

export function tag(field: number, wireType: number): Buffer {
  return varint(field * 8 + wireType);
}

const asBuffer = (value: Bytes): Buffer => (typeof value === 'string' ? Buffer.from(value, 'utf8') : value);

/** A length-delimited field: string, bytes or an embedded message. */
export function ld(field: number, value: Bytes): Buffer {
  const bytes = asBuffer(value);
  return Buffer.concat([tag(field, WIRE.LEN), varint(bytes.length), bytes]);
}

export function varintField(field: number, value: number | bigint): Buffer {
  return Buffer.concat([tag(field, WIRE.VARINT), varint(value)]);
}

export function fixed64Field(field: number, value: bigint): Buffer {
  const bytes = Buffer.alloc(8);
  bytes.writeBigUInt64LE(BigInt.asUintN(64, value));
  return Buffer.concat([tag(field, WIRE.I64), bytes]);
}

export function fixed32Field(field: number, value: number): Buffer {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32LE(value >>> 0);
  return Buffer.concat([tag(field, WIRE.I32), bytes]);
}

export function doubleField(field: number, value: number): Buffer {
  const bytes = Buffer.alloc(8);
  bytes.writeDoubleLE(value);
  return Buffer.concat([tag(field, WIRE.I64), bytes]);
}

// --- common/v1 -------------------------------------------------------------------------------

export const anyString = (value: Bytes): Buffer => ld(1, value);
export const anyBool = (value: boolean): Buffer => varintField(2, value ? 1 : 0);
export const anyInt = (value: bigint | number): Buffer => varintField(3, value);
export const anyDouble = (value: number): Buffer => doubleField(4, value);
export const anyArray = (values: Buffer[]): Buffer => ld(5, Buffer.concat(values.map((v) => ld(1, v))));
export const anyKvlist = (pairs: Buffer[]): Buffer => ld(6, Buffer.concat(pairs.map((kv) => ld(1, kv))));
export const anyBytes = (value: Buffer): Buffer => ld(7, value);

/** KeyValue { key = 1; value = 2 } with `value` an encoded AnyValue. */
export function keyValue(key: Bytes, value?: Buffer): Buffer {
  return Buffer.concat([ld(1, key), value === undefined ? EMPTY : ld(2, value)]);
}

// --- trace/v1 ---------------------------------------------------------------------------------

export interface WireSpan {
  traceId: Buffer;
  spanId: Buffer;
  parentSpanId?: Buffer;
  traceState?: Bytes;
  name?: Bytes;
  kind?: number;
  startTimeUnixNano: bigint;
  endTimeUnixNano: bigint;
  attributes?: Buffer[]; // encoded KeyValues
  droppedAttributesCount?: number;
  events?: Array<{ timeUnixNano: bigint; name?: Bytes; attributes?: Buffer[] }>;
  links?: Array<{ traceId: Buffer; spanId: Buffer; traceState?: Bytes; attributes?: Buffer[] }>;
  status?: { code: number; message?: Bytes };
  flags?: number;
}

const repeated = (field: number, items: Buffer[] | undefined): Buffer[] => (items ?? []).map((item) => ld(field, item));
const optional = (present: boolean, make: () => Buffer): Buffer[] => (present ? [make()] : []);

export function encodeSpan(span: WireSpan): Buffer {
  return Buffer.concat([
    ld(1, span.traceId),
    ld(2, span.spanId),
    ...optional(span.traceState !== undefined, () => ld(3, span.traceState!)),
    ...optional(span.parentSpanId !== undefined, () => ld(4, span.parentSpanId!)),
    ...optional(span.name !== undefined, () => ld(5, span.name!)),
    ...optional(span.kind !== undefined, () => varintField(6, span.kind!)),
    fixed64Field(7, span.startTimeUnixNano),
    fixed64Field(8, span.endTimeUnixNano),
    ...repeated(9, span.attributes),
    ...optional(span.droppedAttributesCount !== undefined, () => varintField(10, span.droppedAttributesCount!)),
    ...(span.events ?? []).map((event) =>
      ld(
        11,
        Buffer.concat([
          fixed64Field(1, event.timeUnixNano),
          ...optional(event.name !== undefined, () => ld(2, event.name!)),
          ...repeated(3, event.attributes),
        ]),
      ),
    ),
    ...(span.links ?? []).map((link) =>
      ld(
        13,
        Buffer.concat([
          ld(1, link.traceId),
          ld(2, link.spanId),
          ...optional(link.traceState !== undefined, () => ld(3, link.traceState!)),
          ...repeated(4, link.attributes),
        ]),
      ),
    ),
    ...optional(span.status !== undefined, () =>
      ld(
        15,
        Buffer.concat([
          ...optional(span.status!.message !== undefined, () => ld(2, span.status!.message!)),
          varintField(3, span.status!.code),
        ]),
      ),
    ),
    ...optional(span.flags !== undefined, () => fixed32Field(16, span.flags!)),
  ]);
}

export interface WireResourceSpans {
  resourceAttributes?: Buffer[];
  scopeName?: Bytes;
  scopeVersion?: Bytes;
  scopeAttributes?: Buffer[];
  spans: WireSpan[];
  schemaUrl?: Bytes;
}

/** ExportTraceServiceRequest { resource_spans = 1 } of one ScopeSpans per ResourceSpans. */
export function encodeRequest(groups: WireResourceSpans[]): Buffer {
  return Buffer.concat(
    groups.map((group) => {
      const resource = Buffer.concat(repeated(1, group.resourceAttributes));
      const scope = Buffer.concat([
        ...optional(group.scopeName !== undefined, () => ld(1, group.scopeName!)),
        ...optional(group.scopeVersion !== undefined, () => ld(2, group.scopeVersion!)),
        ...repeated(3, group.scopeAttributes),
      ]);
      const scopeSpans = Buffer.concat([ld(1, scope), ...group.spans.map((span) => ld(2, encodeSpan(span)))]);
      return ld(
        1,
        Buffer.concat([
          ld(1, resource),
          ld(2, scopeSpans),
          ...optional(group.schemaUrl !== undefined, () => ld(3, group.schemaUrl!)),
        ]),
      );
    }),
  );
}
