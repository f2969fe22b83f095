/**
 * What docker-compose.prod.yml relies on besides the images, run for real: deploy/make-secrets.sh
 * creates every secret file (a JWT key pair whose query token the real server accepts, a
 * certificate), and deploy/postgres/initdb/10-grafana-reader.sh creates the read-only role of
 * Grafana's PostgreSQL datasource, which can then read the tables tracehouse creates afterwards,
 * across tenants, and write nothing.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate } from '../../../server/storage/migrate.js';
import { REPO_ROOT, ensureDistBuilt } from '../../helpers/build-dist.js';
import { adminQuery, adminUrl, useTestDatabase } from '../../helpers/db.js';
import { spawnTracehouse, type TracehouseProcess } from '../../helpers/tracehouse-process.js';

const db = useTestDatabase({ empty: true });
const role = `th_grafana_${process.pid}_${Math.floor(Math.random() * 1e6)}`;
let secrets: string;
let server: TracehouseProcess | undefined;

function run(file: string, args: string[], env: Record<string, string>): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(
      file,
      args,
      { cwd: REPO_ROOT, env: { PATH: process.env.PATH ?? '', ...env }, timeout: 60_000 },
      (err, stdout, stderr) =>
        resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, output: `${stdout}${stderr}` }),
    );
  });
}

beforeAll(async () => {
  await ensureDistBuilt();
  secrets = await mkdtemp(path.join(os.tmpdir(), 'th-secrets-'));
  const made = await run('sh', ['deploy/make-secrets.sh', secrets], { HOME: os.tmpdir() });
  expect(made, made.output).toMatchObject({ code: 0 });
});

afterAll(async () => {
  await server?.stop();
  await adminQuery(`DROP ROLE IF EXISTS ${pg.escapeIdentifier(role)}`).catch(() => undefined);
  await rm(secrets, { recursive: true, force: true });
});

describe('deploy/postgres/initdb/10-grafana-reader.sh', () => {
  it('creates a read-only role that reads every tenant in tables created after it, and cannot write', async () => {
    const tables = await db.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'public'",
    );
    expect(tables.rows[0].n, 'the database is as new as on a first start').toBe(0);
    const admin = new URL(adminUrl());
    const result = await run('sh', ['deploy/postgres/initdb/10-grafana-reader.sh'], {
      POSTGRES_USER: decodeURIComponent(admin.username) || 'postgres',
      POSTGRES_DB: db.name,
      GRAFANA_DB_USER: role,
      GRAFANA_DB_PASSWORD_FILE: path.join(secrets, 'grafana_db_password'),
      PGHOST: admin.hostname,
      PGPORT: admin.port || '5432',
      PGPASSWORD: decodeURIComponent(admin.password),
    });
    expect(result, result.output).toMatchObject({ code: 0 });

    // tracehouse creates its tables later (its first start), as the owner; rows of two tenants.
    await migrate(db.connectionString);
    await db.query(
      `INSERT INTO traces (tenant, trace_id, first_start, last_end, first_start_unix_nano, last_end_unix_nano, span_count)
       VALUES ('acme', decode(repeat('ab', 16), 'hex'), now(), now(), 1, 2, 1),
              ('beta', decode(repeat('cd', 16), 'hex'), now(), now(), 1, 2, 1)`,
    );

    const url = new URL(db.connectionString);
    url.username = role;
    url.password = await readFile(path.join(secrets, 'grafana_db_password'), 'utf8');
    const reader = new pg.Client({ connectionString: url.toString() });
    await reader.connect();
    try {
      const { rows } = await reader.query<{ n: number }>('SELECT count(*)::int AS n FROM traces');
      expect(rows[0].n).toBe(2); // row-level security bypassed: all tenants
      await reader.query('SELECT count(*) FROM spans');
      await expect(reader.query("DELETE FROM traces WHERE tenant = 'acme'")).rejects.toThrow(/read-only transaction/);
    } finally {
      await reader.end();
    }
    await adminQuery(`SELECT 1`); // the admin connection still works for the cleanup
    const owned = new pg.Client({ connectionString: db.connectionString });
    await owned.connect();
    try {
      await owned.query(`DROP OWNED BY ${pg.escapeIdentifier(role)}`);
    } finally {
      await owned.end();
    }
  });
});

describe('deploy/make-secrets.sh', () => {
  it('creates every secret the compose file names, with consistent credentials', async () => {
    const compose = await readFile(path.join(REPO_ROOT, 'docker-compose.prod.yml'), 'utf8');
    for (const [, file] of compose.matchAll(/file: \.\/deploy\/secrets\/([\w.]+)/g)) {
      const content = await readFile(path.join(secrets, file), 'utf8');
      expect(content.length, file).toBeGreaterThan(20);
      expect(
        content.endsWith('\n') && !file.endsWith('.pem') && !file.startsWith('tls'),
        `${file} has no trailing newline`,
      ).toBe(false);
    }
    const password = await readFile(path.join(secrets, 'postgres_password'), 'utf8');
    expect(await readFile(path.join(secrets, 'database_url'), 'utf8')).toBe(
      `postgres://tracehouse:${password}@postgres:5432/tracehouse`,
    );
    const redis = await readFile(path.join(secrets, 'redis_password'), 'utf8');
    expect(await readFile(path.join(secrets, 'redis_url'), 'utf8')).toBe(`redis://:${redis}@redis:6379/0`);
    const cert = await run('openssl', ['x509', '-in', path.join(secrets, 'tls.crt'), '-noout', '-subject'], {});
    expect(cert.output).toContain('CN = localhost');
  });

  it('keeps what exists when run again', async () => {
    const before = await readFile(path.join(secrets, 'postgres_password'), 'utf8');
    const again = await run('sh', ['deploy/make-secrets.sh', secrets], { HOME: os.tmpdir() });
    expect(again.code).toBe(0);
    expect(again.output).not.toContain('created');
    expect(await readFile(path.join(secrets, 'postgres_password'), 'utf8')).toBe(before);
  });

  it('makes a Grafana query token that the server, given the public key, accepts for reading', async () => {
    server = await spawnTracehouse({
      DATABASE_URL: db.connectionString,
      TRACEHOUSE_PRODUCTION: '1',
      JWT_PUBLIC_KEY_FILE: path.join(secrets, 'jwt_public_key.pem'),
      LOG_LEVEL: 'warn',
    });
    await server.waitReady(30_000);
    const token = await readFile(path.join(secrets, 'grafana_query_token'), 'utf8');
    const withToken = await fetch(`${server.url}/api/services`, { headers: { authorization: `Bearer ${token}` } });
    expect(withToken.status).toBe(200);
    const without = await fetch(`${server.url}/api/services`);
    expect(without.status).toBe(401);
    // Read scope only: it cannot ingest.
    const write = await fetch(`${server.url}/v1/traces`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: '{}',
    });
    expect(write.status).toBe(403);
  });
});
