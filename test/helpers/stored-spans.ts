/**
 * What PostgreSQL holds, in the terms of an "acknowledged = stored exactly once" check: row counts
 * per span key (`<trace id hex>:<span id hex>`, as otlp-load.ts spells them) and the trace
 * summaries whose span_count disagrees with the span rows.
 */
import pg from 'pg';

type Query = (text: string) => Promise<{ rows: Record<string, unknown>[] }>;

const SPAN_COUNTS = `
SELECT encode(trace_id, 'hex') || ':' || encode(span_id, 'hex') AS key, count(*)::int AS n
  FROM spans
 GROUP BY trace_id, span_id`;

/** Summaries missing, extra, or with a span_count other than the number of stored span rows. */
const SUMMARY_MISMATCHES = `
SELECT coalesce(t.tenant, s.tenant) AS tenant, encode(coalesce(t.trace_id, s.trace_id), 'hex') AS trace_id,
       t.span_count::int AS summary_count, s.n AS stored_count
  FROM traces t
  FULL JOIN (SELECT tenant, trace_id, count(*)::int AS n FROM spans GROUP BY tenant, trace_id) s
    ON s.tenant = t.tenant AND s.trace_id = t.trace_id
 WHERE t.span_count IS DISTINCT FROM s.n
 LIMIT 20`;

export interface StoredSpans {
  /** Rows per span key. */
  counts: Map<string, number>;
  summaryMismatches: Array<{
    tenant: string;
    trace_id: string;
    summary_count: number | null;
    stored_count: number | null;
  }>;
}

export async function readStoredSpans(target: string | Query): Promise<StoredSpans> {
  if (typeof target === 'string') {
    const client = new pg.Client({ connectionString: target, application_name: 'tracehouse-tests' });
    client.on('error', () => undefined);
    await client.connect();
    try {
      return await readStoredSpans((text) => client.query(text));
    } finally {
      await client.end();
    }
  }
  const counts = new Map<string, number>();
  for (const row of (await target(SPAN_COUNTS)).rows) counts.set(row.key as string, row.n as number);
  const summaryMismatches = (await target(SUMMARY_MISMATCHES)).rows as StoredSpans['summaryMismatches'];
  return { counts, summaryMismatches };
}

/** Acknowledged keys that are not stored exactly once (first `limit`), and keys stored more than once. */
export function compareAcknowledged(
  acknowledged: Iterable<string>,
  stored: StoredSpans,
  limit = 20,
): { missing: string[]; duplicated: string[]; acknowledged: number } {
  const missing: string[] = [];
  let count = 0;
  for (const key of acknowledged) {
    count += 1;
    if (!stored.counts.has(key) && missing.length < limit) missing.push(key);
  }
  const duplicated: string[] = [];
  for (const [key, n] of stored.counts) if (n !== 1 && duplicated.length < limit) duplicated.push(`${key} ×${n}`);
  return { missing, duplicated, acknowledged: count };
}
