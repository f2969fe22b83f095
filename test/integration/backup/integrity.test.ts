/**
 * A backup that is not what was written is caught before anything is restored: a truncated file,
 * a byte changed in place, an edited manifest. `verify` (the real CLI) reports the file and exits 1;
 * `restore` refuses and leaves the target exactly as it was (an empty database stays empty, a live
 * day stays missing). A whole-database restore into a database that holds data is refused, listing
 * what it would overwrite, and changes nothing; --replace then restores over it and verifies.
 */
import { cp, mkdir, open, readdir, readFile, stat, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runOpsCommand } from '../../../server/cli-ops.js';
import { loadConfig } from '../../../server/config.js';
import { parseManifest, type Manifest } from '../../../server/ops/backup/manifest.js';
import { ensureDistBuilt } from '../../helpers/build-dist.js';
import { useTestDatabase } from '../../helpers/db.js';
import { readStoredSpans } from '../../helpers/stored-spans.js';
import { startTestServer, type TestServer } from '../../helpers/server.js';
import {
  captureIo,
  dayStart,
  listObjects,
  queryOnce,
  readPartitions,
  runTracehouse,
  useExtraDatabases,
  useTempDirs,
  writeSpansAt,
} from './backup-helpers.js';

const db = useTestDatabase();
const tempDir = useTempDirs();
const extraDatabase = useExtraDatabases();
let server: TestServer;
let good: string;
let manifest: Manifest;

async function run(
  command: string,
  args: string[],
  databaseUrl: string,
): Promise<{ code: number; out: string; err: string }> {
  const io = captureIo();
  const config = loadConfig({}, { storage: { databaseUrl } });
  const code = await runOpsCommand(command, args, config, io);
  return { code, out: io.out(), err: io.err() };
}

/** A copy of the good backup, changed by `damage`. */
async function damagedCopy(damage: (dir: string) => Promise<void>): Promise<string> {
  const dir = path.join(await tempDir(), 'backup');
  await cp(good, dir, { recursive: true });
  await damage(dir);
  return dir;
}

beforeAll(async () => {
  await ensureDistBuilt();
  server = await startTestServer(db.connectionString);
  await writeSpansAt(server.storage, dayStart(2) + 3_600_000, { traces: 30, perTrace: 10 });
  await writeSpansAt(server.storage, dayStart(1) + 3_600_000, { traces: 30, perTrace: 10 });
  good = path.join(await tempDir(), 'good');
  const backup = await run('backup', ['--out', good], db.connectionString);
  expect(backup.code, backup.err).toBe(0);
  manifest = parseManifest(await readFile(path.join(good, 'manifest.json'), 'utf8'));
});
afterAll(async () => {
  await server?.close();
});

describe('damaged backups', () => {
  it('verify passes the intact backup', async () => {
    const result = await runTracehouse(['verify', '--from', good], {});
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain('VERIFIED: every file matches the manifest');
  });

  it('a truncated partition file is caught by verify and by restore, before anything is written', async () => {
    const file = manifest.partitions[0].file;
    const dir = await damagedCopy(async (d) =>
      truncate(path.join(d, file), Math.floor(manifest.partitions[0].bytes / 2)),
    );

    const verify = await runTracehouse(['verify', '--from', dir], {});
    expect(verify.code).toBe(1);
    expect(verify.stdout).toContain(
      `${file}: is ${Math.floor(manifest.partitions[0].bytes / 2)} bytes, the manifest says`,
    );
    expect(verify.stdout).toContain('truncated');
    expect(verify.stderr).toContain('FAILED verification');

    const empty = await extraDatabase({ empty: true });
    const restore = await run('restore', ['--from', dir], empty);
    expect(restore.code).toBe(1);
    expect(restore.err).toContain('the backup failed verification; nothing was written');
    expect(restore.err).toContain(file);
    expect(await listObjects(empty)).toEqual([]);

    // The same damage stops a day restore into the live database: the day stays missing.
    await server.storage.partitions.dropBefore(new Date(dayStart(1)));
    const day = await run('restore', ['--from', dir, '--partition', manifest.partitions[0].name], db.connectionString);
    expect(day.code).toBe(1);
    expect(day.err).toContain('nothing was written');
    expect((await readPartitions(db.connectionString)).has(manifest.partitions[0].name)).toBe(false);
    // The intact backup restores it.
    const fixed = await run(
      'restore',
      ['--from', good, '--partition', manifest.partitions[0].name],
      db.connectionString,
    );
    expect(fixed.code, fixed.err).toBe(0);
  });

  it('a byte changed in the catalog (same size) is caught by verify and by restore', async () => {
    const dir = await damagedCopy(async (d) => {
      const file = path.join(d, 'catalog.dump');
      const handle = await open(file, 'r+');
      try {
        const at = Math.floor((await stat(file)).size / 2);
        const byte = Buffer.alloc(1);
        await handle.read(byte, 0, 1, at);
        byte[0] ^= 0xff;
        await handle.write(byte, 0, 1, at);
      } finally {
        await handle.close();
      }
    });
    const verify = await runTracehouse(['verify', '--from', dir], {});
    expect(verify.code).toBe(1);
    expect(verify.stdout).toContain('catalog.dump: its sha256 differs from the manifest');

    const empty = await extraDatabase({ empty: true });
    const restore = await run('restore', ['--from', dir], empty);
    expect(restore.code).toBe(1);
    expect(restore.err).toContain('catalog.dump: its sha256 differs from the manifest');
    expect(await listObjects(empty)).toEqual([]);
  });

  it('an edited manifest no longer matches SHA256SUMS', async () => {
    const dir = await damagedCopy(async (d) => {
      const text = await readFile(path.join(d, 'manifest.json'), 'utf8');
      await writeFile(
        path.join(d, 'manifest.json'),
        text.replace(`"rows": ${manifest.partitions[0].rows}`, '"rows": 1'),
      );
    });
    const verify = await runTracehouse(['verify', '--from', dir], {});
    expect(verify.code).toBe(1);
    expect(verify.stdout).toContain('manifest.json does not match its sha256 in SHA256SUMS');
  });

  it('a directory that is not a finished backup is named as such', async () => {
    const dir = await damagedCopy(async (d) => truncate(path.join(d, 'manifest.json'), 0));
    const verify = await runTracehouse(['verify', '--from', dir], {});
    expect(verify.code).toBe(1);
    expect(verify.stdout).toContain('manifest.json is not valid JSON');
    const missing = await runTracehouse(['verify', '--from', path.join(dir, 'nowhere')], {});
    expect(missing.code).toBe(1);
    expect(missing.stdout).toContain('has no manifest.json');
  });
});

describe('restore into a database that is not empty', () => {
  it('refuses without --replace, says what it would overwrite, and changes nothing', async () => {
    const before = {
      objects: await listObjects(db.connectionString),
      partitions: await readPartitions(db.connectionString),
    };
    for (const args of [
      ['--from', good],
      ['--from', good, '--dry-run'],
    ]) {
      const refused = await run('restore', args, db.connectionString);
      expect(refused.code).toBe(1);
      expect(refused.err).toContain('is not empty. It holds:');
      expect(refused.err).toContain('partitioned table spans');
      expect(refused.err).toContain('pass --replace to DROP all of the above');
      expect(refused.err).toContain('nothing was written');
    }
    expect(await listObjects(db.connectionString)).toEqual(before.objects);
    expect(await readPartitions(db.connectionString)).toEqual(before.partitions);
  });

  it('with --replace, drops what is there and restores the backup, verified', async () => {
    const target = await extraDatabase();
    const other = await startTestServer(target);
    try {
      await writeSpansAt(other.storage, dayStart(0) + 60_000, { traces: 5, perTrace: 3 });
    } finally {
      await other.close();
    }
    const replaced = await run('restore', ['--from', good, '--replace'], target);
    expect(replaced.code, replaced.err).toBe(0);
    expect(replaced.out).toContain('OVERWRITE: drop everything it holds first');
    expect(replaced.out).toContain('VERIFIED');
    const partitions = await readPartitions(target);
    expect([...partitions.keys()]).toEqual(manifest.partitions.map((p) => p.name));
  });

  it('a migrated but empty database is replaced without --replace', async () => {
    const target = await extraDatabase(); // the migrated template: tracehouse tables, no rows
    const restored = await run('restore', ['--from', good], target);
    expect(restored.code, restored.err).toBe(0);
    expect(restored.out).toContain('replace the empty tracehouse schema');
  });

  it('refuses a whole-database restore while a tracehouse server is connected to the target', async () => {
    const target = await extraDatabase();
    const running = await startTestServer(target);
    try {
      await running.storage.ping(); // the server's pool holds a connection
      const refused = await run('restore', ['--from', good], target);
      expect(refused.code).toBe(1);
      expect(refused.err).toContain('connection(s) of a running tracehouse server are open to database');
      expect(refused.err).toContain('stop every tracehouse instance that uses it first');
    } finally {
      await running.close();
    }
    const restored = await run('restore', ['--from', good], target);
    expect(restored.code, restored.err).toBe(0);
  });

  it('a backup of chosen days restores into an empty database with its trace summaries rebuilt', async () => {
    const dir = path.join(await tempDir(), 'days');
    const day = manifest.partitions.at(-1)!.name;
    const backup = await run('backup', ['--out', dir, '--partition', day], db.connectionString);
    expect(backup.code, backup.err).toBe(0);
    const partial = parseManifest(await readFile(path.join(dir, 'manifest.json'), 'utf8'));
    expect(partial).toMatchObject({ kind: 'partitions', catalog: { summaries: false } });
    expect(partial.partitions.map((p) => p.name)).toEqual([day]);
    const target = await extraDatabase({ empty: true });
    const restored = await run('restore', ['--from', dir], target);
    expect(restored.code, restored.err).toBe(0);
    expect(restored.out).toContain('rebuild the trace summaries from the spans');
    expect((await readPartitions(target)).get(day)).toEqual({ rows: 300, checksum: partial.partitions[0].checksum });
    expect((await readStoredSpans(target)).summaryMismatches).toEqual([]);
    expect(await queryOnce(target, 'SELECT count(*)::int AS n FROM traces')).toEqual([{ n: 30 }]);
  });

  it('scheduled backups (--rotate --keep N) keep the newest N complete ones and never an incomplete one', async () => {
    const base = await tempDir();
    await mkdir(path.join(base, '20000101T000000Z')); // a backup that never finished
    for (let i = 0; i < 3; i++) {
      const result = await run('backup', ['--out', base, '--rotate', '--keep', '2'], db.connectionString);
      expect(result.code, result.err).toBe(0);
      await new Promise((resolve) => setTimeout(resolve, 1100)); // one directory name per second
    }
    const entries = (await readdir(base)).sort();
    expect(entries).toHaveLength(3);
    expect(entries[0]).toBe('20000101T000000Z');
    for (const name of entries.slice(1)) {
      expect((await runTracehouse(['verify', '--from', path.join(base, name)], {})).code).toBe(0);
    }
    const last = await run('backup', ['--out', base, '--rotate', '--keep', '2'], db.connectionString);
    expect(last.err).toContain('incomplete backup directories');
    expect(last.err).toContain('20000101T000000Z');
  });

  it('says how to get pg_restore when it is missing', async () => {
    const result = await run('verify', ['--from', good, '--pg-bin', '/nonexistent'], db.connectionString);
    expect(result.code).toBe(1);
    expect(result.err).toContain('pg_restore was not found in /nonexistent: install the PostgreSQL client programs');
  });
});
