/**
 * The per-minute RED rollup kept at ingest (migrations/000004, storage/sql.ts INSERT_FROM_STAGE)
 * equals a direct aggregation over the stored spans, weights included, after concurrent and replayed
 * writes; the documented views read it and the spans correctly; row-level security holds through them.
 */
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../server/config.js';
import { connectOpsSession, listSpanPartitions } from '../../../server/storage/backup-queries.js';
import { createStorage } from '../../../server/storage/index.js';
import { RestoreTarget } from '../../../server/storage/restore-queries.js';
import { RED_BUCKET_BOUNDS_NS } from '../../../server/storage/red-sql.js';
import type { Storage } from '../../../server/storage/types.js';
import { adminQuery, useTestDatabase } from '../../helpers/db.js';
import { addBuckets, durationNs, expectedRed, quantileMs, writeSeed, type Seed, type SeedSpan } from './red-seed.js';

const db = useTestDatabase();
let storage: Storage;
let seed: Seed;

interface RedRow {
  tenant: string;
  minute: Date;
  service_name: string;
  span_name: string;
  span_kind: number;
  status_code: number;
  spans: string;
  calls: number;
  duration_sum_ms: number;
  duration_max_ms: number;
  duration_buckets: number[];
}

const SUM_OVER_SLOTS = `
SELECT tenant, minute, service_name, span_name, span_kind, status_code, sum(spans)::text AS spans, sum(calls) AS calls,
       sum(duration_sum_ms) AS duration_sum_ms, max(duration_max_ms) AS duration_max_ms,
       tracehouse_sum_buckets(duration_buckets) AS duration_buckets
  FROM red_minute
 GROUP BY 1, 2, 3, 4, 5, 6`;

beforeAll(async () => {
  const config = loadConfig({}, { storage: { databaseUrl: db.connectionString } });
  storage = await createStorage(
    { ...config.storage, connectionString: db.connectionString, poolSize: 6 },
    pino({ level: 'silent' }),
  );
  seed = await writeSeed(storage, Date.now());
});

afterAll(async () => {
  await storage?.stop();
});

function keyOf(
  r: Pick<RedRow, 'tenant' | 'minute' | 'service_name' | 'span_name' | 'span_kind' | 'status_code'>,
): string {
  return [r.tenant, r.minute.getTime(), r.service_name, r.span_name, r.span_kind, r.status_code].join('|');
}

describe('red_minute', () => {
  it('equals an aggregation of the seeded rows, weights included, after concurrent writers and a replay', async () => {
    const expected = expectedRed(seed.spans);
    const { rows } = await db.query<RedRow>(SUM_OVER_SLOTS);
    expect(rows.length).toBe(expected.size);
    for (const row of rows) {
      const e = expected.get(keyOf(row));
      expect(e, keyOf(row)).toBeDefined();
      expect(Number(row.spans)).toBe(e!.spans);
      expect(row.calls).toBeCloseTo(e!.calls, 9);
      expect(row.duration_sum_ms).toBeCloseTo(e!.durationSumMs, 6);
      expect(row.duration_max_ms).toBeCloseTo(e!.durationMaxMs, 9);
      expect(row.duration_buckets).toEqual(e!.buckets);
    }
    const weighted = seed.spans.reduce((sum, s) => sum + s.row.samplingWeight, 0);
    const total = await db.query<{ calls: number; spans: string }>(
      'SELECT sum(calls) AS calls, sum(spans)::text AS spans FROM red_minute',
    );
    expect(total.rows[0]).toEqual({ calls: weighted, spans: String(seed.spans.length) });
    // Concurrent writers used different rows (slots) of the same key: no writer waited on another's lock.
    const slots = await db.query<{ n: number }>('SELECT count(DISTINCT writer_slot)::int AS n FROM red_minute');
    expect(slots.rows[0].n).toBeGreaterThan(1);
  });

  it('equals a direct aggregation over the spans table in SQL as well', async () => {
    const bounds = RED_BUCKET_BOUNDS_NS.map(
      (b) => `coalesce(sum(sampling_weight) FILTER (WHERE duration_ns <= ${b}), 0)`,
    ).join(', ');
    const direct = await db.query<RedRow>(`
      SELECT tenant, date_bin('1 minute', start_time, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS minute, service_name,
             name AS span_name, kind AS span_kind, status_code, count(*)::text AS spans, sum(sampling_weight) AS calls,
             sum(sampling_weight * duration_ns) / 1e6 AS duration_sum_ms, max(duration_ns) / 1e6 AS duration_max_ms,
             ARRAY[${bounds}, sum(sampling_weight)]::float8[] AS duration_buckets
        FROM spans GROUP BY 1, 2, 3, 4, 5, 6`);
    const rollup = new Map((await db.query<RedRow>(SUM_OVER_SLOTS)).rows.map((r) => [keyOf(r), r]));
    expect(direct.rows.length).toBe(rollup.size);
    for (const row of direct.rows) {
      const r = rollup.get(keyOf(row))!;
      expect(r.spans).toBe(row.spans);
      expect(r.calls).toBeCloseTo(row.calls, 9);
      expect(r.duration_sum_ms).toBeCloseTo(Number(row.duration_sum_ms), 6);
      expect(r.duration_buckets).toEqual(row.duration_buckets);
    }
  });

  it('uses the bucket bounds that the span metrics use', async () => {
    const { rows } = await db.query<{ bounds: number[] }>('SELECT tracehouse_red_bucket_bounds_ms() AS bounds');
    expect(rows[0].bounds).toEqual(RED_BUCKET_BOUNDS_NS.map((ns) => ns / 1e6));
  });

  it('stays exact through restores: rebuilt from the spans, and a day emptied then reloaded counts once', async () => {
    const before = (await db.query<RedRow>(SUM_OVER_SLOTS)).rows
      .map((r) => [keyOf(r), r.calls, r.spans] as const)
      .sort();
    const target = await RestoreTarget.open(db.connectionString);
    try {
      const rebuilt = await target.rebuildSummaries();
      expect(rebuilt.redMinutes).toBeGreaterThan(0);
      const after = (await db.query<RedRow>(SUM_OVER_SLOTS)).rows
        .map((r) => [keyOf(r), r.calls, r.spans] as const)
        .sort();
      expect(after).toEqual(before);
      const session = await connectOpsSession(db.connectionString, 'tracehouse-tests');
      const partitions = await listSpanPartitions(session).finally(() => session.end());
      for (const partition of partitions) await target.emptyPartition(partition);
    } finally {
      await target.close();
    }
    expect((await db.query('SELECT count(*)::int AS n FROM red_minute')).rows).toEqual([{ n: 0 }]);
    const byTenant = new Map<string, SeedSpan['row'][]>();
    for (const s of seed.spans) byTenant.set(s.tenant, [...(byTenant.get(s.tenant) ?? []), s.row]);
    for (const [tenant, rows] of byTenant) await storage.writer.write([{ tenant, rows }]);
    const reloaded = (await db.query<RedRow>(SUM_OVER_SLOTS)).rows
      .map((r) => [keyOf(r), r.calls, r.spans] as const)
      .sort();
    expect(reloaded).toEqual(before);
  });

  it('is dropped with retention, per tenant too', async () => {
    await db.query(
      `INSERT INTO red_minute (tenant, minute, service_name, span_name, span_kind, status_code, spans, calls,
                               duration_sum_ms, duration_max_ms, duration_buckets)
       VALUES ('old', '2001-01-01Z', 's', 'n', 2, 0, 1, 1, 1, 1, '{1}'), ('acme', '2001-01-01Z', 's', 'n', 2, 0, 1, 1, 1, 1, '{1}')`,
    );
    await storage.partitions.deleteTenantBefore('old', new Date('2002-01-01Z'));
    expect((await db.query("SELECT tenant FROM red_minute WHERE minute < '2002-01-01Z'")).rows).toEqual([
      { tenant: 'acme' },
    ]);
    await storage.partitions.dropBefore(new Date('2002-01-01Z'));
    expect((await db.query("SELECT count(*)::int AS n FROM red_minute WHERE minute < '2002-01-01Z'")).rows).toEqual([
      { n: 0 },
    ]);
  });
});

describe('the views for Grafana', () => {
  it('red_minute_view gives calls, errors, error ratio and percentiles per minute and operation', async () => {
    const expected = expectedRed(
      seed.spans.filter((s) => s.tenant === 'acme' && s.row.serviceName === 'api' && s.row.kind === 2),
    );
    const byMinute = new Map<number, { calls: number; errors: number; buckets: number[] }>();
    for (const [key, e] of expected) {
      const [, minute, , , , status] = key.split('|');
      const m = byMinute.get(Number(minute)) ?? { calls: 0, errors: 0, buckets: new Array(e.buckets.length).fill(0) };
      m.calls += e.calls;
      if (status === '2') m.errors += e.calls;
      m.buckets = addBuckets(m.buckets, e.buckets);
      byMinute.set(Number(minute), m);
    }
    const { rows } = await db.query<{
      minute: Date;
      calls: number;
      errors: number;
      error_ratio: number;
      p95_ms: number;
      span_kind: string;
    }>(
      "SELECT minute, calls, errors, error_ratio, p95_ms, span_kind FROM red_minute_view WHERE tenant = 'acme' AND service_name = 'api' AND span_name = 'GET /api' ORDER BY minute",
    );
    expect(rows.length).toBe(byMinute.size);
    for (const row of rows) {
      const e = byMinute.get(row.minute.getTime())!;
      expect(row.span_kind).toBe('server');
      expect(row.calls).toBeCloseTo(e.calls, 9);
      expect(row.errors).toBeCloseTo(e.errors, 9);
      expect(row.error_ratio).toBeCloseTo(e.errors / e.calls, 9);
      expect(row.p95_ms).toBeCloseTo(quantileMs(0.95, e.buckets)!, 6);
    }
  });

  it('span_view, trace_summary_view and service_graph_edges read the spans in readable form', async () => {
    const first = seed.spans.find(
      (s) => s.tenant === 'acme' && s.row.kind === 3 && s.row.serviceName === 'frontend',
    )!.row;
    const span = await db.query(
      'SELECT trace_id, span_id, span_kind, status_code, duration_ms, sampling_weight, is_root FROM span_view WHERE span_id = $1',
      [first.spanId.toString('hex')],
    );
    expect(span.rows).toEqual([
      {
        trace_id: first.traceId.toString('hex'),
        span_id: first.spanId.toString('hex'),
        span_kind: 'client',
        status_code: first.statusCode === 2 ? 'error' : 'unset',
        duration_ms: durationNs(first) / 1e6,
        sampling_weight: first.samplingWeight,
        is_root: false,
      },
    ]);
    const trace = await db.query(
      'SELECT span_count, root_service_name, has_error FROM trace_summary_view WHERE trace_id = $1',
      [first.traceId.toString('hex')],
    );
    expect(trace.rows).toEqual([{ span_count: '4', root_service_name: 'frontend', has_error: first.statusCode === 2 }]);
    const edges = await db.query<{ client: string; server: string; calls: number; failed: number }>(
      `SELECT client, server, sum(calls) AS calls, coalesce(sum(calls) FILTER (WHERE failed), 0) AS failed
         FROM service_graph_edges WHERE tenant = 'acme' AND start_time >= $1 AND start_time < $2 GROUP BY 1, 2`,
      [new Date(seed.startMs), new Date(seed.endMs)],
    );
    const acme = seed.spans.filter((s) => s.tenant === 'acme' && s.row.serviceName === 'api' && s.row.kind === 2);
    expect(edges.rows).toHaveLength(1);
    expect(edges.rows[0]).toMatchObject({ client: 'frontend', server: 'api' });
    expect(edges.rows[0].calls).toBe(acme.reduce((sum, s) => sum + s.row.samplingWeight, 0));
    expect(edges.rows[0].failed).toBe(
      acme.filter((s) => s.row.statusCode === 2).reduce((sum, s) => sum + s.row.samplingWeight, 0),
    );
  });

  it("keep row-level security: a tenant reader sees only its tenant's rollups and view rows", async () => {
    const role = `th_test_red_reader_${process.pid}_${Math.floor(Math.random() * 1e6)}`;
    const password = 'red-reader-password';
    try {
      await db.query('SELECT tracehouse_create_tenant_reader($1, $2, $3)', [role, 'globex', password]);
      const url = new URL(db.connectionString);
      url.username = role;
      url.password = password;
      const client = new pg.Client({ connectionString: url.toString() });
      await client.connect();
      try {
        for (const relation of [
          'red_minute',
          'red_minute_view',
          'span_view',
          'trace_summary_view',
          'service_graph_edges',
        ]) {
          const { rows } = await client.query(`SELECT DISTINCT tenant FROM ${relation}`);
          expect(rows, relation).toEqual([{ tenant: 'globex' }]);
        }
      } finally {
        await client.end();
      }
    } finally {
      await adminQuery(`DROP OWNED BY ${pg.escapeIdentifier(role)}`).catch(() => undefined);
      await adminQuery(`DROP ROLE IF EXISTS ${pg.escapeIdentifier(role)}`);
    }
  });
});
