/**
 * The pieces a load run stands on: one PostgreSQL server for the whole invocation, a migrated
 * template database (with today's partitions) cloned fresh for every run, and the built server
 * (`bin/tracehouse.js serve`) as a child process per run.
 *
 * PostgreSQL is private by default (the embedded server of test/helpers/private-postgres.ts, stock
 * settings, synchronous_commit on), so that its CPU time is only ours and the shared 127.0.0.1:5432
 * is never loaded. LOADTEST_DATABASE_URL (an admin URL) selects another server instead; its CPU is
 * then read from its postmaster when its data directory is readable here, and includes every
 * other client's work.
 */
import pg from 'pg';
import { pino } from 'pino';
import { DEFAULTS } from '../../server/config.js';
import { createStorage } from '../../server/storage/index.js';
import { migrate } from '../../server/storage/migrate.js';
import { ensureDistBuilt } from '../../test/helpers/build-dist.js';
import { startPrivatePostgres, type PrivatePostgres } from '../../test/helpers/private-postgres.js';
import { spawnTracehouse, type TracehouseProcess } from '../../test/helpers/tracehouse-process.js';
import { postmasterPid } from './proc-stats.js';

const DAY_MS = 86_400_000;

export interface DatabaseServer {
  readonly adminUrl: string;
  readonly description: string;
  /** The postmaster's pid, when this machine can see it. */
  readonly postmasterPid: number | undefined;
  urlOf(database: string): string;
  query<R extends pg.QueryResultRow>(text: string, params?: unknown[]): Promise<pg.QueryResult<R>>;
  /** A fresh clone of the migrated template; dropped by the returned function. */
  freshDatabase(name: string): Promise<() => Promise<void>>;
  stop(): Promise<void>;
}

export async function startDatabaseServer(): Promise<DatabaseServer> {
  const external = process.env.LOADTEST_DATABASE_URL;
  let priv: PrivatePostgres | undefined;
  let adminUrl: string;
  if (external) {
    adminUrl = external;
  } else {
    priv = await startPrivatePostgres();
    const url = new URL(priv.connectionString);
    url.pathname = '/postgres';
    adminUrl = url.toString();
  }
  const admin = new pg.Client({ connectionString: adminUrl, application_name: 'tracehouse-loadtest' });
  admin.on('error', () => undefined);
  await admin.connect();
  const dataDir = priv?.dataDir ?? (await admin.query<{ d: string }>('SHOW data_directory')).rows[0].d;
  const { rows } = await admin.query<{ v: string }>(
    "SELECT current_setting('server_version') || ', shared_buffers ' || current_setting('shared_buffers') || " +
      "', synchronous_commit ' || current_setting('synchronous_commit') || ', max_wal_size ' || current_setting('max_wal_size') AS v",
  );
  const template = `th_load_template_${process.pid}`;
  const urlOf = (database: string): string => {
    const url = new URL(adminUrl);
    url.pathname = `/${database}`;
    return url.toString();
  };
  const drop = async (name: string): Promise<void> => {
    await admin.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`);
  };
  await drop(template);
  await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(template)} TEMPLATE template0 ENCODING 'UTF8'`);
  await migrate(urlOf(template), pino({ level: 'warn' }));
  // Partitions are runtime data: create today's and the neighbours so raw COPY finds them too.
  const storage = await createStorage(
    { ...DEFAULTS.storage, poolSize: 2, connectionString: urlOf(template) },
    pino({ level: 'warn' }),
  );
  await storage.partitions.ensureRange(new Date(Date.now() - DAY_MS), new Date(Date.now() + 2 * DAY_MS));
  await storage.stop();

  return {
    adminUrl,
    description: `${external ? 'external' : 'private embedded'} PostgreSQL ${rows[0].v}`,
    postmasterPid: postmasterPid(dataDir),
    urlOf,
    query: (text, params) => admin.query(text, params),
    async freshDatabase(name) {
      await drop(name);
      await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(name)} TEMPLATE ${pg.escapeIdentifier(template)}`);
      return () => drop(name);
    },
    async stop() {
      await drop(template).catch(() => undefined);
      await admin.end();
      await priv?.destroy();
    },
  };
}

let distChecked = false;

/**
 * Starts `tracehouse serve` on `databaseUrl` with default settings (logs at warn) plus `env`, and
 * waits until it is ready. Builds dist/ first when it is older than server/.
 */
export async function startServer(databaseUrl: string, env: Record<string, string> = {}): Promise<TracehouseProcess> {
  if (!distChecked) {
    const build = await ensureDistBuilt();
    if (build.diagnostics) console.warn(`# tsc reported problems while building dist/:\n${build.diagnostics}`);
    distChecked = true;
  }
  const server = await spawnTracehouse({ DATABASE_URL: databaseUrl, LOG_LEVEL: 'warn', ...env });
  try {
    await server.waitReady(60_000);
  } catch (err) {
    await server.stop();
    throw err;
  }
  return server;
}

/**
 * SIGTERM (the server drains: what it accepted is committed or refused) and waits for the exit;
 * SIGKILL after timeoutMs. A profile asked for with --cpu-prof is written on this exit.
 */
export async function stopServer(server: TracehouseProcess, timeoutMs = 30_000): Promise<void> {
  if (server.child.exitCode === null && server.child.signalCode === null) server.child.kill('SIGTERM');
  const exit = await server.waitExit(timeoutMs);
  if (exit === undefined) await server.stop();
}

/** Lines the server logged at error level or above (pino level ≥ 50), for the run report. */
export function serverErrors(server: TracehouseProcess): string[] {
  return server.logs.filter((l) => l.level >= 50).map((l) => String(l.msg ?? JSON.stringify(l)));
}
