/**
 * The backup manifest (manifest.json) and its checksum list (SHA256SUMS), the contract between
 * `backup`, `verify` and `restore`. A backup directory is complete only when both exist: backup
 * writes them last, each through a temporary file and a rename.
 *
 * manifest.json says what the dump files must contain (per partition: rows and a checksum over its
 * span keys, as of one snapshot) and what produced them (tool, pg_dump and server versions, schema
 * version); SHA256SUMS (`sha256sum -c` format) covers every dump file and manifest.json itself.
 * parseManifest() trusts nothing: every field is type-checked and file names must be plain names
 * inside the directory.
 */
export const MANIFEST_FILE = 'manifest.json';
export const SUMS_FILE = 'SHA256SUMS';
export const CATALOG_FILE = 'catalog.dump';
export const MANIFEST_FORMAT = 'tracehouse-backup';
/** Bumped on any incompatible change; restore refuses formats newer than it knows. */
export const MANIFEST_VERSION = 1;

export interface ManifestFile {
  /** A plain file name inside the backup directory. */
  file: string;
  bytes: number;
  sha256: string;
}

export interface ManifestPartition extends ManifestFile {
  schema: string;
  name: string;
  /** Partition bounds, ISO 8601 UTC: [from, to). */
  from: string;
  to: string;
  rows: number;
  checksum: string;
}

export interface Manifest {
  format: typeof MANIFEST_FORMAT;
  formatVersion: number;
  /** `full`: every partition plus all other tables; `partitions`: chosen days, without summaries. */
  kind: 'full' | 'partitions';
  tool: { name: string; version: string; pgDump: string; pgDumpMajor: number; archiveVersion: string };
  server: { version: string; versionNum: number; major: number };
  database: string;
  /** Highest applied migration at the snapshot, and all applied versions. */
  schemaVersion: number;
  migrations: number[];
  snapshot: { id: string; at: string };
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  checksumAlgorithm: string;
  catalog: ManifestFile & {
    /** Row counts of the tables whose data catalog.dump holds. */
    tables: Record<string, number>;
    /** Whether `traces` and `operations` are in the dump (else restore rebuilds them from spans). */
    summaries: boolean;
  };
  partitions: ManifestPartition[];
  totals: { rows: number; bytes: number };
}

export class ManifestError extends Error {}

const SAFE_FILE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
const SHA256 = /^[0-9a-f]{64}$/;
const MD5 = /^[0-9a-f]{32}$/;

type Json = Record<string, unknown>;

function fail(path: string, problem: string): never {
  throw new ManifestError(`${MANIFEST_FILE}: ${path} ${problem}`);
}

function object(value: unknown, path: string): Json {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(path, 'must be an object');
  return value as Json;
}

function string(obj: Json, key: string, path: string, pattern?: RegExp): string {
  const value = obj[key];
  if (typeof value !== 'string' || value === '') fail(`${path}${key}`, 'must be a non-empty string');
  if (pattern && !pattern.test(value)) fail(`${path}${key}`, `is malformed: '${value.slice(0, 80)}'`);
  return value;
}

function count(obj: Json, key: string, path: string): number {
  const value = obj[key];
  if (!Number.isSafeInteger(value) || (value as number) < 0) fail(`${path}${key}`, 'must be a non-negative integer');
  return value as number;
}

function isoTime(obj: Json, key: string, path: string): string {
  const value = string(obj, key, path);
  if (Number.isNaN(Date.parse(value))) fail(`${path}${key}`, `is not a timestamp: '${value.slice(0, 40)}'`);
  return value;
}

function file(obj: Json, path: string): ManifestFile {
  return {
    file: string(obj, 'file', path, SAFE_FILE),
    bytes: count(obj, 'bytes', path),
    sha256: string(obj, 'sha256', path, SHA256),
  };
}

/** Parses and validates manifest.json. Throws ManifestError naming the first bad field. */
export function parseManifest(text: string): Manifest {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ManifestError(`${MANIFEST_FILE} is not valid JSON (${(err as Error).message}): the file is damaged`);
  }
  const m = object(raw, '(top level)');
  if (m.format !== MANIFEST_FORMAT) fail('format', `must be '${MANIFEST_FORMAT}': this is not a tracehouse backup`);
  const formatVersion = count(m, 'formatVersion', '');
  if (m.kind !== 'full' && m.kind !== 'partitions') fail('kind', "must be 'full' or 'partitions'");
  const tool = object(m.tool, 'tool');
  const server = object(m.server, 'server');
  const snapshot = object(m.snapshot, 'snapshot');
  const catalog = object(m.catalog, 'catalog');
  const tables = object(catalog.tables, 'catalog.tables');
  if (typeof catalog.summaries !== 'boolean') fail('catalog.summaries', 'must be true or false');
  if (!Array.isArray(m.migrations) || !m.migrations.every((v) => Number.isSafeInteger(v) && v > 0)) {
    fail('migrations', 'must be a list of positive integers');
  }
  if (!Array.isArray(m.partitions)) fail('partitions', 'must be a list');
  const partitions = m.partitions.map((value, i): ManifestPartition => {
    const path = `partitions[${i}].`;
    const p = object(value, path.slice(0, -1));
    return {
      ...file(p, path),
      schema: string(p, 'schema', path),
      name: string(p, 'name', path),
      from: isoTime(p, 'from', path),
      to: isoTime(p, 'to', path),
      rows: count(p, 'rows', path),
      checksum: string(p, 'checksum', path, MD5),
    };
  });
  const names = new Set<string>();
  const files = new Set<string>([MANIFEST_FILE, SUMS_FILE]);
  for (const entry of [{ file: string(catalog, 'file', 'catalog.', SAFE_FILE), name: 'catalog' }, ...partitions]) {
    if (files.has(entry.file)) fail('partitions', `name the file '${entry.file}' twice (or a reserved name)`);
    files.add(entry.file);
  }
  for (const p of partitions) {
    if (names.has(p.name)) fail('partitions', `list '${p.name}' twice`);
    names.add(p.name);
  }
  const totals = object(m.totals, 'totals');
  return {
    format: MANIFEST_FORMAT,
    formatVersion,
    kind: m.kind,
    tool: {
      name: string(tool, 'name', 'tool.'),
      version: string(tool, 'version', 'tool.'),
      pgDump: string(tool, 'pgDump', 'tool.'),
      pgDumpMajor: count(tool, 'pgDumpMajor', 'tool.'),
      archiveVersion: string(tool, 'archiveVersion', 'tool.'),
    },
    server: {
      version: string(server, 'version', 'server.'),
      versionNum: count(server, 'versionNum', 'server.'),
      major: count(server, 'major', 'server.'),
    },
    database: string(m, 'database', ''),
    schemaVersion: count(m, 'schemaVersion', ''),
    migrations: m.migrations as number[],
    snapshot: { id: string(snapshot, 'id', 'snapshot.'), at: isoTime(snapshot, 'at', 'snapshot.') },
    startedAt: isoTime(m, 'startedAt', ''),
    finishedAt: isoTime(m, 'finishedAt', ''),
    durationMs: count(m, 'durationMs', ''),
    checksumAlgorithm: string(m, 'checksumAlgorithm', ''),
    catalog: {
      ...file(catalog, 'catalog.'),
      tables: Object.fromEntries(Object.keys(tables).map((key) => [key, count(tables, key, 'catalog.tables.')])),
      summaries: catalog.summaries,
    },
    partitions,
    totals: { rows: count(totals, 'rows', 'totals.'), bytes: count(totals, 'bytes', 'totals.') },
  };
}

export function formatManifest(manifest: Manifest): string {
  return `${JSON.stringify(manifest, null, 2)}\n`;
}

/** SHA256SUMS in `sha256sum` text format: `<hex>  <file>` per line. */
export function formatSums(sums: ReadonlyArray<{ file: string; sha256: string }>): string {
  return sums.map(({ file: name, sha256 }) => `${sha256}  ${name}\n`).join('');
}

export function parseSums(text: string): Map<string, string> {
  const sums = new Map<string, string>();
  for (const [i, line] of text.split('\n').entries()) {
    if (line.trim() === '') continue;
    const m = /^([0-9a-f]{64}) [ *]([A-Za-z0-9][A-Za-z0-9_.-]*)$/.exec(line);
    if (!m) throw new ManifestError(`${SUMS_FILE}: line ${i + 1} is not '<sha256>  <file>'`);
    if (sums.has(m[2])) throw new ManifestError(`${SUMS_FILE}: ${m[2]} is listed twice`);
    sums.set(m[2], m[1]);
  }
  return sums;
}

/** Every file a manifest names, the catalog first. */
export function manifestFiles(manifest: Manifest): ManifestFile[] {
  return [manifest.catalog, ...manifest.partitions];
}
