/**
 * Runs PostgreSQL's client programs (pg_dump, pg_restore) as child processes with argument arrays,
 * never through a shell. Connection strings are passed without their password, which goes in
 * PGPASSWORD, so it never shows in `ps`. Exit codes: 0 success, anything else failure (both tools
 * stop at the first error with the options used here).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';

export interface PgTool {
  name: 'pg_dump' | 'pg_restore';
  path: string;
  /** e.g. "15.20" */
  version: string;
  major: number;
}

export class PgToolError extends Error {}

/** Children still running, so that a SIGTERM to tracehouse can stop them (stopRunningTools). */
const running = new Set<ChildProcess>();

function track<T extends ChildProcess>(child: T): T {
  running.add(child);
  child.once('close', () => running.delete(child));
  return child;
}

/** Sends SIGTERM to every pg_dump / pg_restore still running; their callers then fail and clean up. */
export function stopRunningTools(): number {
  for (const child of running) child.kill('SIGTERM');
  return running.size;
}

const INSTALL_HINT =
  'install the PostgreSQL client programs (Debian/Ubuntu: apt-get install postgresql-client; their major ' +
  "version must be at least the server's) or pass --pg-bin DIR";

/** Finds `name` in `binDir` (or on PATH) and reads its version. */
export async function findPgTool(name: PgTool['name'], binDir?: string): Promise<PgTool> {
  const file = binDir ? path.join(binDir, name) : name;
  const result = await runTool(file, ['--version'], {}).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') {
      throw new PgToolError(`${name} was not found${binDir ? ` in ${binDir}` : ' on PATH'}: ${INSTALL_HINT}`);
    }
    throw err;
  });
  const m = /\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?/.exec(result.stdout);
  if (result.code !== 0 || !m) {
    throw new PgToolError(`${file} --version did not answer like ${name}: ${(result.stdout + result.stderr).trim()}`);
  }
  return { name, path: file, version: m[2] === undefined ? m[1] : `${m[1]}.${m[2]}`, major: Number(m[1]) };
}

export interface ToolResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

const MAX_CAPTURE = 1_000_000;

function runTool(file: string, args: string[], env: NodeJS.ProcessEnv): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    const child = track(spawn(file, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] }));
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      if (stdout.length < MAX_CAPTURE) stdout += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      if (stderr.length < MAX_CAPTURE) stderr += chunk;
    });
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** A libpq connection string without its password, and the environment that carries it. */
export function connectionArgs(connectionString: string): { dbname: string; env: NodeJS.ProcessEnv } {
  const url = new URL(connectionString);
  const env: NodeJS.ProcessEnv = { PGAPPNAME: 'tracehouse-ops' };
  if (url.password) {
    env.PGPASSWORD = decodeURIComponent(url.password);
    url.password = '';
  }
  return { dbname: url.toString(), env };
}

/** Runs a tool against a database; rejects with its stderr unless it exits 0. */
export async function runPgTool(tool: PgTool, args: string[], connectionString?: string): Promise<ToolResult> {
  const conn = connectionString ? connectionArgs(connectionString) : undefined;
  const fullArgs = conn ? [...args, `--dbname=${conn.dbname}`] : args;
  const result = await runTool(tool.path, fullArgs, conn?.env ?? {});
  if (result.code !== 0) {
    const why = result.signal ? `was killed by ${result.signal}` : `exited with ${result.code}`;
    throw new PgToolError(`${tool.name} ${why}: ${result.stderr.trim() || '(no message)'}`);
  }
  return result;
}

export interface TocEntry {
  id: number;
  /** The rest of the TOC line: `<desc> <schema> <name> <owner>`, e.g. `TABLE DATA public spans_20260101 postgres`. */
  text: string;
  line: string;
}

export interface Toc {
  entries: TocEntry[];
  /** Custom-format archive version, e.g. "1.14-0". */
  archiveVersion: string;
  dumpedBy: string;
  dumpedFrom: string;
}

/** `pg_restore --list`: proves the archive is readable end to end and returns its table of contents. */
export async function listArchive(tool: PgTool, file: string, sections?: string[]): Promise<Toc> {
  const args = ['--list', ...(sections ?? []).map((s) => `--section=${s}`), file];
  const { stdout } = await runPgTool(tool, args);
  const entries: TocEntry[] = [];
  const header = (label: string): string => new RegExp(`^;\\s+${label}:\\s*(.+)$`, 'm').exec(stdout)?.[1].trim() ?? '';
  for (const line of stdout.split('\n')) {
    const m = /^(\d+); \d+ \d+ (.+)$/.exec(line);
    if (m) entries.push({ id: Number(m[1]), text: m[2], line });
  }
  return {
    entries,
    archiveVersion: header('Dump Version'),
    dumpedBy: header('Dumped by pg_dump version'),
    dumpedFrom: header('Dumped from database version'),
  };
}

/**
 * Streams `pg_restore --file=-` (the archive as SQL text) line by line to `onLine`, which may
 * return a promise to apply backpressure. Rejects if pg_restore fails or `onLine` throws.
 */
export async function streamArchiveSql(
  tool: PgTool,
  args: string[],
  onLine: (line: string) => void | Promise<void>,
): Promise<void> {
  const child = track(spawn(tool.path, [...args, '--file=-'], { stdio: ['ignore', 'pipe', 'pipe'] }));
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    if (stderr.length < MAX_CAPTURE) stderr += chunk;
  });
  const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code, signal }));
  });
  try {
    await consumeLines(child.stdout, onLine);
  } catch (err) {
    child.kill('SIGTERM');
    await closed.catch(() => undefined);
    throw err;
  }
  const { code, signal } = await closed;
  if (code !== 0) {
    throw new PgToolError(
      `${tool.name} ${signal ? `was killed by ${signal}` : `exited with ${code}`}: ${stderr.trim()}`,
    );
  }
}

async function consumeLines(input: Readable, onLine: (line: string) => void | Promise<void>): Promise<void> {
  const lines = createInterface({ input, crlfDelay: Infinity });
  for await (const line of lines) await onLine(line);
}
