/**
 * Scheduled backups: `backup --out BASE --rotate --keep N` writes into BASE/<UTC timestamp>/ and then
 * removes the oldest complete backups beyond N. A backup is complete when its manifest.json parses
 * and SHA256SUMS exists (both are written last). Incomplete directories (a run that died, a copy in
 * progress) are never removed, only reported; the backup just written is never removed.
 */
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { MANIFEST_FILE, SUMS_FILE, parseManifest } from './manifest.js';

/** BASE/20260115T030000Z, or with a -2, -3 … suffix when that second is taken. */
export const BACKUP_DIR_PATTERN = /^\d{8}T\d{6}Z(?:-\d+)?$/;

export function backupDirName(at: Date): string {
  return at
    .toISOString()
    .replace(/\.\d{3}Z$/, 'Z')
    .replaceAll('-', '')
    .replaceAll(':', '');
}

export interface BackupDirEntry {
  name: string;
  complete: boolean;
}

export interface RotationPlan {
  keep: string[];
  remove: string[];
  incomplete: string[];
}

/**
 * Pure: which directories to remove so that at most `keep` complete backups remain, oldest first
 * out. Names sort chronologically. `current` (the backup just written) always stays.
 */
export function planRotation(entries: readonly BackupDirEntry[], keep: number, current: string): RotationPlan {
  if (!Number.isSafeInteger(keep) || keep < 1) throw new Error('keep must be at least 1');
  const complete = entries
    .filter((e) => e.complete || e.name === current)
    .map((e) => e.name)
    .sort(compareNames)
    .reverse(); // newest first
  const kept = new Set([current, ...complete.filter((name) => name !== current).slice(0, keep - 1)]);
  return {
    keep: complete.filter((name) => kept.has(name)).reverse(),
    remove: complete.filter((name) => !kept.has(name)).reverse(),
    incomplete: entries
      .filter((e) => !e.complete && e.name !== current)
      .map((e) => e.name)
      .sort(compareNames),
  };
}

/** Chronological: by timestamp, then by numeric suffix (…Z < …Z-2 < …Z-10). */
function compareNames(a: string, b: string): number {
  const [stampA, suffixA = '1'] = a.split('-');
  const [stampB, suffixB = '1'] = b.split('-');
  return stampA === stampB ? Number(suffixA) - Number(suffixB) : stampA < stampB ? -1 : 1;
}

export async function isCompleteBackup(dir: string): Promise<boolean> {
  if (!existsSync(path.join(dir, SUMS_FILE))) return false;
  try {
    parseManifest(await fs.readFile(path.join(dir, MANIFEST_FILE), 'utf8'));
    return true;
  } catch {
    return false;
  }
}

export async function listBackupDirs(base: string): Promise<BackupDirEntry[]> {
  const entries: BackupDirEntry[] = [];
  for (const dirent of await fs.readdir(base, { withFileTypes: true })) {
    if (!dirent.isDirectory() || !BACKUP_DIR_PATTERN.test(dirent.name)) continue;
    entries.push({ name: dirent.name, complete: await isCompleteBackup(path.join(base, dirent.name)) });
  }
  return entries;
}

/** Creates a fresh, empty BASE/<timestamp> directory and returns its path. */
export async function makeBackupDir(base: string, at: Date): Promise<string> {
  await fs.mkdir(base, { recursive: true });
  const stamp = backupDirName(at);
  for (let n = 1; ; n++) {
    const dir = path.join(base, n === 1 ? stamp : `${stamp}-${n}`);
    try {
      await fs.mkdir(dir);
      return dir;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
}

/** Applies planRotation to BASE. Returns the plan that was carried out. */
export async function rotateBackups(base: string, keep: number, current: string): Promise<RotationPlan> {
  const plan = planRotation(await listBackupDirs(base), keep, current);
  for (const name of plan.remove) {
    // Re-check right before removing: never remove something that stopped looking complete.
    if (await isCompleteBackup(path.join(base, name))) await fs.rm(path.join(base, name), { recursive: true });
  }
  return plan;
}
