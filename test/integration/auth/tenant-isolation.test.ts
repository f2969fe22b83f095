/**
 * Reliability catalog row 34 and DESIGN decision 7: the tenant comes from the verified token only.
 * Two tenants ingest the same trace id (and the same span ids); X-Scope-OrgID, a `tenant` query
 * parameter and a `tenant.id` resource attribute never change the stored tenant; and each tenant's
 * PostgreSQL read role (row-level security, migrations/000002) sees only its own rows.
 * The same isolation is checked through the query API (Jaeger v1 trace by id).
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { runTenantRoleCommand } from '../../../server/cli-auth.js';
import { loadConfig } from '../../../server/config.js';
import { createTenantReader } from '../../../server/storage/tenant-readers.js';
import { AUDIENCE, ISSUER, TEST_SECRET, postTraces, secretKey, signToken } from '../../helpers/auth.js';
import { adminQuery, useTestDatabase } from '../../helpers/db.js';
import { buildRequest, type FixtureSpan } from '../../helpers/otlp-fixtures.js';
import { counterValue, startTestServer, type TestServer } from '../../helpers/server.js';

const db = useTestDatabase();
let server: TestServer;
const suffix = `${process.pid}_${randomBytes(3).toString('hex')}`;
const roles = { acme: `th_test_reader_acme_${suffix}`, globex: `th_test_reader_globex_${suffix}` };
const passwords: Record<string, string> = { globex: randomBytes(12).toString('hex') };

const TRACE_ID = randomBytes(16).toString('hex');
const SPAN_IDS = [randomBytes(8).toString('hex'), randomBytes(8).toString('hex'), randomBytes(8).toString('hex')];

beforeAll(async () => {
  server = await startTestServer(
    db.connectionString,
    { auth: { jwtSecret: TEST_SECRET, issuer: ISSUER, audience: AUDIENCE } },
    { listen: true },
  );
});
afterAll(async () => {
  await server?.close();
  for (const role of Object.values(roles)) await adminQuery(`DROP ROLE IF EXISTS ${pg.escapeIdentifier(role)}`);
});

const tokenFor = (tenant: string, scope = 'traces:write') =>
  signToken({ key: secretKey(), alg: 'HS256', claims: { tenant, scope } });

function spans(count: number, resourceAttributes: Record<string, string> = {}): FixtureSpan[] {
  const nowNs = BigInt(Date.now()) * 1_000_000n;
  const resource = { attributes: { 'service.name': 'checkout', ...resourceAttributes } };
  return SPAN_IDS.slice(0, count).map((spanId, i) => ({
    traceId: TRACE_ID,
    spanId,
    name: `op-${i}`,
    startTimeUnixNano: nowNs - 1_000_000n * BigInt(i + 1),
    endTimeUnixNano: nowNs,
    resource,
  }));
}

async function connectAs(role: string, password: string): Promise<pg.Client> {
  const url = new URL(db.connectionString);
  url.username = role;
  url.password = password;
  const client = new pg.Client({ connectionString: url.toString(), application_name: 'tracehouse-tests' });
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

describe('tenant from the token only', () => {
  it('stores two tenants’ spans of the same trace id (same span ids) apart, whatever headers, query and attributes say', async () => {
    const forged = { 'tenant.id': 'globex', tenant: 'globex' };
    const acme = await postTraces(server.url, buildRequest({ spans: spans(3, forged) }).protobuf, {
      token: await tokenFor('acme'),
      headers: { 'x-scope-orgid': 'globex', 'x-tenant': 'globex' },
      query: '?tenant=globex&org=globex',
    });
    expect(acme.status).toBe(200);
    const globex = await postTraces(server.url, buildRequest({ spans: spans(2) }).json, {
      token: await tokenFor('globex'),
      headers: { 'x-scope-orgid': 'acme' },
    });
    expect(globex.status).toBe(200);

    const { rows } = await db.query<{ tenant: string; n: number }>(
      'SELECT tenant, count(*)::int AS n FROM spans WHERE trace_id = $1 GROUP BY tenant ORDER BY tenant',
      [Buffer.from(TRACE_ID, 'hex')],
    );
    expect(rows).toEqual([
      { tenant: 'acme', n: 3 },
      { tenant: 'globex', n: 2 },
    ]);
    const summaries = await db.query<{ tenant: string; span_count: string }>(
      'SELECT tenant, span_count FROM traces WHERE trace_id = $1 ORDER BY tenant',
      [Buffer.from(TRACE_ID, 'hex')],
    );
    expect(summaries.rows).toEqual([
      { tenant: 'acme', span_count: '3' },
      { tenant: 'globex', span_count: '2' },
    ]);
    expect(await counterValue(server.metrics, 'tracehouse_spans_accepted_total', { tenant: 'acme' })).toBe(3);
    expect(await counterValue(server.metrics, 'tracehouse_spans_accepted_total', { tenant: 'globex' })).toBe(2);
  });

  it('answers 403 to a token without traces:write and writes nothing', async () => {
    const response = await postTraces(server.url, buildRequest({ spans: spans(1) }).protobuf, {
      token: await tokenFor('initech', 'traces:read admin'),
    });
    expect(response.status).toBe(403);
    const { rows } = await db.query<{ n: number }>("SELECT count(*)::int AS n FROM spans WHERE tenant = 'initech'");
    expect(rows[0].n).toBe(0);
  });
});

describe('the query API per tenant', () => {
  async function getTrace(tenant: string, scope = 'traces:read', headers: Record<string, string> = {}) {
    const response = await fetch(`${server.url}/api/traces/${TRACE_ID}?tenant=globex`, {
      headers: { authorization: `Bearer ${await tokenFor(tenant, scope)}`, 'x-scope-orgid': 'globex', ...headers },
    });
    return {
      status: response.status,
      body: response.status === 200 ? ((await response.json()) as JaegerTraces) : undefined,
    };
  }

  it('shows each tenant only its own spans of the shared trace id, whatever X-Scope-OrgID says', async () => {
    const acme = await getTrace('acme');
    expect(acme.status).toBe(200);
    expect(acme.body!.data.flatMap((trace) => trace.spans.map((span) => span.operationName)).sort()).toEqual([
      'op-0',
      'op-1',
      'op-2',
    ]);
    const globex = await getTrace('globex', 'traces:read', { 'x-scope-orgid': 'acme' });
    expect(globex.status).toBe(200);
    expect(globex.body!.data.flatMap((trace) => trace.spans).length).toBe(2);
    expect((await getTrace('umbrella')).status).toBe(404);
  });

  it('needs traces:read: a write-only token gets 403', async () => {
    expect((await getTrace('acme', 'traces:write')).status).toBe(403);
  });
});

interface JaegerTraces {
  data: Array<{ spans: Array<{ operationName: string }> }>;
}

describe('PostgreSQL read access per tenant (row-level security)', () => {
  beforeAll(async () => {
    // acme through the CLI command, globex through the storage function it calls.
    const config = loadConfig({}, { storage: { databaseUrl: db.connectionString } });
    const chunks: string[] = [];
    const write = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => chunks.push(String(chunk)) > 0);
    try {
      const code = await runTenantRoleCommand(['acme', '--role', roles.acme], config, pino({ level: 'silent' }));
      expect(code).toBe(0);
    } finally {
      write.mockRestore();
    }
    const output = chunks.join('');
    expect(output).toContain(`user: ${roles.acme}`);
    expect(output).toContain('type: grafana-postgresql-datasource');
    passwords.acme = /^password: (\S+)$/m.exec(output)![1];
    await createTenantReader(db.connectionString, { role: roles.globex, tenant: 'globex', password: passwords.globex });
  });

  it('shows each tenant role only its own spans and trace summaries', async () => {
    for (const [tenant, expected] of [
      ['acme', 3],
      ['globex', 2],
    ] as const) {
      const client = await connectAs(roles[tenant], passwords[tenant]);
      try {
        const visible = await client.query<{ tenant: string; n: number }>(
          'SELECT tenant, count(*)::int AS n FROM spans WHERE trace_id = $1 GROUP BY tenant',
          [Buffer.from(TRACE_ID, 'hex')],
        );
        expect(visible.rows).toEqual([{ tenant, n: expected }]);
        const everything = await client.query<{ tenant: string }>('SELECT DISTINCT tenant FROM spans');
        expect(everything.rows).toEqual([{ tenant }]);
        const traces = await client.query<{ tenant: string }>('SELECT tenant FROM traces');
        expect(traces.rows).toEqual([{ tenant }]);
      } finally {
        await client.end();
      }
    }
  });

  it('cannot be escaped from the session: settings, SET ROLE, partitions, the mapping, the function', async () => {
    const client = await connectAs(roles.acme, passwords.acme);
    try {
      await client.query("SET tracehouse.tenant = 'globex'");
      await client.query("SET app.tenant = 'globex'");
      expect((await client.query('SELECT DISTINCT tenant FROM spans')).rows).toEqual([{ tenant: 'acme' }]);
      expect((await client.query<{ role_name: string }>('SELECT role_name FROM tenant_readers')).rows).toEqual([
        { role_name: roles.acme },
      ]);
      const partition = (
        await db.query<{ name: string }>("SELECT 'spans_' || to_char(now() AT TIME ZONE 'UTC', 'YYYYMMDD') AS name")
      ).rows[0].name;
      await expect(client.query(`SELECT count(*) FROM ${pg.escapeIdentifier(partition)}`)).rejects.toMatchObject({
        code: '42501',
      });
      await expect(client.query(`UPDATE tenant_readers SET tenant = 'globex'`)).rejects.toMatchObject({
        code: '25006',
      });
      await client.query('SET default_transaction_read_only = off');
      await expect(client.query(`UPDATE tenant_readers SET tenant = 'globex'`)).rejects.toMatchObject({
        code: '42501',
      });
      await expect(client.query("SELECT tracehouse_create_tenant_reader('x', 'globex', 'pw')")).rejects.toMatchObject({
        code: '42501',
      });
      await client.query('SET ROLE tracehouse_reader');
      expect((await client.query('SELECT count(*)::int AS n FROM spans')).rows).toEqual([{ n: 0 }]);
    } finally {
      await client.end();
    }
  });

  it('refuses to turn an existing role, or another tenant’s reader, into a reader of this tenant', async () => {
    await expect(
      createTenantReader(db.connectionString, { role: 'postgres', tenant: 'acme', password: 'x' }),
    ).rejects.toThrow(/exists and is not a tenant reader/);
    await expect(
      createTenantReader(db.connectionString, { role: roles.acme, tenant: 'globex', password: 'x' }),
    ).rejects.toThrow(/already reads another tenant/);
  });

  it('leaves the server’s own writes unaffected (the table owner bypasses row-level security)', async () => {
    const response = await postTraces(server.url, buildRequest({ spans: spans(1) }).protobuf, {
      token: await tokenFor('initech'),
    });
    expect(response.status).toBe(200);
    const { rows } = await db.query<{ n: number }>("SELECT count(*)::int AS n FROM spans WHERE tenant = 'initech'");
    expect(rows[0].n).toBe(1);
  });
});
