/**
 * The span ids of a load run. Every request carries a run-wide request number r (1, 2, …); span i
 * of request r gets ids that are a pure function of (run tag, r, i), so the set of keys a run sent
 * is known from r alone and PostgreSQL can say, per request, how many of its spans it holds without
 * the load generator keeping millions of strings.
 *
 *   trace_id (16 B) = mix32(tag, r, t) · r (u32 BE) · t (u16 BE) · tag (u32 BE) · 'LT'
 *   span_id  (8 B)  = r (u32 BE) · i (u16 BE) · 'LS'
 *
 * t is the trace of span i within its template (realisticSpans: 16 spans per trace). The leading
 * mix32 makes trace ids land all over the btree indexes, as random real ids do, instead of in
 * r order. Ids are never all zero (r ≥ 1).
 */

export const TRACE_MARK = 0x4c54; // 'LT'
export const SPAN_MARK = 0x4c53; // 'LS'
export const MAX_REQUESTS = 0xffff_ffff;

/** A 32-bit mixing function (the murmur3 finalizer): spreads consecutive inputs over the range. */
export function mix32(value: number): number {
  let h = value >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Writes the trace id of trace t of request r into `out` at `offset` (16 bytes). */
export function writeTraceId(tag: number, r: number, t: number, out: Buffer, offset = 0): void {
  out.writeUInt32BE(mix32(tag ^ mix32(r) ^ Math.imul(t + 1, 0x9e3779b1)), offset);
  out.writeUInt32BE(r, offset + 4);
  out.writeUInt16BE(t, offset + 8);
  out.writeUInt32BE(tag, offset + 10);
  out.writeUInt16BE(TRACE_MARK, offset + 14);
}

/** Writes the span id of span i of request r into `out` at `offset` (8 bytes). */
export function writeSpanId(r: number, i: number, out: Buffer, offset = 0): void {
  out.writeUInt32BE(r, offset);
  out.writeUInt16BE(i, offset + 4);
  out.writeUInt16BE(SPAN_MARK, offset + 6);
}

export function traceIdHex(tag: number, r: number, t: number): string {
  const id = Buffer.allocUnsafe(16);
  writeTraceId(tag, r, t, id);
  return id.toString('hex');
}

/** A random run tag, never 0. */
export function newRunTag(): number {
  return (Math.floor(Math.random() * 0xffff_fffe) + 1) >>> 0;
}

/** The ids of one request, as bytes and as lowercase hex (for OTLP/JSON and COPY text). */
export interface RequestIds {
  traceIds: Buffer; // traces × 16 bytes
  spanIds: Buffer; // spans × 8 bytes
  traceHex: string; // traces × 32 hex digits
  spanHex: string; // spans × 16 hex digits
}

export function requestIds(tag: number, r: number, traces: number, spans: number): RequestIds {
  if (!(r >= 1 && r <= MAX_REQUESTS)) throw new RangeError(`request number ${r} out of range`);
  const traceIds = Buffer.allocUnsafe(traces * 16);
  for (let t = 0; t < traces; t++) writeTraceId(tag, r, t, traceIds, t * 16);
  const spanIds = Buffer.allocUnsafe(spans * 8);
  for (let i = 0; i < spans; i++) writeSpanId(r, i, spanIds, i * 8);
  return { traceIds, spanIds, traceHex: traceIds.toString('hex'), spanHex: spanIds.toString('hex') };
}

/**
 * Per request number, what PostgreSQL stores for one run tag: rows, distinct (trace_id, span_id)
 * keys, and rows whose ids do not follow the pattern (a span id of another request, a span index
 * past the request's size, a trace that is not its span's). Reads only tenant, trace_id, span_id.
 * Parameters: $1 tenant, $2 tag as 4 bytes, $3 spans per request, $4 spans per trace.
 */
export const STORED_PER_REQUEST = `
SELECT r, count(*)::int AS rows, count(DISTINCT (trace_id, span_id))::int AS keys,
       count(*) FILTER (WHERE NOT valid)::int AS malformed
  FROM (SELECT trace_id, span_id,
               (get_byte(trace_id, 4)::bigint << 24) | (get_byte(trace_id, 5) << 16)
                 | (get_byte(trace_id, 6) << 8) | get_byte(trace_id, 7) AS r,
               octet_length(span_id) = 8
                 AND substring(span_id FROM 1 FOR 4) = substring(trace_id FROM 5 FOR 4)
                 AND substring(span_id FROM 7 FOR 2) = '\\x4c53'::bytea
                 AND substring(trace_id FROM 15 FOR 2) = '\\x4c54'::bytea
                 AND ((get_byte(span_id, 4) << 8) | get_byte(span_id, 5)) < $3
                 AND ((get_byte(span_id, 4) << 8) | get_byte(span_id, 5)) / $4
                     = ((get_byte(trace_id, 8) << 8) | get_byte(trace_id, 9)) AS valid
          FROM spans
         WHERE tenant = $1 AND octet_length(trace_id) = 16 AND substring(trace_id FROM 11 FOR 4) = $2) s
 GROUP BY r`;

/** Rows of the tenant that carry another run's tag or no tag at all. Parameters: $1 tenant, $2 tag. */
export const FOREIGN_ROWS = `
SELECT count(*)::int AS n FROM spans
 WHERE tenant = $1 AND (octet_length(trace_id) <> 16 OR substring(trace_id FROM 11 FOR 4) <> $2)`;

export function tagBytes(tag: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(tag);
  return b;
}
