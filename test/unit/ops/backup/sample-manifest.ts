/** A valid manifest for the unit tests, with overrides. */
import { MANIFEST_FORMAT, MANIFEST_VERSION, type Manifest } from '../../../../server/ops/backup/manifest.js';

const SHA = (c: string): string => c.repeat(64);

export function sampleManifest(overrides: Partial<Manifest> = {}): Manifest {
  return {
    format: MANIFEST_FORMAT,
    formatVersion: MANIFEST_VERSION,
    kind: 'full',
    tool: { name: 'tracehouse', version: '0.1.0', pgDump: '15.20', pgDumpMajor: 15, archiveVersion: '1.14-0' },
    server: { version: '15.20', versionNum: 150020, major: 15 },
    database: 'tracehouse',
    schemaVersion: 3,
    migrations: [1, 2, 3],
    snapshot: { id: '00000003-0000001B-1', at: '2026-01-15T03:00:00.123Z' },
    startedAt: '2026-01-15T03:00:00.000Z',
    finishedAt: '2026-01-15T03:00:05.000Z',
    durationMs: 5000,
    checksumAlgorithm: 'md5-pk-by-trace-byte-v1',
    catalog: {
      file: 'catalog.dump',
      bytes: 1234,
      sha256: SHA('a'),
      tables: { traces: 10, operations: 4 },
      summaries: true,
    },
    partitions: [
      {
        file: 'spans_20260114.dump',
        bytes: 999,
        sha256: SHA('b'),
        schema: 'public',
        name: 'spans_20260114',
        from: '2026-01-14T00:00:00.000Z',
        to: '2026-01-15T00:00:00.000Z',
        rows: 42,
        checksum: 'c'.repeat(32),
      },
    ],
    totals: { rows: 42, bytes: 2233 },
    ...overrides,
  };
}
