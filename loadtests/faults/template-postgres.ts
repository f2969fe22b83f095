/**
 * A private PostgreSQL for a fault scenario, started from a copy of a cluster initialised once per
 * suite run: initdb costs 1–2 s, a copy of its result a few tens of ms, and the suite starts one
 * cluster per scenario. run.ts creates the template directory, names it in TH_FAULTS_PG_TEMPLATE
 * and deletes it at the end; without that variable (a scenario run by hand) this is simply
 * test/helpers/private-postgres.ts's startPrivatePostgres().
 *
 * Why it holds state: the handle of the running server, so that stop()/start() act on it.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { startEmbeddedPostgres, type EmbeddedPostgresHandle } from '../../server/storage/embedded.js';
import { freePort, startPrivatePostgres, type PrivatePostgres } from '../../test/helpers/private-postgres.js';

export const TEMPLATE_ENV = 'TH_FAULTS_PG_TEMPLATE';

const log = pino({ level: 'silent' });

/** Initialises the template cluster in `<root>/data` unless it exists (stopped cleanly, database created). */
async function ensureTemplate(root: string): Promise<string> {
  const dataDir = path.join(root, 'data');
  if (existsSync(path.join(dataDir, 'PG_VERSION'))) return dataDir;
  await chmod(root, 0o755);
  const handle = await startEmbeddedPostgres({ dataDir, port: await freePort(), log });
  await handle.stop();
  return dataDir;
}

export async function startFaultPostgres(): Promise<PrivatePostgres> {
  const templateRoot = process.env[TEMPLATE_ENV];
  if (!templateRoot) return startPrivatePostgres();
  const template = await ensureTemplate(templateRoot);
  const root = await mkdtemp(path.join(os.tmpdir(), 'th-pg-'));
  await chmod(root, 0o755); // the postgres OS user must be able to enter it
  const dataDir = path.join(root, 'data');
  execFileSync('cp', ['-a', template, dataDir]); // keeps the owner (postgres) and modes
  const port = await freePort();
  let handle: EmbeddedPostgresHandle | undefined;
  let connectionString = '';
  const start = async (): Promise<void> => {
    if (handle) return;
    handle = await startEmbeddedPostgres({ dataDir, port, log });
    connectionString = handle.connectionString;
  };
  const stop = async (options?: { immediate?: boolean }): Promise<void> => {
    const current = handle;
    handle = undefined;
    await current?.stop(options);
  };
  try {
    await start();
  } catch (err) {
    await rm(root, { recursive: true, force: true });
    throw err;
  }
  return {
    port,
    dataDir,
    get connectionString() {
      return connectionString;
    },
    get running() {
      return handle !== undefined;
    },
    start,
    stop,
    destroy: async () => {
      await stop();
      await rm(root, { recursive: true, force: true });
    },
  };
}
