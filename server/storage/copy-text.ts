/**
 * Span rows → PostgreSQL COPY text format, in the column order of STAGE_COLUMNS (sql.ts). One
 * string per row appended to ~1 MiB chunks; no per-field streams. Timestamps are computed exactly
 * from the bigint nanoseconds (floor to microseconds) without going through floating point.
 * A row's resource and scope travel only with the first row of its (tenant, resource_id) in one
 * encoding, and its shared attributes with the first row of its (tenant, attribute_set_id); later
 * rows send \N there (the staging INSERT stores each resource and attribute set once).
 */
import type { SpanRow } from '../decode/types.js';
import { attributeSetIdOf } from './attribute-set-id.js';
import { ResourceIdResolver } from './resource-id.js';
import type { SpanBatch } from './types.js';
import type { CommittedCatalog } from './write-catalog.js';

const CHUNK_CHARS = 1 << 20;
const NEEDS_ESCAPE = /[\\\n\r\t]/;
const ESCAPABLE = /[\\\n\r\t]/g;
const ESCAPES: Record<string, string> = { '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/** Escapes a text value for COPY text format (backslash, newline, carriage return, tab). */
export function escapeCopyText(value: string): string {
  return NEEDS_ESCAPE.test(value) ? value.replace(ESCAPABLE, (c) => ESCAPES[c]) : value;
}

/** A bytea value in COPY text format: hex input `\x…`, with the backslash escaped. */
function byteaField(value: Buffer | null): string {
  return value === null ? '\\N' : `\\\\x${value.toString('hex')}`;
}

const NS_PER_US = 1000n;

/**
 * Formats unix nanoseconds as a UTC timestamptz literal with microsecond precision, flooring
 * (also for times before 1970): 1700000000123456789n → '2023-11-14 22:13:20.123456+00'.
 */
export class TimestampFormatter {
  #lastSecond = Number.NaN;
  #lastPrefix = '';

  /** Floor of ns / 1000, as a number (exact: |µs| < 2^53 for any year PostgreSQL accepts). */
  static micros(ns: bigint): number {
    let us = ns / NS_PER_US;
    if (ns < 0n && us * NS_PER_US !== ns) us -= 1n;
    return Number(us);
  }

  format(ns: bigint): string {
    const us = TimestampFormatter.micros(ns);
    const second = Math.floor(us / 1_000_000);
    const fraction = us - second * 1_000_000;
    if (second !== this.#lastSecond) {
      this.#lastSecond = second;
      this.#lastPrefix = new Date(second * 1000).toISOString().slice(0, 19).replace('T', ' ');
    }
    return `${this.#lastPrefix}.${String(fraction).padStart(6, '0')}+00`;
  }
}

export interface EncodedRows {
  /** COPY text data, a few ~1 MiB chunks. */
  chunks: Buffer[];
  rowCount: number;
  /** UTC days (since the epoch) of the rows' start times. */
  days: Set<number>;
}

const US_PER_DAY = 86_400_000_000;

/**
 * Encodes every row of every batch, in STAGE_COLUMNS order; with `staged: false`, in SPAN_COLUMNS
 * order (no resource or attribute set columns: what a raw COPY into spans takes). Resources and
 * attribute sets in `committed` are not sent (already stored). Does not mutate the batches.
 */
export function encodeCopyRows(
  batches: readonly SpanBatch[],
  options: { staged?: boolean; committed?: CommittedCatalog } = {},
): EncodedRows {
  const staged = options.staged ?? true;
  const committed = options.committed;
  const chunks: Buffer[] = [];
  const days = new Set<number>();
  const timestamps = new TimestampFormatter();
  const resourceIds = new ResourceIdResolver();
  const sentResources = new Set<string>();
  const sentSets = new Set<string>();
  let chunk = '';
  let rowCount = 0;
  for (const batch of batches) {
    const tenant = escapeCopyText(batch.tenant);
    for (const row of batch.rows) {
      days.add(Math.floor(TimestampFormatter.micros(row.startTimeUnixNano) / US_PER_DAY));
      const resourceId = resourceIds.idOf(row);
      const setId = attributeSetIdOf(row.sharedAttributes);
      let tail = '\n';
      if (staged) {
        const resourceKey = `${resourceId}\t${batch.tenant}`;
        if (sentResources.has(resourceKey) || committed?.resources.has(batch.tenant, resourceId)) tail = NO_RESOURCE;
        else {
          sentResources.add(resourceKey);
          tail = encodeResource(row);
        }
        const setKey = `${setId}\t${batch.tenant}`;
        if (setId === null || sentSets.has(setKey) || committed?.attributeSets.has(batch.tenant, setId)) tail += NO_SET;
        else {
          sentSets.add(setKey);
          tail += `\t${escapeCopyText(row.sharedAttributes)}\n`;
        }
      }
      chunk += encodeRow(tenant, row, timestamps, resourceId, setId, tail);
      rowCount++;
      if (chunk.length >= CHUNK_CHARS) {
        chunks.push(Buffer.from(chunk, 'utf8'));
        chunk = '';
      }
    }
  }
  if (chunk.length > 0) chunks.push(Buffer.from(chunk, 'utf8'));
  return { chunks, rowCount, days };
}

/** The resource columns of a row whose resource was already sent in this encoding. */
const NO_RESOURCE = '\t\\N\t\\N\t\\N\t\\N';
/** The attribute set column and line end of a row whose set was already sent (or that has none). */
const NO_SET = '\t\\N\n';

function encodeResource(r: SpanRow): string {
  return (
    `\t${escapeCopyText(r.resourceAttributes)}\t${escapeCopyText(r.scopeName)}\t` +
    `${escapeCopyText(r.scopeVersion)}\t${escapeCopyText(r.scopeAttributes)}`
  );
}

/** One row; `tail` holds the staging columns (or none) and the line end. */
function encodeRow(
  tenant: string,
  r: SpanRow,
  ts: TimestampFormatter,
  resourceId: bigint,
  setId: bigint | null,
  tail: string,
): string {
  return (
    `${tenant}\t${byteaField(r.traceId)}\t${byteaField(r.spanId)}\t${byteaField(r.parentSpanId)}\t` +
    `${escapeCopyText(r.traceState)}\t${r.flags}\t${escapeCopyText(r.name)}\t${r.kind}\t` +
    `${escapeCopyText(r.serviceName)}\t${ts.format(r.startTimeUnixNano)}\t` +
    `${r.startTimeUnixNano}\t${r.endTimeUnixNano - r.startTimeUnixNano}\t` +
    `${r.statusCode}\t${escapeCopyText(r.statusMessage)}\t${escapeCopyText(r.attributes)}\t` +
    `${escapeCopyText(r.events)}\t${escapeCopyText(r.links)}\t` +
    `${r.droppedAttributesCount}\t${r.droppedEventsCount}\t${r.droppedLinksCount}\t${r.samplingWeight}\t` +
    `${resourceId}\t${setId ?? '\\N'}${tail}`
  );
}
