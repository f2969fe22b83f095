/**
 * Smaller span rows (migrations/000007): end_time and end_time_unix_nano are derived from the exact
 * start and duration instead of stored, and events and links leave out the fields at their OTLP
 * default. Covers spans stored before the migration (they read the same after it), span_view, and a
 * day restore of rows dumped before it.
 */
import { describe, expect, it } from 'vitest';
import { parseEvents, parseLinks, toTraceSpan } from '../../../server/query/trace-model.js';
import { migrate } from '../../../server/storage/migrate.js';
import { RestoreTarget } from '../../../server/storage/restore-queries.js';
import { useTestDatabase } from '../../helpers/db.js';
import { CREATE_PARTITION_20300115, migrateUpTo, SUMMARIZE_BEFORE_000007 } from '../../helpers/older-schema.js';
import { BASE_NS, makeRow, makeTrace } from './span-rows.js';
import { useStorage } from './storage-fixture.js';

const db = useTestDatabase();
const oldDb = useTestDatabase({ empty: true });
const newStorage = useStorage(db);
const newStorageOnOld = useStorage(oldDb);

/** The events and links of one span, once with every default written out (the format before 000007). */
const EVENTS_EXPLICIT =
  '[{"timeUnixNano":"1894701600500000000","name":"retry","attributes":{},"droppedAttributesCount":0},' +
  '{"timeUnixNano":"1894701600600000000","name":"exception","attributes":{"exception.type":"E"},"droppedAttributesCount":2}]';
const LINKS_EXPLICIT =
  `[{"traceId":"${'ab'.repeat(16)}","spanId":"${'cd'.repeat(8)}","traceState":"","flags":0,"attributes":{},"droppedAttributesCount":0},` +
  `{"traceId":"${'ef'.repeat(16)}","spanId":"${'01'.repeat(8)}","traceState":"k=v","flags":257,"attributes":{"l":1},"droppedAttributesCount":3}]`;

describe('migration 000007', () => {
  it('keeps end, duration, events and links of spans stored before it exactly as they read', async () => {
    await migrateUpTo(oldDb.connectionString, 6);
    const before = await newStorageOnOld();
    const old = makeTrace(3, {
      startTimeUnixNano: BASE_NS + 123_456_789n,
      endTimeUnixNano: BASE_NS + 2_000_000_210n,
    });
    await oldDb.query(CREATE_PARTITION_20300115);
    // As a 000006 writer stored them: all five time columns, every default written out.
    for (const [i, row] of old.entries()) {
      await oldDb.query(
        `INSERT INTO spans (tenant, trace_id, span_id, parent_span_id, name, kind, service_name, start_time, end_time,
                            start_time_unix_nano, end_time_unix_nano, duration_ns, status_code, events, links, resource_id)
         VALUES ('old', $1, $2, $3, 'op', 2, 'svc',
                 'epoch'::timestamptz + ($4::bigint / 1000) * interval '1 microsecond',
                 'epoch'::timestamptz + ($5::bigint / 1000) * interval '1 microsecond',
                 $4, $5, $5::bigint - $4::bigint, 0, $6, $7, 0)`,
        [
          row.traceId,
          row.spanId,
          i === 0 ? null : old[0].spanId,
          String(row.startTimeUnixNano),
          String(row.endTimeUnixNano),
          EVENTS_EXPLICIT,
          LINKS_EXPLICIT,
        ],
      );
    }
    await oldDb.query(SUMMARIZE_BEFORE_000007);
    const viewBefore = await oldDb.query(
      `SELECT span_id, end_time, duration_ms FROM span_view WHERE tenant = 'old' ORDER BY span_id`,
    );
    const traceBefore = await before.reader.getTrace('old', old[0].traceId);
    await before.stop();

    const applied = await migrate(oldDb.connectionString);
    expect(applied.applied.map((m) => m.version)).toContain(7);

    const columns = await oldDb.query(
      `SELECT attname FROM pg_attribute WHERE attrelid = 'spans'::regclass AND attnum > 0 AND NOT attisdropped`,
    );
    expect(columns.rows.map((r) => r.attname)).not.toContain('end_time');
    expect(columns.rows.map((r) => r.attname)).not.toContain('end_time_unix_nano');
    const red = await oldDb.query(`SELECT reloptions FROM pg_class WHERE oid = 'red_minute'::regclass`);
    expect(red.rows).toEqual([{ reloptions: ['fillfactor=50'] }]);
    const viewAfter = await oldDb.query(
      `SELECT span_id, end_time, duration_ms FROM span_view WHERE tenant = 'old' ORDER BY span_id`,
    );
    expect(viewAfter.rows).toEqual(viewBefore.rows);
    const durations = old.map((r) => Number(r.endTimeUnixNano - r.startTimeUnixNano) / 1e6).sort();
    expect(viewAfter.rows.map((r) => r.duration_ms).sort()).toEqual(durations);

    const after = await newStorageOnOld();
    const traceAfter = await after.reader.getTrace('old', old[0].traceId);
    expect(traceBefore?.spans).toHaveLength(3);
    expect(traceAfter).toEqual(traceBefore);
  });
});

describe('events and links without their defaults', () => {
  it('are stored without the default fields and read the same as the explicit form', async () => {
    const storage = await newStorage();
    const explicit = makeRow({ events: EVENTS_EXPLICIT, links: LINKS_EXPLICIT });
    const compact = makeRow({
      events:
        '[{"timeUnixNano":"1894701600500000000","name":"retry"},' +
        '{"timeUnixNano":"1894701600600000000","name":"exception","attributes":{"exception.type":"E"},"droppedAttributesCount":2}]',
      links:
        `[{"traceId":"${'ab'.repeat(16)}","spanId":"${'cd'.repeat(8)}"},` +
        `{"traceId":"${'ef'.repeat(16)}","spanId":"${'01'.repeat(8)}","traceState":"k=v","flags":257,"attributes":{"l":1},"droppedAttributesCount":3}]`,
    });
    expect(parseEvents(compact.events)).toEqual(parseEvents(explicit.events));
    expect(parseLinks(compact.links)).toEqual(parseLinks(explicit.links));
    expect(parseLinks(compact.links)[0]).toMatchObject({ traceState: '', flags: 0, droppedAttributesCount: 0 });
    expect(parseLinks(compact.links)[0].attributes).toEqual([]);

    await storage.writer.write([{ tenant: 'compact', rows: [explicit, compact] }]);
    const read = async (traceId: Buffer) => {
      const trace = await storage.reader.getTrace('compact', traceId);
      const { events, links } = toTraceSpan(trace!.spans[0]);
      return { events, links };
    };
    const fromCompact = await read(compact.traceId);
    expect(fromCompact.events).toHaveLength(2);
    expect(fromCompact).toEqual(await read(explicit.traceId));
  });
});

describe('a day restored from a backup made before 000007', () => {
  it('loads rows whose COPY block still carries end_time and end_time_unix_nano', async () => {
    const storage = await newStorage();
    const day = Date.UTC(2030, 0, 15);
    await storage.partitions.ensureRange(new Date(day), new Date(day));
    const row = makeRow();
    const hexId = (b: Buffer) => `\\\\x${b.toString('hex')}`;
    const columns = [
      'tenant',
      'trace_id',
      'span_id',
      'name',
      'kind',
      'service_name',
      'start_time',
      'end_time',
      'start_time_unix_nano',
      'end_time_unix_nano',
      'duration_ns',
      'status_code',
      'resource_id',
    ];
    const line = [
      'restored',
      hexId(row.traceId),
      hexId(row.spanId),
      'op',
      '2',
      'svc',
      '2030-01-15 10:00:00+00',
      '2030-01-15 10:00:00.0015+00',
      String(row.startTimeUnixNano),
      String(row.endTimeUnixNano),
      String(row.endTimeUnixNano - row.startTimeUnixNano),
      '0',
      '7',
    ].join('\t');
    const target = await RestoreTarget.open(db.connectionString);
    try {
      await target.begin();
      expect(await target.loadStagedRows(columns, [line])).toBe(1);
      await target.commit();
    } finally {
      await target.close();
    }
    const { rows } = await db.query(
      `SELECT end_time, duration_ms FROM span_view WHERE tenant = 'restored' AND span_id = $1`,
      [row.spanId.toString('hex')],
    );
    expect(rows).toEqual([{ end_time: new Date('2030-01-15T10:00:00.0015Z'), duration_ms: 1.5 }]);
  });
});
