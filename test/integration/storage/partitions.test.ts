import { describe, expect, it } from 'vitest';
import { parsePartitionBound } from '../../../server/storage/partitions.js';
import { useTestDatabase } from '../../helpers/db.js';
import { BASE_NS, makeRow, makeTrace, NS_PER_DAY } from './span-rows.js';
import { useStorage } from './storage-fixture.js';

const db = useTestDatabase();
const newStorage = useStorage(db);

const day = (iso: string): Date => new Date(`${iso}T00:00:00Z`);

describe('partitions', () => {
  it('creates the missing daily partitions of a range, named spans_YYYYMMDD with UTC day bounds', async () => {
    const storage = await newStorage();
    const created = await storage.partitions.ensureRange(
      new Date('2029-03-01T13:00:00Z'),
      new Date('2029-03-03T01:00:00Z'),
    );
    expect(created).toEqual(['spans_20290301', 'spans_20290302', 'spans_20290303']);
    expect(await storage.partitions.ensureRange(day('2029-03-02'), day('2029-03-04'))).toEqual(['spans_20290304']);

    const listed = (await storage.partitions.list()).filter((p) => p.name.startsWith('spans_202903'));
    expect(listed).toEqual([
      { name: 'spans_20290301', fromInclusive: day('2029-03-01'), toExclusive: day('2029-03-02') },
      { name: 'spans_20290302', fromInclusive: day('2029-03-02'), toExclusive: day('2029-03-03') },
      { name: 'spans_20290303', fromInclusive: day('2029-03-03'), toExclusive: day('2029-03-04') },
      { name: 'spans_20290304', fromInclusive: day('2029-03-04'), toExclusive: day('2029-03-05') },
    ]);
  });

  it('is safe when several instances create the same range at once', async () => {
    const instances = await Promise.all([newStorage(), newStorage(), newStorage()]);
    const results = await Promise.all(
      instances.map((s) => s.partitions.ensureRange(day('2029-04-01'), day('2029-04-05'))),
    );
    expect(results.flat().sort()).toEqual([
      'spans_20290401',
      'spans_20290402',
      'spans_20290403',
      'spans_20290404',
      'spans_20290405',
    ]);
  });

  it('creates the partition of a day that has none when the writer first sees it', async () => {
    const storage = await newStorage();
    const start = BigInt(Date.UTC(2031, 4, 5, 12)) * 1_000_000n;
    expect((await storage.partitions.list()).some((p) => p.name === 'spans_20310505')).toBe(false);
    const result = await storage.writer.write([
      { tenant: 't1', rows: [makeRow({ startTimeUnixNano: start, endTimeUnixNano: start + 1000n })] },
    ]);
    expect(result).toEqual({ inserted: 1, duplicates: 0, path: 'copy' });
    expect((await storage.partitions.list()).some((p) => p.name === 'spans_20310505')).toBe(true);
  });

  it('recreates a partition dropped behind the writer’s back (stale cache) and retries once', async () => {
    const writerSide = await newStorage();
    const maintenance = await newStorage();
    const start = BigInt(Date.UTC(2031, 6, 1, 12)) * 1_000_000n;
    await writerSide.writer.write([
      { tenant: 't1', rows: [makeRow({ startTimeUnixNano: start, endTimeUnixNano: start + 1000n })] },
    ]);
    expect(await maintenance.partitions.dropBefore(day('2031-07-02'))).toContain('spans_20310701');

    const again = makeRow({ startTimeUnixNano: start + 5n, endTimeUnixNano: start + 1000n });
    expect(await writerSide.writer.write([{ tenant: 't1', rows: [again] }])).toEqual({
      inserted: 1,
      duplicates: 0,
      path: 'copy',
    });
    const { rows } = await db.query(
      "SELECT count(*)::int AS n FROM spans WHERE start_time >= '2031-07-01' AND start_time < '2031-07-02'",
    );
    expect(rows[0].n).toBe(1);
  });

  it('drops partitions whose upper bound is at or before the cutoff, and the traces that ended before it', async () => {
    const storage = await newStorage();
    const d0 = BASE_NS - 40n * NS_PER_DAY; // 2029-12-06
    const old = makeTrace(3, { startTimeUnixNano: d0 });
    const recent = makeTrace(2, { startTimeUnixNano: d0 + 2n * NS_PER_DAY });
    await storage.writer.write([{ tenant: 'drop', rows: [...old, ...recent] }]);

    const cutoff = day('2029-12-08');
    const dropped = await storage.partitions.dropBefore(cutoff);
    expect(dropped).toContain('spans_20291206');
    expect(dropped).not.toContain('spans_20291208');
    const names = (await storage.partitions.list()).map((p) => p.name);
    expect(names).not.toContain('spans_20291206');
    expect(names).toContain('spans_20291208');

    const traces = await db.query<{ span_count: string }>("SELECT span_count FROM traces WHERE tenant = 'drop'");
    expect(traces.rows).toEqual([{ span_count: '2' }]);
    const spans = await db.query("SELECT count(*)::int AS n FROM spans WHERE tenant = 'drop'");
    expect(spans.rows[0].n).toBe(2);
  });

  it('parses partition bounds printed in any session time zone', () => {
    expect(parsePartitionBound("FOR VALUES FROM ('2029-03-01 05:30:00+05:30') TO ('2029-03-01 19:00:00-05')")).toEqual({
      from: day('2029-03-01'),
      to: day('2029-03-02'),
    });
    expect(parsePartitionBound('DEFAULT')).toBeUndefined();
  });
});
