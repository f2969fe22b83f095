/**
 * A private PostgreSQL for a fault scenario, started from a copy of a cluster initialised once per
 * suite run: initdb costs 1–2 s, a copy of its result a few tens of ms, and the suite starts one
 * cluster per scenario. run.ts creates the template directory, names it in TH_FAULTS_PG_TEMPLATE
 * and deletes it at the end; without that variable (a scenario run by hand) this is simply
 * test/helpers/private-postgres.ts's startPrivatePostgres().
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod } from 'node:fs/promises';
import path from 'node:path';
import { pino } from 'pino';
import { startEmbeddedPostgres } from '../../server/storage/embedded.js';
import {
  freePort,
  makePrivateRoot,
  startPrivatePostgres,
  startPrivatePostgresIn,
  type PrivatePostgres,
} from '../../test/helpers/private-postgres.js';

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
  const root = await makePrivateRoot();
  execFileSync('cp', ['-a', template, path.join(root, 'data')]); // keeps the owner (postgres) and modes
  return startPrivatePostgresIn(root);
}
