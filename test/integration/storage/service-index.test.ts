/**
 * The service index keyed on 10 ms start buckets (migrations/000008): a search reads each service's
 * spans bucket by bucket and takes the last bucket whole (WITH TIES), so results must be exactly the
 * newest by start time even where a page or the limit ends inside a crowded bucket.
 */
import { describe, expect, it } from 'vitest';
import type { SpanRow } from '../../../server/decode/types.js';
import { startBucketRange } from '../../../server/storage/search-sql.js';
import type { SearchQuery, TraceCondition } from '../../../server/storage/reader-types.js';
import { useTestDatabase } from '../../helpers/db.js';
import { BASE_NS, makeRow } from './span-rows.js';
import { useStorage } from './storage-fixture.js';

const db = useTestDatabase();
const newStorage = useStorage(db);

const SPANS = 400;
/** 400 one-span traces 0.37 ms apart (27 or 28 per 10 ms bucket), every twelfth a long one. */
const rows: SpanRow[] = Array.from({ length: SPANS }, (_, k) => {
  const start = BASE_NS + BigInt(k) * 370_000n + BigInt((k * 7919) % 997);
  const long = k % 12 === 11;
  return makeRow({
    parentSpanId: null,
    serviceName: 'dense-svc',
    startTimeUnixNano: start,
    endTimeUnixNano: start + (long ? 900_000_000n : 1_000_000n),
  });
});
const WINDOW = { startUnixNano: BASE_NS - 1_000_000_000n, endUnixNano: BASE_NS + 1_000_000_000n };

/** Trace ids of the newest `limit` rows meeting `keep`, newest first. */
function newest(limit: number, keep: (row: SpanRow) => boolean = () => true): string[] {
  return rows
    .filter(keep)
    .sort((a, b) => (a.startTimeUnixNano < b.startTimeUnixNano ? 1 : -1))
    .slice(0, limit)
    .map((r) => r.traceId.toString('hex'));
}

function query(limit: number, traceConditions: TraceCondition[] = []): SearchQuery {
  const service = { target: 'intrinsic', intrinsic: 'service', op: '=', value: 'dense-svc' } as const;
  return { window: WINDOW, spanConditions: [service], traceConditions, limit };
}

describe('the service index on 10 ms start buckets', () => {
  // Within a bucket the index returns spans in the order of their row positions, which follows
  // the order they were written in: a page cut inside a bucket without its ties would lose either
  // the bucket's newest or its oldest spans, depending on that order. Both orders are written.
  it.each([
    ['oldest first', 'dense-a', rows],
    ['newest first', 'dense-b', [...rows].reverse()],
  ])('finds exactly the newest traces when pages end inside a bucket (spans written %s)', async (_, tenant, order) => {
    const storage = await newStorage();
    for (let i = 0; i < 4; i++) await storage.writer.write([{ tenant, rows: order.slice(i * 100, i * 100 + 100) }]);
    await db.query('ANALYZE spans');
    const search = async (q: SearchQuery) =>
      (await storage.reader.searchTraces(tenant, q)).map((hit) => hit.summary.traceId.toString('hex'));

    expect(await search(query(7))).toEqual(newest(7));
    expect(await search(query(33))).toEqual(newest(33));
    // One long trace in twelve: the 10 newest take two pages of 100 spans, and the first page ends
    // inside the bucket of spans 298-324, whose newest and oldest spans include long ones (299, 323).
    const long = (row: SpanRow) => row.endTimeUnixNano - row.startTimeUnixNano > 500_000_000n;
    const slow: TraceCondition = { field: 'duration', op: '>', value: 500_000_000n };
    expect(await search(query(10, [slow]))).toEqual(newest(10, long));
  });

  it('bounds the buckets by the first and last nanosecond of the microseconds searched', () => {
    // 1,000,000 µs = 100 buckets of 10 ms; the last microsecond's nanoseconds reach the same bucket.
    expect(startBucketRange(1_000_000n, 1_009_999n)).toEqual([100n, 100n]);
    expect(startBucketRange(1_000_000n, 1_010_000n)).toEqual([100n, 101n]);
    expect(startBucketRange(999_999n, 1_000_000n)).toEqual([99n, 100n]);
  });

  it('replaces the index keyed on start_time', async () => {
    const { rows: indexes } = await db.query<{ indexname: string; indexdef: string }>(
      "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'spans' AND indexname LIKE 'spans_tenant_service%'",
    );
    expect(indexes).toEqual([
      {
        indexname: 'spans_tenant_service_bucket_idx',
        indexdef: expect.stringContaining('(tenant, service_name, ((start_time_unix_nano / 10000000)))'),
      },
    ]);
  });
});
