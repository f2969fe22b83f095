/**
 * Version mismatches are refused with a message that says what to do, before anything is written:
 * a backup of a database whose schema is newer than this tracehouse, an archive written by a newer
 * pg_dump than the local pg_restore, and `migrate --check` on pending and on too-new schemas.
 */
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runOpsCommand } from '../../../server/cli-ops.js';
import { loadConfig } from '../../../server/config.js';
import { formatManifest, formatSums, parseManifest } from '../../../server/ops/backup/manifest.js';
import { listMigrations } from '../../../server/storage/migrate.js';
import { useTestDatabase } from '../../helpers/db.js';
import { startTestServer, type TestServer } from '../../helpers/server.js';
import { captureIo, dayStart, listObjects, useExtraDatabases, useTempDirs, writeSpansAt } from './backup-helpers.js';

const newer = useTestDatabase();
const tempDir = useTempDirs();
const extraDatabase = useExtraDatabases();
const KNOWN = listMigrations().at(-1)!.version;
let server: TestServer;

async function run(
  command: string,
  args: string[],
  databaseUrl: string,
): Promise<{ code: number; out: string; err: string }> {
  const io = captureIo();
  const code = await runOpsCommand(command, args, loadConfig({}, { storage: { databaseUrl } }), io);
  return { code, out: io.out(), err: io.err() };
}

beforeAll(async () => {
  server = await startTestServer(newer.connectionString);
  await writeSpansAt(server.storage, dayStart(1) + 60_000, { traces: 5, perTrace: 4 });
  // A newer tracehouse migrated this database further than this code knows.
  await newer.query("INSERT INTO schema_migrations (version, name) VALUES (999, 'from_the_future')");
});
afterAll(async () => {
  await server?.close();
});

describe('a backup from a newer schema', () => {
  it('is taken (with a warning) but refused by restore, which says which tracehouse can restore it', async () => {
    const dir = path.join(await tempDir(), 'newer');
    const backup = await run('backup', ['--out', dir], newer.connectionString);
    expect(backup.code, backup.err).toBe(0);
    expect(backup.err).toContain(`schema version 999, newer than this tracehouse knows (${KNOWN})`);
    expect(parseManifest(await readFile(path.join(dir, 'manifest.json'), 'utf8')).schemaVersion).toBe(999);

    const empty = await extraDatabase({ empty: true });
    for (const args of [
      ['--from', dir],
      ['--from', dir, '--dry-run'],
    ]) {
      const restore = await run('restore', args, empty);
      expect(restore.code).toBe(1);
      expect(restore.err).toMatch(
        new RegExp(
          `the backup has schema version 999, but this tracehouse \\(\\S+\\) knows schema versions up to ${KNOWN}: ` +
            'restore it with a tracehouse at least as new as the one that made the backup',
        ),
      );
      expect(restore.err).toContain('nothing was written');
    }
    expect(await listObjects(empty)).toEqual([]);
  });
});

describe('an archive written by a newer pg_dump', () => {
  it('is refused by verify and restore: the local pg_restore cannot read it', async () => {
    const dir = path.join(await tempDir(), 'pgdump99');
    const taken = await run(
      'backup',
      ['--out', dir, '--partition', new Date(dayStart(1)).toISOString().slice(0, 10)],
      newer.connectionString,
    );
    expect(taken.code, taken.err).toBe(0);
    // Rewrite the manifest as a pg_dump 99 would have, with consistent checksums.
    const manifest = parseManifest(await readFile(path.join(dir, 'manifest.json'), 'utf8'));
    manifest.tool.pgDumpMajor = 99;
    manifest.tool.pgDump = '99.1';
    const text = formatManifest(manifest);
    await writeFile(path.join(dir, 'manifest.json'), text);
    const sums = (await readFile(path.join(dir, 'SHA256SUMS'), 'utf8'))
      .split('\n')
      .filter((line) => line && !line.endsWith('  manifest.json'))
      .map((line) => ({ sha256: line.slice(0, 64), file: line.slice(66) }));
    await writeFile(
      path.join(dir, 'SHA256SUMS'),
      formatSums([{ file: 'manifest.json', sha256: createHash('sha256').update(text).digest('hex') }, ...sums]),
    );

    const verify = await run('verify', ['--from', dir], newer.connectionString);
    expect(verify.code).toBe(1);
    expect(verify.out).toMatch(
      /pg_restore 1\d\.\d+ cannot read archives written by pg_dump 99 .*install postgresql-client-99/,
    );

    const empty = await extraDatabase({ empty: true });
    const restore = await run('restore', ['--from', dir], empty);
    expect(restore.code).toBe(1);
    expect(restore.err).toContain('cannot read archives written by pg_dump 99');
    expect(await listObjects(empty)).toEqual([]);
  });
});

describe('migrate --check', () => {
  it('exits 0 on a current schema, 1 with the list when migrations are pending, 1 when the database is newer', async () => {
    const current = await run('migrate', ['--check'], await extraDatabase());
    expect(current).toMatchObject({ code: 0, out: `schema is current: version ${KNOWN}\n` });

    const pending = await run('migrate', ['--check'], await extraDatabase({ empty: true }));
    expect(pending.code).toBe(1);
    expect(pending.out).toContain(`${KNOWN} migration(s) pending (database at version 0, this tracehouse at ${KNOWN})`);
    expect(pending.out).toContain('000001_spans');

    const tooNew = await run('migrate', ['--check'], newer.connectionString);
    expect(tooNew.code).toBe(1);
    expect(tooNew.err).toContain('the database has schema version(s) 999 that this tracehouse does not know');
  });
});
