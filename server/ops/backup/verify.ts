/**
 * Checks a backup directory against its manifest without touching any database: manifest.json is
 * well formed and of a format we know, SHA256SUMS agrees with it and covers it, every dump file has
 * the recorded size and sha256, and pg_restore can read each archive and finds the entries it must
 * hold. restore runs the same checks (on the files it needs) before it writes anything.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import {
  MANIFEST_FILE,
  MANIFEST_VERSION,
  ManifestError,
  SUMS_FILE,
  manifestFiles,
  parseManifest,
  parseSums,
  type Manifest,
  type ManifestFile,
  type ManifestPartition,
} from './manifest.js';
import { listArchive, PgToolError, type PgTool } from './pg-tools.js';
import { formatBytes, formatTable, OpsError, type Reporter } from './reporter.js';
import { pgRestoreProblem } from './versions.js';

export interface FileCheck {
  file: string;
  bytes: number;
  ok: boolean;
  problem?: string;
}

export interface VerifyResult {
  manifest: Manifest | undefined;
  files: FileCheck[];
  /** Everything that makes the backup unusable; empty means verified. */
  problems: string[];
}

export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Reads and parses DIR/manifest.json; OpsError with the reason when it cannot. */
export async function readManifest(dir: string): Promise<{ manifest: Manifest; text: string }> {
  let text: string;
  try {
    text = await fs.readFile(path.join(dir, MANIFEST_FILE), 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new OpsError(
        `${dir} has no ${MANIFEST_FILE}: it is not a tracehouse backup, or the backup did not finish (the manifest is written last)`,
      );
    }
    throw new OpsError(`cannot read ${path.join(dir, MANIFEST_FILE)}: ${(err as Error).message}`);
  }
  try {
    return { manifest: parseManifest(text), text };
  } catch (err) {
    if (err instanceof ManifestError) throw new OpsError(err.message);
    throw err;
  }
}

export interface VerifyOptions {
  pgRestore: PgTool;
  /** Check only these dump files (restore of some days); default all. */
  only?: ReadonlySet<string>;
}

export async function verifyBackup(dir: string, options: VerifyOptions, reporter: Reporter): Promise<VerifyResult> {
  const problems: string[] = [];
  let manifest: Manifest;
  let manifestText: string;
  try {
    ({ manifest, text: manifestText } = await readManifest(dir));
  } catch (err) {
    if (!(err instanceof OpsError)) throw err;
    return { manifest: undefined, files: [], problems: [err.message] };
  }
  if (manifest.formatVersion > MANIFEST_VERSION) {
    problems.push(
      `${MANIFEST_FILE} has format version ${manifest.formatVersion}; this tracehouse reads up to ${MANIFEST_VERSION}: use a newer tracehouse`,
    );
    return { manifest, files: [], problems };
  }
  problems.push(...(await checkSums(dir, manifest, manifestText)));
  const toolProblem = pgRestoreProblem(options.pgRestore.major, options.pgRestore.version, manifest.tool.pgDumpMajor);
  if (toolProblem) problems.push(toolProblem);

  const wanted = manifestFiles(manifest).filter((entry) => !options.only || options.only.has(entry.file));
  const files: FileCheck[] = [];
  for (const [i, entry] of wanted.entries()) {
    reporter.progress(`[${i + 1}/${wanted.length}] checking ${entry.file} (${formatBytes(entry.bytes)})`);
    const problem = await checkFile(dir, entry, manifest, toolProblem ? undefined : options.pgRestore);
    files.push({ file: entry.file, bytes: entry.bytes, ok: problem === undefined, problem });
    if (problem) problems.push(`${entry.file}: ${problem}`);
  }
  if (!options.only) {
    const expected = new Set([MANIFEST_FILE, SUMS_FILE, ...manifestFiles(manifest).map((f) => f.file)]);
    const extra = (await fs.readdir(dir)).filter((name) => !expected.has(name));
    if (extra.length > 0) reporter.warn(`files not in the manifest (ignored): ${extra.slice(0, 10).join(', ')}`);
  }
  return { manifest, files, problems };
}

async function checkSums(dir: string, manifest: Manifest, manifestText: string): Promise<string[]> {
  let sums: Map<string, string>;
  try {
    sums = parseSums(await fs.readFile(path.join(dir, SUMS_FILE), 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      return [`${SUMS_FILE} is missing: the backup did not finish, or the directory was copied incompletely`];
    }
    return [err instanceof ManifestError ? err.message : `cannot read ${SUMS_FILE}: ${(err as Error).message}`];
  }
  const problems: string[] = [];
  const manifestSha = createHash('sha256').update(manifestText).digest('hex');
  if (sums.get(MANIFEST_FILE) !== manifestSha) {
    problems.push(`${MANIFEST_FILE} does not match its sha256 in ${SUMS_FILE}: the manifest was modified or damaged`);
  }
  for (const entry of manifestFiles(manifest)) {
    if (sums.get(entry.file) !== entry.sha256) {
      problems.push(`${entry.file}: ${SUMS_FILE} and ${MANIFEST_FILE} disagree on its sha256`);
    }
  }
  return problems;
}

async function checkFile(
  dir: string,
  entry: ManifestFile,
  manifest: Manifest,
  pgRestore: PgTool | undefined,
): Promise<string | undefined> {
  const file = path.join(dir, entry.file);
  let size: number;
  try {
    size = (await fs.stat(file)).size;
  } catch {
    return 'missing';
  }
  if (size !== entry.bytes) {
    return `is ${size} bytes, the manifest says ${entry.bytes}: the file is truncated or was replaced`;
  }
  if ((await sha256File(file)) !== entry.sha256) {
    return 'its sha256 differs from the manifest: the file is damaged or was modified';
  }
  if (!pgRestore) return undefined;
  let toc;
  try {
    toc = await listArchive(pgRestore, file);
  } catch (err) {
    if (err instanceof PgToolError) return `pg_restore cannot read it: ${err.message}`;
    throw err;
  }
  const partition = manifest.partitions.find((p) => p.file === entry.file);
  if (partition && !hasTableData(toc.entries, partition)) {
    return `holds no data entry for ${partition.schema}.${partition.name}`;
  }
  if (!partition && !toc.entries.some((e) => /^TABLE \S+ spans /.test(e.text))) {
    return 'holds no definition of the spans table';
  }
  return undefined;
}

function hasTableData(entries: Array<{ text: string }>, partition: ManifestPartition): boolean {
  return entries.some((e) => e.text.startsWith(`TABLE DATA ${partition.schema} ${partition.name} `));
}

/** The summary `verify` prints. */
export function describeVerify(dir: string, result: VerifyResult): string {
  const lines: string[] = [];
  const m = result.manifest;
  if (m) {
    lines.push(
      `backup ${dir}: ${m.kind} backup of database ${m.database} at ${m.snapshot.at} ` +
        `(schema version ${m.schemaVersion}, PostgreSQL ${m.server.version}, pg_dump ${m.tool.pgDump}, tracehouse ${m.tool.version})`,
    );
    lines.push(`${m.partitions.length} partition(s), ${m.totals.rows} spans, ${formatBytes(m.totals.bytes)}`);
  }
  if (result.files.length > 0) {
    lines.push(
      formatTable(
        ['file', 'bytes', 'status'],
        result.files.map((f) => [f.file, f.bytes, f.ok ? 'ok' : `BAD: ${f.problem}`]),
      ),
    );
  }
  lines.push(
    result.problems.length === 0
      ? 'VERIFIED: every file matches the manifest and is readable by pg_restore'
      : `FAILED: ${result.problems.length} problem(s):\n${result.problems.map((p) => `  - ${p}`).join('\n')}`,
  );
  return lines.join('\n');
}
