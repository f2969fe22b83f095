/**
 * The writer's two paths (span-writer.ts): a direct COPY whose summaries are computed in Node, and
 * the staged INSERT … ON CONFLICT that computes them in SQL. Whatever path a span takes, the
 * summary tables must end up exactly as if the other one had been taken.
 */
import type pg from 'pg';
import { describe, expect, it } from 'vitest';
import type { SpanRow } from '../../../server/decode/types.js';
import { TimestampFormatter } from '../../../server/storage/copy-text.js';
import { useTestDatabase } from '../../helpers/db.js';
import { BASE_NS, makeRow, makeTrace, NS_PER_MS, shuffle } from './span-rows.js';
import { useStorage, waitForBlockedWriter } from './storage-fixture.js';

const db = useTestDatabase();
const newStorage = useStorage(db);

/** Traces of several services, kinds, statuses, minutes, weights and durations, and three resources. */
function varied(): SpanRow[] {
  const rows: SpanRow[] = [];
  for (let t = 0; t < 30; t++) {
    const start = BASE_NS + BigInt(t) * 7_000n * NS_PER_MS; // 30 traces over ~3.5 minutes
    const trace = makeTrace(1 + (t % 6), {
      serviceName: t % 3 === 0 ? 'cart' : 'checkout',
      resourceAttributes: t % 3 === 0 ? '{"service.name":"cart"}' : '{"service.name":"checkout","k8s.pod":"p1"}',
      kind: 1 + (t % 4),
      statusCode: t % 5 === 0 ? 2 : t % 2,
      samplingWeight: t % 4 === 0 ? 2.5 : 1,
      startTimeUnixNano: start,
      endTimeUnixNano: start + BigInt(1 + t * 37) * NS_PER_MS + 123n,
    });
    rows.push(...trace);
  }
  // A trace with two parentless spans at the same instant: the root is the smaller span id.
  const twin = makeTrace(1, { name: 'twin-a' });
  rows.push(...twin, makeRow({ traceId: twin[0].traceId, parentSpanId: null, name: 'twin-b' }));
  return rows;
}

/** Everything the summary tables hold for a tenant, with RED minutes summed over writer slots. */
async function summaries(tenant: string) {
  const traces = await db.query(
    `SELECT encode(trace_id, 'hex') AS trace_id, first_start, last_end, first_start_unix_nano::text,
            last_end_unix_nano::text, span_count::int, error_count::int, root_service_name, root_span_name
       FROM traces WHERE tenant = $1 ORDER BY trace_id`,
    [tenant],
  );
  const operations = await db.query(
    `SELECT service_name, span_name, span_kind, first_seen, last_seen
       FROM operations WHERE tenant = $1 ORDER BY 1, 2, 3`,
    [tenant],
  );
  const red = await db.query(
    `SELECT minute, service_name, span_name, span_kind, status_code, sum(spans)::int AS spans, sum(calls) AS calls,
            round(sum(duration_sum_ms)::numeric, 6)::text AS duration_sum_ms, max(duration_max_ms) AS duration_max_ms,
            tracehouse_sum_buckets(duration_buckets) AS buckets
       FROM red_minute WHERE tenant = $1 GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5`,
    [tenant],
  );
  const resources = await db.query(
    `SELECT resource_id::text, attributes, scope_name, scope_version, scope_attributes
       FROM resources WHERE tenant = $1 ORDER BY 1`,
    [tenant],
  );
  return { traces: traces.rows, operations: operations.rows, red: red.rows, resources: resources.rows };
}

/** Inserts the primary key of `row` (tenant 'race') in the open transaction of `client`: a key held. */
async function holdKey(client: pg.PoolClient, row: SpanRow): Promise<void> {
  const start = new TimestampFormatter().format(row.startTimeUnixNano);
  await client.query(
    `INSERT INTO spans (tenant, trace_id, span_id, name, kind, service_name, start_time,
                        start_time_unix_nano, duration_ns, status_code, resource_id)
     VALUES ('race', $1, $2, 'held', 1, 'other', $3, $4, 0, 0, 0)`,
    [row.traceId, row.spanId, start, String(row.startTimeUnixNano)],
  );
}

describe('write paths', () => {
  it('builds the same summaries, catalog, RED minutes and resources on the copy path as on the staged path', async () => {
    const storage = await newStorage();
    const rows = varied();

    expect(await storage.writer.write([{ tenant: 'copy', rows }])).toEqual({
      inserted: rows.length,
      duplicates: 0,
      path: 'copy',
    });

    // One span stored first makes the full write meet it: every other span goes the staged way.
    const first = rows[0];
    expect((await storage.writer.write([{ tenant: 'staged', rows: [first] }])).path).toBe('copy');
    expect(await storage.writer.write([{ tenant: 'staged', rows: shuffle(rows) }])).toEqual({
      inserted: rows.length - 1,
      duplicates: 1,
      path: 'staged',
    });

    const [viaCopy, viaStage] = await Promise.all([summaries('copy'), summaries('staged')]);
    expect(viaCopy.traces).toHaveLength(31);
    expect(viaCopy.red.length).toBeGreaterThan(10);
    expect(viaCopy.resources).toHaveLength(3);
    expect(viaCopy.resources[0].attributes).toBeTypeOf('object');
    expect(viaCopy).toEqual(viaStage);
  });

  it('writes new spans arriving with already stored ones through the staged path, counting each once', async () => {
    const storage = await newStorage();
    const old = makeTrace(4);
    const fresh = makeTrace(3);
    await storage.writer.write([{ tenant: 'mixed', rows: old }]);
    expect(
      await storage.writer.write([
        { tenant: 'mixed', rows: [...old.slice(0, 2), fresh[0]] },
        { tenant: 'mixed', rows: [...fresh.slice(1), ...old.slice(2)] },
      ]),
    ).toEqual({ inserted: 3, duplicates: 4, path: 'staged' });
    // The next write of new spans only goes straight in again.
    expect((await storage.writer.write([{ tenant: 'mixed', rows: makeTrace(2) }])).path).toBe('copy');
    const { rows: counts } = await db.query(
      "SELECT span_count::int FROM traces WHERE tenant = 'mixed' ORDER BY span_count",
    );
    expect(counts).toEqual([{ span_count: 2 }, { span_count: 3 }, { span_count: 4 }]);
  });

  it('stores a span once when the same new spans are written by concurrent writers', async () => {
    const writers = await Promise.all([newStorage(), newStorage(), newStorage()]);
    for (let round = 0; round < 5; round++) {
      const rows = Array.from({ length: 20 }, () => makeTrace(5)).flat();
      const results = await Promise.all(
        writers.map((s, i) => s.writer.write([{ tenant: 'race', rows: i === 1 ? [...rows].reverse() : rows }])),
      );
      expect(results.reduce((sum, r) => sum + r.inserted, 0)).toBe(rows.length);
      expect(results.reduce((sum, r) => sum + r.duplicates, 0)).toBe(2 * rows.length);
    }
    const { rows } = await db.query(
      `SELECT count(*)::int AS spans, (SELECT sum(span_count)::int FROM traces WHERE tenant = 'race') AS summarized,
              (SELECT sum(spans)::int FROM red_minute WHERE tenant = 'race') AS red_spans
         FROM spans WHERE tenant = 'race'`,
    );
    expect(rows[0]).toEqual({ spans: 500, summarized: 500, red_spans: 500 });
  });

  it('writes a staged write again when PostgreSQL aborts it to break a deadlock', async () => {
    const storage = await newStorage();
    await storage.writer.write([{ tenant: 'race', rows: [makeRow()] }]); // the day's partition exists
    // Three spans in key order (trace ids 01…, 02…, 03…), sent in that order.
    const rows = [1, 2, 3].map((byte) => makeRow({ traceId: Buffer.alloc(16, byte) }));
    const other = await db.pool({ max: 1 }).connect();
    try {
      await other.query('BEGIN');
      await holdKey(other, rows[2]);
      const write = storage.writer.write([{ tenant: 'race', rows }]);
      await waitForBlockedWriter(db); // the direct COPY holds keys 0 and 1 and waits for key 2
      await holdKey(other, rows[1]); // a deadlock: the direct COPY, waiting first, is aborted
      await waitForBlockedWriter(db); // the staged write holds key 0 and waits for key 1
      await holdKey(other, rows[0]); // a deadlock again: the staged write is aborted, then tried again
      await other.query('COMMIT');
      expect(await write).toEqual({ inserted: 0, duplicates: 3, path: 'staged' });
    } finally {
      other.release();
    }
  });

  it('writes rows spread over several binary COPY chunks, multi-byte text intact', async () => {
    const storage = await newStorage();
    // ~2.5 MB of rows: more than two 1 MiB encoding buffers, rows never split between them.
    const rows = Array.from({ length: 300 }, (_, i) =>
      makeRow({
        name: `épée-${i}-${'ü'.repeat(i % 50)}`, // short strings with and without multi-byte characters
        serviceName: i % 2 === 0 ? 'checkout' : 'čheckout-🚀',
        attributes: JSON.stringify({ i, text: `日本語 ${'x'.repeat(8000)} 🌍` }),
      }),
    );
    expect(await storage.writer.write([{ tenant: 'chunks', rows }])).toEqual({
      inserted: 300,
      duplicates: 0,
      path: 'copy',
    });
    const { rows: stored } = await db.query(
      `SELECT name, service_name, attributes->>'text' AS text, (attributes->>'i')::int AS i
         FROM spans WHERE tenant = 'chunks' ORDER BY (attributes->>'i')::int`,
    );
    expect(stored).toHaveLength(300);
    for (const [i, row] of stored.entries()) {
      expect(row).toEqual({
        name: rows[i].name,
        service_name: rows[i].serviceName,
        text: `日本語 ${'x'.repeat(8000)} 🌍`,
        i,
      });
    }
  });
});
