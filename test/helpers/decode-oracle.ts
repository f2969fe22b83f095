/**
 * The property every decoder input must satisfy, whatever its bytes (server/decode/index.ts's
 * contract): decodeExportRequest returns a consistent DecodedRequest, or throws a TracehouseError
 * with one of the documented 400 decode codes; nothing else (TH_ERR_INTERNAL is a decoder bug).
 * A consistent result stores only storable rows: valid ids, starts inside the window, ends that fit
 * a bigint, strings
 * without NUL or lone surrogates, JSON columns that parse, attribute counts within the limits.
 * Used by the fuzz scenario (loadtests/faults/scenarios/fuzz-decoders.ts) and by the regression
 * test over saved inputs (test/unit/decode/fuzz-regressions.test.ts).
 */
import { decodeExportRequest } from '../../server/decode/index.js';
import type { DecodeOptions, DecodedRequest, SpanRow, WireFormat } from '../../server/decode/types.js';
import { isTracehouseError } from '../../server/errors.js';

export const DOCUMENTED_DECODE_ERRORS: ReadonlySet<string> = new Set([
  'TH_ERR_DECODE_BAD_PROTOBUF',
  'TH_ERR_DECODE_BAD_JSON',
  'TH_ERR_DECODE_TOO_DEEP',
  'TH_ERR_DECODE_FORBIDDEN_KEY',
]);

/** 'ok' (with the number of rows), 'error' (with the code), or a violation of the contract. */
export type OracleVerdict =
  | { kind: 'ok'; rows: number; spans: number }
  | { kind: 'error'; code: string }
  | { kind: 'violation'; problem: string };

export function decodeAndCheck(body: Buffer, format: WireFormat, options: DecodeOptions): OracleVerdict {
  let result: DecodedRequest;
  try {
    result = decodeExportRequest(body, format, options);
  } catch (err) {
    if (isTracehouseError(err) && DOCUMENTED_DECODE_ERRORS.has(err.code)) return { kind: 'error', code: err.code };
    const what = isTracehouseError(err) ? `${err.code}: ${err.message}` : String((err as Error)?.stack ?? err);
    return { kind: 'violation', problem: `threw ${what.slice(0, 300)}` };
  }
  const problem = checkResult(result, options);
  return problem === ''
    ? { kind: 'ok', rows: result.rows.length, spans: result.spanCount }
    : { kind: 'violation', problem };
}

function checkResult(result: DecodedRequest, options: DecodeOptions): string {
  const rejected = Object.values(result.rejected).reduce((sum, n) => sum + (n ?? 0), 0);
  if (result.spanCount !== result.rows.length + rejected) {
    return `spanCount ${result.spanCount} ≠ rows ${result.rows.length} + rejected ${rejected}`;
  }
  for (const row of result.rows) {
    const problem = checkRow(row, options);
    if (problem !== '') return problem;
  }
  return '';
}

const MAX_INT64 = 2n ** 63n - 1n;
const isZero = (id: Buffer): boolean => id.every((byte) => byte === 0);

function checkRow(row: SpanRow, options: DecodeOptions): string {
  if (row.traceId.length !== 16 || isZero(row.traceId)) return 'stored an invalid trace id';
  if (row.spanId.length !== 8 || isZero(row.spanId)) return 'stored an invalid span id';
  if (row.parentSpanId !== null && row.parentSpanId.length !== 8) return 'stored an invalid parent span id';
  const { minStartUnixNano, maxStartUnixNano } = options.window;
  if (row.startTimeUnixNano < minStartUnixNano || row.startTimeUnixNano > maxStartUnixNano) {
    return `stored a start time outside the window: ${row.startTimeUnixNano}`;
  }
  if (row.endTimeUnixNano < row.startTimeUnixNano) return 'stored a span that ends before it starts';
  // Both are PostgreSQL bigint columns: a larger value fails the COPY of the whole batch.
  if (row.endTimeUnixNano > MAX_INT64) return `stored an end time past int64: ${row.endTimeUnixNano}`;
  const texts = [row.name, row.traceState, row.statusMessage, row.serviceName, row.scopeName, row.scopeVersion];
  const jsons = [row.attributes, row.resourceAttributes, row.scopeAttributes, row.events, row.links];
  for (const text of [...texts, ...jsons]) {
    if (text.includes('\0')) return 'stored a string with NUL';
    if (!text.isWellFormed()) return 'stored a string with a lone surrogate';
  }
  for (const json of jsons) {
    try {
      JSON.parse(json);
    } catch {
      return `stored a JSON column that does not parse: ${json.slice(0, 80)}`;
    }
  }
  const { maxAttributesPerSpan, maxEventsPerSpan, maxLinksPerSpan } = options.limits;
  if (Object.keys(JSON.parse(row.attributes) as object).length > maxAttributesPerSpan) {
    return 'kept too many attributes';
  }
  if ((JSON.parse(row.events) as unknown[]).length > maxEventsPerSpan) return 'kept too many events';
  if ((JSON.parse(row.links) as unknown[]).length > maxLinksPerSpan) return 'kept too many links';
  return '';
}
