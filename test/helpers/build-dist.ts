/**
 * Makes sure dist/ is a compile of the current server/ sources before a test spawns
 * `node bin/tracehouse.js`: runs `tsc -p tsconfig.build.json` unless every server/**\/*.ts already
 * has a newer dist/**\/*.js. tsc still emits when it finds type errors; those are the typecheck
 * step's business, so they are returned rather than thrown. A build that emits nothing throws.
 */
import { execFile } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface BuildResult {
  built: boolean;
  durationMs: number;
  /** tsc diagnostics when it exited non-zero but still emitted. */
  diagnostics: string;
}

function listSources(dir: string): string[] {
  const files: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) files.push(...listSources(full));
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) files.push(full);
  }
  return files;
}

function mtimeMs(file: string): number | undefined {
  try {
    return statSync(file).mtimeMs;
  } catch {
    return undefined;
  }
}

/**
 * True when some server source has no compiled file or one older than the source. Sources edited
 * after `editedBefore` (someone saving while tsc runs) are left for the next build.
 */
export function isDistStale(editedBefore = Infinity): boolean {
  const serverDir = path.join(REPO_ROOT, 'server');
  return listSources(serverDir).some((source) => {
    if (statSync(source).mtimeMs > editedBefore) return false;
    const compiled = path.join(REPO_ROOT, 'dist', path.relative(serverDir, source)).replace(/\.ts$/, '.js');
    const built = mtimeMs(compiled);
    return built === undefined || built < statSync(source).mtimeMs;
  });
}

export async function ensureDistBuilt(timeoutMs = 90_000): Promise<BuildResult> {
  const startedAt = Date.now();
  if (!isDistStale()) return { built: false, durationMs: 0, diagnostics: '' };
  const tsc = path.join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  const diagnostics = await new Promise<string>((resolve) => {
    execFile(
      process.execPath,
      [tsc, '-p', 'tsconfig.build.json'],
      { cwd: REPO_ROOT, timeout: timeoutMs },
      (err, stdout, stderr) => resolve(err ? `${stdout}${stderr}`.trim() || String(err) : ''),
    );
  });
  if (isDistStale(startedAt)) {
    throw new Error(`tsc -p tsconfig.build.json did not produce a fresh dist/:\n${diagnostics.slice(0, 4000)}`);
  }
  return { built: true, durationMs: Date.now() - startedAt, diagnostics };
}
