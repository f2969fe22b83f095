import { describe, expect, it } from 'vitest';
import {
  formatManifest,
  formatSums,
  ManifestError,
  manifestFiles,
  parseManifest,
  parseSums,
} from '../../../../server/ops/backup/manifest.js';
import { parseColumnList } from '../../../../server/ops/backup/restore-day.js';
import { partitionNamesFor, pickPartitions } from '../../../../server/ops/backup/selection.js';
import {
  pgDumpProblem,
  pgRestoreProblem,
  schemaProblem,
  serverProblem,
} from '../../../../server/ops/backup/versions.js';
import { sampleManifest } from './sample-manifest.js';

function mutate(change: (json: Record<string, unknown>) => void): string {
  const json = JSON.parse(formatManifest(sampleManifest())) as Record<string, unknown>;
  change(json);
  return JSON.stringify(json);
}

describe('parseManifest', () => {
  it('reads back exactly what formatManifest wrote', () => {
    const manifest = sampleManifest();
    expect(parseManifest(formatManifest(manifest))).toEqual(manifest);
    expect(manifestFiles(manifest).map((f) => f.file)).toEqual(['catalog.dump', 'spans_20260114.dump']);
  });

  it.each([
    ['not JSON', '{"format": "tracehouse-backup", ', /is not valid JSON .*the file is damaged/],
    [
      'another format',
      mutate((m) => (m.format = 'pg_dump')),
      /format must be 'tracehouse-backup': this is not a tracehouse backup/,
    ],
    ['a missing field', mutate((m) => delete m.schemaVersion), /schemaVersion must be a non-negative integer/],
    [
      'negative rows',
      mutate((m) => ((m.partitions as Array<Record<string, unknown>>)[0].rows = -1)),
      /partitions\[0\]\.rows must be/,
    ],
    [
      'a fractional byte count',
      mutate((m) => ((m.catalog as Record<string, unknown>).bytes = 1.5)),
      /catalog\.bytes must be/,
    ],
    [
      'a bad sha256',
      mutate((m) => ((m.catalog as Record<string, unknown>).sha256 = 'xyz')),
      /catalog\.sha256 is malformed/,
    ],
    [
      'a bad checksum',
      mutate((m) => ((m.partitions as Array<Record<string, unknown>>)[0].checksum = 'A'.repeat(32))),
      /checksum is malformed/,
    ],
    [
      'a path outside the directory',
      mutate((m) => ((m.partitions as Array<Record<string, unknown>>)[0].file = '../etc/passwd')),
      /partitions\[0\]\.file is malformed/,
    ],
    [
      'an absolute path',
      mutate((m) => ((m.catalog as Record<string, unknown>).file = '/tmp/catalog.dump')),
      /catalog\.file is malformed/,
    ],
    [
      'a reserved file name',
      mutate((m) => ((m.catalog as Record<string, unknown>).file = 'manifest.json')),
      /twice \(or a reserved name\)/,
    ],
    [
      'a partition listed twice',
      mutate((m) => {
        const parts = m.partitions as Array<Record<string, unknown>>;
        parts.push({ ...parts[0], file: 'other.dump' });
      }),
      /list 'spans_20260114' twice/,
    ],
    [
      'a bad timestamp',
      mutate((m) => ((m.snapshot as Record<string, unknown>).at = 'yesterday')),
      /snapshot\.at is not a timestamp/,
    ],
    ['an unknown kind', mutate((m) => (m.kind = 'incremental')), /kind must be 'full' or 'partitions'/],
  ])('rejects %s, naming the field', (_, text, message) => {
    expect(() => parseManifest(text)).toThrow(ManifestError);
    expect(() => parseManifest(text)).toThrow(message);
  });
});

describe('SHA256SUMS', () => {
  it('round-trips the sha256sum text format', () => {
    const sums = [
      { file: 'manifest.json', sha256: 'a'.repeat(64) },
      { file: 'catalog.dump', sha256: 'b'.repeat(64) },
    ];
    const text = formatSums(sums);
    expect(text).toBe(`${'a'.repeat(64)}  manifest.json\n${'b'.repeat(64)}  catalog.dump\n`);
    expect(parseSums(text)).toEqual(new Map(sums.map((s) => [s.file, s.sha256])));
  });

  it('rejects malformed lines, unsafe names and duplicates', () => {
    expect(() => parseSums('abc  catalog.dump\n')).toThrow(/line 1 is not/);
    expect(() => parseSums(`${'a'.repeat(64)}  ../x\n`)).toThrow(/line 1 is not/);
    expect(() => parseSums(`${'a'.repeat(64)}  x\n${'b'.repeat(64)}  x\n`)).toThrow(/x is listed twice/);
  });
});

describe('partition selection', () => {
  it('accepts days and partition names, once each', () => {
    expect(partitionNamesFor(['2026-01-15', 'spans_20260115', 'spans_20260116'])).toEqual([
      'spans_20260115',
      'spans_20260116',
    ]);
  });

  it('rejects impossible days and odd names as usage errors', () => {
    expect(() => partitionNamesFor(['2026-02-30'])).toThrow(/not a calendar day/);
    expect(() => partitionNamesFor(['spans; DROP TABLE x'])).toThrow(/neither a day/);
  });

  it('names what exists when a partition is unknown', () => {
    const available = [{ name: 'spans_20260114' }, { name: 'spans_20260115' }];
    expect(pickPartitions(available, ['spans_20260115'], 'the backup')).toEqual([{ name: 'spans_20260115' }]);
    expect(() => pickPartitions(available, ['spans_20260101'], 'the backup')).toThrow(
      'spans_20260101 is not in the backup; it has spans_20260114, spans_20260115',
    );
  });

  it('parses the column list of a dump COPY line', () => {
    expect(parseColumnList('tenant, trace_id, "Odd ""name"""')).toEqual(['tenant', 'trace_id', 'Odd "name"']);
  });
});

describe('version rules', () => {
  it('pg_dump must be at least the server major; pg_restore at least the dump major', () => {
    expect(pgDumpProblem(15, '15.20', 15, '15.20')).toBeUndefined();
    expect(pgDumpProblem(17, '17.1', 15, '15.20')).toBeUndefined();
    expect(pgDumpProblem(15, '15.20', 17, '17.6')).toMatch(
      /pg_dump 15\.20 cannot dump PostgreSQL 17\.6 .*postgresql-client-17/,
    );
    expect(pgRestoreProblem(15, '15.20', 15)).toBeUndefined();
    expect(pgRestoreProblem(15, '15.20', 16)).toMatch(/pg_restore 15\.20 cannot read archives written by pg_dump 16/);
  });

  it('a backup schema newer than the code and a target server older than the source are refused', () => {
    expect(schemaProblem(3, 3)).toBeUndefined();
    expect(schemaProblem(2, 3)).toBeUndefined();
    expect(schemaProblem(4, 3)).toMatch(/schema version 4, but this tracehouse .* knows schema versions up to 3/);
    expect(serverProblem(16, '16.1', 15, '15.20')).toBeUndefined();
    expect(serverProblem(15, '15.20', 17, '17.6')).toMatch(/restore into PostgreSQL 17 or newer/);
  });
});
