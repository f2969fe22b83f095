import pg from 'pg';
import { describe, expect, it } from 'vitest';
import type { SpanRow } from '../../../server/decode/types.js';
import { isDataError, isRetryableStorageError } from '../../../server/storage/retryable.js';
import { useTestDatabase } from '../../helpers/db.js';
import { makeRow, makeTrace, NS_PER_MS, shuffle } from './span-rows.js';
import { useStorage, waitForBlockedWriter } from './storage-fixture.js';

const db = useTestDatabase();
const newStorage = useStorage(db);

const hex = (b: Buffer | null): string | null => (b === null ? null : b.toString('hex'));

async function countTrace(tenant: string, trace: Buffer): Promise<number> {
  const { rows } = await db.query('SELECT count(*)::int AS n FROM spans WHERE tenant = $1 AND trace_id = $2', [
    tenant,
    trace,
  ]);
  return rows[0].n;
}

async function summary(tenant: string, trace: Buffer) {
  const { rows } = await db.query(
    `SELECT span_count::int, error_count::int, root_service_name, root_span_name,
            first_start_unix_nano::text, last_end_unix_nano::text,
            to_char(first_start AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') AS first_start,
            to_char(last_end AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') AS last_end
       FROM traces WHERE tenant = $1 AND trace_id = $2`,
    [tenant, trace],
  );
  return rows[0];
}

describe('span writer', () => {
  it('round-trips every column exactly: ns timestamps, bytea ids, jsonb with big ints, unicode and escapes', async () => {
    const storage = await newStorage();
    const start = 1_894_700_000_123_456_789n; // 2030-01-15 09:33:20.123456789: the 789 ns are floored away
    const row: SpanRow = makeRow({
      parentSpanId: null,
      traceState: 'vendor=a\\b,other=1',
      flags: 769,
      name: 'naïve\ttab\nnewline\\backslash 🌍 日本語',
      kind: 5,
      serviceName: 'sérvice',
      startTimeUnixNano: start,
      endTimeUnixNano: start + 2_000_000_210n,
      statusCode: 2,
      statusMessage: 'boom\r\n"quoted"',
      attributes: JSON.stringify({ s: 'é\n\t"\\', emoji: '🚀' }).replace(
        '}',
        ',"big":9223372036854775807,"neg":-9223372036854775808}',
      ),
      resourceAttributes: '{"service.name":"sérvice","arr":[1,2.5,true,null,{"k":"v"}]}',
      scopeName: 'scope\\name',
      scopeVersion: '1.2.3',
      scopeAttributes: '{"x":"\\u00e9"}',
      events:
        '[{"timeUnixNano":"1894700000123456999","name":"exception","attributes":{"exception.message":"line1\\nline2"}}]',
      links: '[{"traceId":"0102","spanId":"0304","attributes":{}}]',
      droppedAttributesCount: 3,
      droppedEventsCount: 4,
      droppedLinksCount: 5,
    });
    expect(await storage.writer.write([{ tenant: 'tenant\\with\ttab', rows: [row] }])).toEqual({
      inserted: 1,
      duplicates: 0,
      path: 'copy',
    });

    const { rows } = await db.query(
      `SELECT tenant, trace_id, span_id, parent_span_id, trace_state, flags, name, kind, service_name,
              to_char(start_time AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') AS start_time,
              to_char(tracehouse_nanos_to_timestamptz(start_time_unix_nano + duration_ns) AT TIME ZONE 'UTC',
                      'YYYY-MM-DD HH24:MI:SS.US') AS end_time,
              start_time_unix_nano::text, (start_time_unix_nano + duration_ns)::text AS end_time_unix_nano,
              duration_ns::text, status_code, status_message,
              s.attributes = $2::jsonb AS attributes_equal, s.attributes->>'big' AS big, s.attributes->>'neg' AS neg,
              s.attributes->>'s' AS s, r.attributes = $3::jsonb AS resource_equal,
              r.scope_name, r.scope_version, r.scope_attributes->>'x' AS scope_x,
              events = $4::jsonb AS events_equal, events->0->'attributes'->>'exception.message' AS event_message,
              links = $5::jsonb AS links_equal,
              dropped_attributes_count, dropped_events_count, dropped_links_count
         FROM spans s JOIN resources r USING (tenant, resource_id) WHERE span_id = $1`,
      [row.spanId, row.attributes, row.resourceAttributes, row.events, row.links],
    );
    expect(rows).toHaveLength(1);
    const got = rows[0];
    expect({ ...got, trace_id: hex(got.trace_id), span_id: hex(got.span_id) }).toEqual({
      tenant: 'tenant\\with\ttab',
      trace_id: hex(row.traceId),
      span_id: hex(row.spanId),
      parent_span_id: null,
      trace_state: 'vendor=a\\b,other=1',
      flags: 769,
      name: 'naïve\ttab\nnewline\\backslash 🌍 日本語',
      kind: 5,
      service_name: 'sérvice',
      start_time: '2030-01-15 09:33:20.123456',
      end_time: '2030-01-15 09:33:22.123456',
      start_time_unix_nano: '1894700000123456789',
      end_time_unix_nano: '1894700002123456999',
      duration_ns: '2000000210',
      status_code: 2,
      status_message: 'boom\r\n"quoted"',
      attributes_equal: true,
      big: '9223372036854775807',
      neg: '-9223372036854775808',
      s: 'é\n\t"\\',
      resource_equal: true,
      scope_name: 'scope\\name',
      scope_version: '1.2.3',
      scope_x: 'é',
      events_equal: true,
      event_message: 'line1\nline2',
      links_equal: true,
      dropped_attributes_count: 3,
      dropped_events_count: 4,
      dropped_links_count: 5,
    });

    const child = makeRow({ traceId: row.traceId, startTimeUnixNano: start + 7n });
    await storage.writer.write([{ tenant: 'tenant\\with\ttab', rows: [child] }]);
    const parent = await db.query('SELECT parent_span_id FROM spans WHERE span_id = $1', [child.spanId]);
    expect(hex(parent.rows[0].parent_span_id)).toBe(hex(child.parentSpanId));
  });

  it('writes nothing for an empty write', async () => {
    const storage = await newStorage();
    expect(await storage.writer.write([])).toEqual({ inserted: 0, duplicates: 0, path: 'copy' });
    expect(await storage.writer.write([{ tenant: 't', rows: [] }])).toEqual({
      inserted: 0,
      duplicates: 0,
      path: 'copy',
    });
  });

  it('stores each span once when the same batch is replayed 3 times, and span_count stays right', async () => {
    const storage = await newStorage();
    const rows = [...makeTrace(5), ...makeTrace(3, { statusCode: 2 })];
    const batch = { tenant: 'replay', rows };
    const results = [];
    for (let i = 0; i < 3; i++) results.push(await storage.writer.write([batch]));
    expect(results).toEqual([
      { inserted: 8, duplicates: 0, path: 'copy' },
      { inserted: 0, duplicates: 8, path: 'staged' },
      { inserted: 0, duplicates: 8, path: 'staged' },
    ]);
    // A replay inside one write (two requests carrying the same spans) is deduplicated too.
    expect(await storage.writer.write([batch, batch])).toEqual({ inserted: 0, duplicates: 16, path: 'staged' });

    const { rows: summaries } = await db.query<{ span_count: string; error_count: string }>(
      "SELECT span_count, error_count FROM traces WHERE tenant = 'replay' ORDER BY span_count",
    );
    expect(summaries).toEqual([
      { span_count: '3', error_count: '3' },
      { span_count: '5', error_count: '0' },
    ]);
    const { rows: n } = await db.query("SELECT count(*)::int AS n FROM spans WHERE tenant = 'replay'");
    expect(n[0].n).toBe(8);
  });

  it('keeps the same span id of different tenants apart', async () => {
    const storage = await newStorage();
    const row = makeRow();
    expect(
      await storage.writer.write([
        { tenant: 'a', rows: [row] },
        { tenant: 'b', rows: [row] },
      ]),
    ).toEqual({ inserted: 2, duplicates: 0, path: 'copy' });
  });

  it('builds one correct trace summary from spans spread over many batches, root last', async () => {
    const storage = await newStorage();
    const rows = makeTrace(10);
    const [root, ...children] = rows;
    children[3] = { ...children[3], statusCode: 2 };
    children[8] = { ...children[8], endTimeUnixNano: root.startTimeUnixNano + 50n * NS_PER_MS + 999n };
    for (let i = 0; i < children.length; i += 3) {
      await storage.writer.write([{ tenant: 'spread', rows: children.slice(i, i + 3) }]);
    }
    const before = await summary('spread', root.traceId);
    expect(before).toMatchObject({ span_count: 9, error_count: 1, root_service_name: null, root_span_name: null });

    await storage.writer.write([{ tenant: 'spread', rows: [{ ...root, serviceName: 'frontend', name: 'GET /' }] }]);
    expect(await summary('spread', root.traceId)).toEqual({
      span_count: 10,
      error_count: 1,
      root_service_name: 'frontend',
      root_span_name: 'GET /',
      first_start_unix_nano: String(root.startTimeUnixNano),
      last_end_unix_nano: String(root.startTimeUnixNano + 50n * NS_PER_MS + 999n),
      first_start: '2030-01-15 10:00:00.000000',
      last_end: '2030-01-15 10:00:00.050000',
    });
  });

  it('never deadlocks two concurrent writers with overlapping rows in different orders, and stores each row once', async () => {
    const [a, b] = await Promise.all([newStorage(), newStorage()]);
    const traces = Array.from({ length: 40 }, () => makeTrace(6));
    const all = traces.flat();
    for (let round = 0; round < 5; round++) {
      const batchesA = chunk(shuffle(all), 48).map((rows) => ({ tenant: 'race', rows }));
      const batchesB = chunk(shuffle(all).reverse(), 60).map((rows) => ({ tenant: 'race', rows }));
      const [ra, rb] = await Promise.all([writeAll(a, batchesA), writeAll(b, batchesB)]);
      expect(ra.inserted + rb.inserted).toBe(round === 0 ? all.length : 0);
      expect(ra.inserted + ra.duplicates + rb.inserted + rb.duplicates).toBe(2 * all.length);
    }
    const { rows } = await db.query(
      `SELECT count(*)::int AS spans, count(DISTINCT (trace_id, span_id))::int AS distinct_spans,
              (SELECT sum(span_count)::int FROM traces WHERE tenant = 'race') AS summarized,
              (SELECT count(*)::int FROM traces WHERE tenant = 'race') AS traces
         FROM spans WHERE tenant = 'race'`,
    );
    expect(rows[0]).toEqual({
      spans: all.length,
      distinct_spans: all.length,
      summarized: all.length,
      traces: traces.length,
    });
  });

  it('rejects a batch PostgreSQL refuses as a data error, commits none of it, and keeps working', async () => {
    const storage = await newStorage();
    const good = makeRow();
    const bad = makeRow({ attributes: '{"not json' });
    const err = await storage.writer.write([{ tenant: 'poison', rows: [good, bad] }]).catch((e: unknown) => e);
    expect(isDataError(err)).toBe(true);
    expect(isRetryableStorageError(err)).toBe(false);
    expect(await countTrace('poison', good.traceId)).toBe(0);
    expect(await storage.writer.write([{ tenant: 'poison', rows: [good] }])).toEqual({
      inserted: 1,
      duplicates: 0,
      path: 'copy',
    });
  });

  it('classifies a backend terminated during a write as retryable, commits nothing, and recovers', async () => {
    const storage = await newStorage();
    const rows = makeTrace(20);
    const blocker = db.pool({ max: 1 });
    const lockHolder = await blocker.connect();
    try {
      // Hold the traces table so the writer's INSERT blocks mid-transaction, then kill its backend.
      await lockHolder.query('BEGIN');
      await lockHolder.query('LOCK TABLE traces IN ACCESS EXCLUSIVE MODE');
      const writing = storage.writer.write([{ tenant: 'killed', rows }]).then(
        () => undefined,
        (e: unknown) => e,
      );
      const pid = await waitForBlockedWriter(db);
      await db.query('SELECT pg_terminate_backend($1)', [pid]);
      const err = await writing;
      expect(err).toBeInstanceOf(Error);
      expect(isRetryableStorageError(err)).toBe(true);
    } finally {
      await lockHolder.query('ROLLBACK');
      lockHolder.release();
    }
    expect(await countTrace('killed', rows[0].traceId)).toBe(0);
    expect(await storage.writer.write([{ tenant: 'killed', rows }])).toEqual({
      inserted: 20,
      duplicates: 0,
      path: 'copy',
    });
  });

  it('classifies a statement timeout as retryable', async () => {
    const pool = db.pool({ max: 1, statement_timeout: 50 });
    const err = await pool.query('SELECT pg_sleep(1)').catch((e: unknown) => e);
    expect((err as { code?: string }).code).toBe('57014');
    expect(isRetryableStorageError(err)).toBe(true);
  });

  it('classifies an unreachable server as retryable', async () => {
    const client = new pg.Client({ host: '127.0.0.1', port: 1, connectionTimeoutMillis: 2000 });
    const err = await client.connect().catch((e: unknown) => e);
    expect(isRetryableStorageError(err)).toBe(true);
  });
});

function chunk<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

async function writeAll(
  storage: Awaited<ReturnType<ReturnType<typeof useStorage>>>,
  batches: { tenant: string; rows: SpanRow[] }[],
) {
  const total = { inserted: 0, duplicates: 0 };
  for (const batch of batches) {
    const r = await storage.writer.write([batch]);
    total.inserted += r.inserted;
    total.duplicates += r.duplicates;
  }
  return total;
}
