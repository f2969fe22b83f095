/**
 * Resources stored once (migrations/000005): span rows carry a resource_id, the resource and scope
 * live in `resources`, one row per distinct (tenant, resource + scope). Covers the writer, the
 * reader's join, and the migration of spans stored before 000005.
 */
import { describe, expect, it } from 'vitest';
import { listMigrations, migrate } from '../../../server/storage/migrate.js';
import { useTestDatabase } from '../../helpers/db.js';
import { CREATE_PARTITION_20300115, migrateUpTo, SUMMARIZE_BEFORE_000007 } from '../../helpers/older-schema.js';
import { makeRow, makeTrace } from './span-rows.js';
import { useStorage } from './storage-fixture.js';

const db = useTestDatabase();
const emptyDb = useTestDatabase({ empty: true });
const newStorage = useStorage(db);

const BILLING = {
  serviceName: 'billing',
  resourceAttributes: '{"service.name":"billing","host.name":"node-2"}',
};

describe('resources stored once', () => {
  it('stores one resources row per distinct resource and tenant, however many spans and retries', async () => {
    const storage = await newStorage();
    const checkout = makeTrace(20);
    const billing = makeTrace(10, BILLING);
    const scoped = makeTrace(5, { scopeName: 'other-scope', scopeVersion: '2.0.0' });
    const batch = [
      { tenant: 'res-a', rows: [...checkout, ...billing, ...scoped] },
      { tenant: 'res-b', rows: checkout },
    ];
    expect(await storage.writer.write(batch)).toEqual({ inserted: 55, duplicates: 0, path: 'copy' });
    expect(await storage.writer.write(batch)).toEqual({ inserted: 0, duplicates: 55, path: 'staged' });
    await storage.writer.write([{ tenant: 'res-a', rows: [makeRow(), makeRow(BILLING)] }]);

    const { rows } = await db.query(
      `SELECT tenant, attributes ->> 'host.name' AS host, scope_name, count(*)::int AS n
         FROM resources WHERE tenant LIKE 'res-%' GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`,
    );
    expect(rows).toEqual([
      { tenant: 'res-a', host: 'node-1', scope_name: '@opentelemetry/instrumentation-http', n: 1 },
      { tenant: 'res-a', host: 'node-1', scope_name: 'other-scope', n: 1 },
      { tenant: 'res-a', host: 'node-2', scope_name: '@opentelemetry/instrumentation-http', n: 1 },
      { tenant: 'res-b', host: 'node-1', scope_name: '@opentelemetry/instrumentation-http', n: 1 },
    ]);
    const orphans = await db.query(
      `SELECT count(*)::int AS n FROM spans s
        WHERE s.tenant LIKE 'res-%' AND NOT EXISTS (SELECT 1 FROM resources r WHERE r.tenant = s.tenant AND r.resource_id = s.resource_id)`,
    );
    expect(orphans.rows).toEqual([{ n: 0 }]);
  });

  it('reads every span of a trace with its own resource and scope', async () => {
    const storage = await newStorage();
    const rows = makeTrace(6);
    rows[2] = { ...rows[2], ...BILLING };
    rows[4] = { ...rows[4], scopeName: 'db-scope', scopeAttributes: '{"db":true}' };
    await storage.writer.write([{ tenant: 'res-read', rows }]);
    const trace = await storage.reader.getTrace('res-read', rows[0].traceId);
    const bySpan = new Map(trace!.spans.map((s) => [s.spanId.toString('hex'), s]));
    for (const row of rows) {
      const stored = bySpan.get(row.spanId.toString('hex'))!;
      expect(JSON.parse(stored.resourceAttributes)).toEqual(JSON.parse(row.resourceAttributes));
      expect([stored.scopeName, stored.scopeVersion]).toEqual([row.scopeName, row.scopeVersion]);
      expect(JSON.parse(stored.scopeAttributes)).toEqual(JSON.parse(row.scopeAttributes));
    }
  });
});

describe('migration 000005', () => {
  it('moves the resources of spans stored before it into resources, and they read back the same', async () => {
    const all = listMigrations();
    await migrateUpTo(emptyDb.connectionString, 4);
    await emptyDb.query(CREATE_PARTITION_20300115);
    await emptyDb.query(
      `INSERT INTO spans (tenant, trace_id, span_id, name, kind, service_name, start_time, end_time,
                          start_time_unix_nano, end_time_unix_nano, duration_ns, status_code,
                          resource_attributes, scope_name, scope_version)
       SELECT 'old', decode(md5('t' || (g % 3)), 'hex'), substring(decode(md5('s' || g), 'hex') FROM 1 FOR 8),
              'op', 2, 'svc-' || (g % 2), '2030-01-15 10:00:00+00', '2030-01-15 10:00:01+00',
              1894701600000000000, 1894701601000000000, 1000000000, 0,
              jsonb_build_object('service.name', 'svc-' || (g % 2), 'pod', 'p' || (g % 2)), 'scope', '1.0'
         FROM generate_series(1, 40) AS g`,
    );
    await emptyDb.query(SUMMARIZE_BEFORE_000007);

    const result = await migrate(emptyDb.connectionString);
    expect(result.applied.map((m) => m.version)).toEqual(all.filter((m) => m.version >= 5).map((m) => m.version));

    const resources = await emptyDb.query(
      `SELECT attributes ->> 'pod' AS pod, scope_name, scope_version FROM resources WHERE tenant = 'old' ORDER BY 1`,
    );
    expect(resources.rows).toEqual([
      { pod: 'p0', scope_name: 'scope', scope_version: '1.0' },
      { pod: 'p1', scope_name: 'scope', scope_version: '1.0' },
    ]);
    const view = await emptyDb.query(
      `SELECT count(*)::int AS n, bool_and(resource_attributes ->> 'service.name' = service_name) AS agree
         FROM span_view WHERE tenant = 'old'`,
    );
    expect(view.rows).toEqual([{ n: 40, agree: true }]);
  });
});
