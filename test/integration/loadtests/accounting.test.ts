import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pgCopyStreams from 'pg-copy-streams';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OPEN_TENANT } from '../../../server/auth/tenant.js';
import { DEFAULTS } from '../../../server/config.js';
import { decodeExportRequest, type SpanRow } from '../../../server/decode/index.js';
import { createStorage } from '../../../server/storage/index.js';
import type { Storage } from '../../../server/storage/types.js';
import { Ledger } from '../../../loadtests/load/ledger.js';
import { measureStorageCost } from '../../../loadtests/load/storage-cost.js';
import { COPY_BINARY_HEADER, COPY_BINARY_TRAILER, exportCopyTemplates } from '../../../loadtests/load/copy-limit.js';
import { requestShiftNs } from '../../../loadtests/load/times.js';
import { buildTemplates, SPANS_PER_REQUEST } from '../../../loadtests/load/templates.js';
import { useTestDatabase } from '../../helpers/db.js';

const db = useTestDatabase();
const [template] = buildTemplates(1);
let storage: Storage;
let shared: ReturnType<typeof db.pool> | undefined;
const pool = (): ReturnType<typeof db.pool> => (shared ??= db.pool({ max: 1 }));
const now = Date.now();
const options = {
  limits: DEFAULTS.decode,
  window: {
    minStartUnixNano: BigInt(now - 86_400_000) * 1_000_000n,
    maxStartUnixNano: BigInt(now + 3_600_000) * 1_000_000n,
  },
};

beforeAll(async () => {
  storage = await createStorage(
    { ...DEFAULTS.storage, poolSize: 2, connectionString: db.connectionString },
    pino({ level: 'silent' }),
  );
  await storage.partitions.ensureRange(new Date(now - 86_400_000), new Date(now + 86_400_000));
});
afterAll(async () => {
  await storage?.stop();
});

function rowsOf(ledger: Ledger, r: number): SpanRow[] {
  return decodeExportRequest(template.protobuf.patched(ledger.tag, r), 'protobuf', options).rows;
}

async function store(rows: SpanRow[], tenant = OPEN_TENANT): Promise<void> {
  await storage.writer.write([{ tenant, rows }]);
}

describe('load test loss accounting', () => {
  it('holds when every acknowledged request is stored once, whatever refused or unanswered ones left behind', async () => {
    const ledger = new Ledger(0x0a0b0c01, SPANS_PER_REQUEST);
    const [ok, refused, unanswered] = [ledger.take(), ledger.take(), ledger.take()];
    for (const r of [ok, refused, unanswered]) ledger.sent(r, 1000);
    ledger.answered(ok, 200);
    ledger.answered(refused, 503);
    await store(rowsOf(ledger, ok));
    await store(rowsOf(ledger, unanswered));
    const acc = await ledger.account(pool(), OPEN_TENANT);
    expect(acc).toMatchObject({
      sent: 3 * SPANS_PER_REQUEST,
      acknowledged: SPANS_PER_REQUEST,
      refused: SPANS_PER_REQUEST,
      failed: SPANS_PER_REQUEST,
      stored: 2 * SPANS_PER_REQUEST,
      storedUnanswered: SPANS_PER_REQUEST,
      missing: 0,
      duplicated: 0,
      unsent: 0,
      ok: true,
    });
  });

  it('fails on an acknowledged span that is missing, on a key stored twice, and on rows never sent', async () => {
    const ledger = new Ledger(0x0a0b0c02, SPANS_PER_REQUEST);
    const [a, b] = [ledger.take(), ledger.take()];
    for (const r of [a, b]) {
      ledger.sent(r, 1000);
      ledger.answered(r, 200);
    }
    const rowsA = rowsOf(ledger, a);
    const tenant = 'second-ledger'; // the first test's rows would count as another run's
    await store(rowsA.slice(1), tenant); // the first span of request a is lost
    // The first span of request b twice: the second copy differs only in start time (a new row).
    const rowsB = rowsOf(ledger, b);
    await store([...rowsB, { ...rowsB[0], startTimeUnixNano: rowsB[0].startTimeUnixNano + 1000n }], tenant);
    const r3 = ledger.take(); // reserved, never sent, yet stored
    await store(rowsOf(ledger, r3).slice(0, 3), tenant);
    const acc = await ledger.account(pool(), tenant);
    expect(acc).toMatchObject({ missing: 1, duplicated: 1, unsent: 3, malformed: 0, ok: false });
  });

  it('counts the disk bytes of every table but migrations bookkeeping, partitions under their parent', async () => {
    const cost = await measureStorageCost(pool());
    const names = cost.tables.map((t) => t.name);
    expect(names).toEqual(expect.arrayContaining(['spans', 'traces']));
    expect(names).not.toContain('schema_migrations');
    expect(names.some((n) => /^spans_\d/.test(n))).toBe(false);
    expect(cost.spans).toBeGreaterThan(0);
    expect(cost.bytesPerSpan).toBeCloseTo(cost.totalBytes / cost.spans, 6);
    // Indexes are named by their partitioned parent, so each spans index appears once.
    const spanIndexes = cost.indexes.filter((x) => x.table === 'spans').map((x) => x.name);
    expect(spanIndexes).toEqual(expect.arrayContaining(['spans_pkey', 'spans_tenant_service_bucket_idx']));
    expect(new Set(spanIndexes).size).toBe(spanIndexes.length);
  });

  it("gives the limit's COPY rows of request r the ids and times the server stores for request r", async () => {
    // The template's own rows, as the limit samples them, then request 7 both ways (two tenants).
    await store(decodeExportRequest(template.protobuf.body, 'protobuf', options).rows);
    const copy = await exportCopyTemplates(db.connectionString, [template]);
    const ledger = new Ledger(0x0a0b0c03, SPANS_PER_REQUEST);
    await store(rowsOf(ledger, 7), 'via-server');
    const rows = Buffer.from(copy.bodies[0].body);
    copy.bodies[0].patchInto(rows, ledger.tag, 7);
    const client = await pool().connect();
    try {
      await pipeline(
        Readable.from([COPY_BINARY_HEADER, rows, COPY_BINARY_TRAILER]),
        client.query(pgCopyStreams.from(`COPY spans (${copy.columns}) FROM STDIN (FORMAT binary)`)),
      );
    } finally {
      client.release();
    }
    const SAME = `
      SELECT count(*)::int AS n,
             count(*) FILTER (WHERE a.start_time = b.start_time AND a.start_time_unix_nano = b.start_time_unix_nano
                                AND a.duration_ns = b.duration_ns AND a.events = b.events)::int AS same
        FROM spans a JOIN spans b USING (trace_id, span_id)
       WHERE a.tenant = $1 AND b.tenant = 'via-server' AND get_byte(a.trace_id, 7) = 7`;
    const { rows: result } = await pool().query<{ n: number; same: number }>(SAME, [OPEN_TENANT]);
    expect(result[0]).toEqual({ n: SPANS_PER_REQUEST, same: SPANS_PER_REQUEST });
    const shifted = await pool().query<{ n: number }>(
      `SELECT count(*)::int AS n FROM spans WHERE tenant = 'via-server' AND start_time_unix_nano = $1`,
      [String(template.spans[0].startTimeUnixNano + requestShiftNs(7))],
    );
    expect(shifted.rows[0].n).toBe(1);
  });
});
