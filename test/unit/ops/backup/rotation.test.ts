import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { formatManifest } from '../../../../server/ops/backup/manifest.js';
import { backupDirName, makeBackupDir, planRotation, rotateBackups } from '../../../../server/ops/backup/rotation.js';
import { sampleManifest } from './sample-manifest.js';

const complete = (name: string): { name: string; complete: boolean } => ({ name, complete: true });
const incomplete = (name: string): { name: string; complete: boolean } => ({ name, complete: false });

describe('planRotation', () => {
  it('keeps the newest N complete backups, the current one included, and removes the oldest', () => {
    const plan = planRotation(
      [
        complete('20260101T030000Z'),
        complete('20260102T030000Z'),
        complete('20260103T030000Z'),
        complete('20260104T030000Z'),
      ],
      2,
      '20260104T030000Z',
    );
    expect(plan).toEqual({
      keep: ['20260103T030000Z', '20260104T030000Z'],
      remove: ['20260101T030000Z', '20260102T030000Z'],
      incomplete: [],
    });
  });

  it('never removes an incomplete backup, and does not count it', () => {
    const plan = planRotation(
      [complete('20260101T030000Z'), incomplete('20260102T030000Z'), complete('20260103T030000Z')],
      2,
      '20260103T030000Z',
    );
    expect(plan.remove).toEqual([]);
    expect(plan.keep).toEqual(['20260101T030000Z', '20260103T030000Z']);
    expect(plan.incomplete).toEqual(['20260102T030000Z']);
  });

  it('never removes the backup just written, even when the clock went backwards', () => {
    const plan = planRotation([complete('20260105T030000Z'), complete('20260101T030000Z')], 1, '20260101T030000Z');
    expect(plan.keep).toEqual(['20260101T030000Z']);
    expect(plan.remove).toEqual(['20260105T030000Z']);
  });

  it('orders same-second suffixes numerically', () => {
    const plan = planRotation(
      [complete('20260101T030000Z'), complete('20260101T030000Z-2'), complete('20260101T030000Z-10')],
      2,
      '20260101T030000Z-10',
    );
    expect(plan.remove).toEqual(['20260101T030000Z']);
  });

  it('refuses to keep fewer than one', () => {
    expect(() => planRotation([], 0, 'x')).toThrow(/at least 1/);
  });
});

describe('rotateBackups on disk', () => {
  let base: string | undefined;
  afterEach(async () => {
    if (base) await rm(base, { recursive: true, force: true });
  });

  async function fakeBackup(name: string, state: 'complete' | 'no-sums' | 'bad-manifest'): Promise<void> {
    const dir = path.join(base!, name);
    await mkdir(dir);
    await writeFile(
      path.join(dir, 'manifest.json'),
      state === 'bad-manifest' ? '{"format":' : formatManifest(sampleManifest()),
    );
    if (state !== 'no-sums') await writeFile(path.join(dir, 'SHA256SUMS'), '');
  }

  it('removes only old complete backups; leaves incomplete ones, foreign directories and files', async () => {
    base = await mkdtemp(path.join(os.tmpdir(), 'th-rotation-'));
    await fakeBackup('20260101T030000Z', 'complete');
    await fakeBackup('20260102T030000Z', 'no-sums');
    await fakeBackup('20260103T030000Z', 'bad-manifest');
    await fakeBackup('20260104T030000Z', 'complete');
    await fakeBackup('20260105T030000Z', 'complete');
    await mkdir(path.join(base, 'keep-me'));
    await writeFile(path.join(base, 'notes.txt'), 'hello');
    const current = path.basename(await makeBackupDir(base, new Date('2026-01-06T03:00:00.456Z')));
    expect(current).toBe('20260106T030000Z');
    await writeFile(path.join(base, current, 'manifest.json'), formatManifest(sampleManifest()));
    await writeFile(path.join(base, current, 'SHA256SUMS'), '');

    const plan = await rotateBackups(base, 2, current);
    expect(plan.remove).toEqual(['20260101T030000Z', '20260104T030000Z']);
    expect(plan.incomplete).toEqual(['20260102T030000Z', '20260103T030000Z']);
    expect((await readdir(base)).sort()).toEqual([
      '20260102T030000Z',
      '20260103T030000Z',
      '20260105T030000Z',
      '20260106T030000Z',
      'keep-me',
      'notes.txt',
    ]);
  });

  it('makes a new directory per run, with a suffix within the same second', async () => {
    base = await mkdtemp(path.join(os.tmpdir(), 'th-rotation-'));
    const at = new Date('2026-01-06T03:00:00Z');
    expect(backupDirName(at)).toBe('20260106T030000Z');
    const first = await makeBackupDir(base, at);
    const second = await makeBackupDir(base, at);
    expect(path.basename(first)).toBe('20260106T030000Z');
    expect(path.basename(second)).toBe('20260106T030000Z-2');
  });
});
