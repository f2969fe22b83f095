/**
 * Write-path benchmark: committed span rows per second into a fresh, migrated database, for
 *   (a) the shipped writer: COPY → TEMP staging table → INSERT … ON CONFLICT DO NOTHING + traces upsert
 *   (b) one INSERT … SELECT FROM unnest($1::bytea[], …) ON CONFLICT DO NOTHING + the same upsert
 *   (c) raw COPY straight into spans: no dedupe, no summaries (the physical limit)
 *   (d) (a) without the traces upsert, to show what the trace summary costs
 * at two batch sizes, interleaved over several rounds; each measurement starts from empty tables
 * (TRUNCATE + CHECKPOINT) and writes fresh rows sequentially on one connection, one transaction per
 * batch, synchronous_commit=on.
 *
 *   node --import tsx loadtests/bench-write.ts [--rounds 3] [--rows 32768] [--sizes 512,4096]
 *
 * The database server is BENCH_DATABASE_URL, else TEST_DATABASE_URL, else the local default; the
 * benchmark creates th_bench_<pid> on it and drops it at the end.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import pg from 'pg';
import pgCopyStreams from 'pg-copy-streams';
import { pino } from 'pino';
import { DEFAULTS } from '../server/config.js';
import type { SpanRow } from '../server/decode/types.js';
import { encodeCopyRows, TimestampFormatter } from '../server/storage/copy-text.js';
import { createStorage } from '../server/storage/index.js';
import { attributeSetIdOf } from '../server/storage/attribute-set-id.js';
import { computeResourceId } from '../server/storage/resource-id.js';
import { migrate } from '../server/storage/migrate.js';
import {
  BEGIN_WRITE,
  COPY_INTO_SPANS,
  COPY_INTO_STAGE,
  CREATE_STAGE,
  INSERT_UNNEST,
  SPAN_COLUMNS,
} from '../server/storage/sql.js';
import type { SpanBatch, Storage } from '../server/storage/types.js';

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    rows: { type: 'string', default: '32768' },
    sizes: { type: 'string', default: '512,4096' },
  },
});
const ROUNDS = Number(args.rounds);
const ROWS = Number(args.rows);
const SIZES = args.sizes.split(',').map(Number);
const TENANT = 'bench';
const DAY_MS = 86_400_000;
const BASE_MS = Date.UTC(2030, 5, 1, 12);

type Variant = 'a' | 'b' | 'c' | 'd';
const VARIANTS: Record<Variant, string> = {
  a: 'COPY → temp stage → INSERT ON CONFLICT + traces upsert (shipped)',
  b: 'INSERT … SELECT FROM unnest() ON CONFLICT + traces upsert',
  c: 'raw COPY into spans (no dedupe, no summaries)',
  d: '(a) without the traces upsert (what the summary costs)',
};

/** Variant (d) only: the shipped statement minus the summary CTE. Not used by the server. */
const INSERT_FROM_STAGE_WITHOUT_SUMMARY =
  `WITH ins AS (INSERT INTO spans (${SPAN_COLUMNS.join(', ')}) SELECT ${SPAN_COLUMNS.join(', ')} FROM pg_temp.th_stage ` +
  'ORDER BY tenant, trace_id, span_id, start_time ON CONFLICT DO NOTHING RETURNING 1) SELECT count(*)::int AS inserted FROM ins';

// ---- realistic rows ---------------------------------------------------------------------------

const word = (n: number): string => randomBytes(n).toString('base64url').slice(0, n);

function resourceAttributes(service: string): string {
  return JSON.stringify({
    'service.name': service,
    'service.version': '2.14.3',
    'service.namespace': 'shop',
    'deployment.environment': 'production',
    'host.name': `ip-10-0-${Math.floor(Math.random() * 255)}-17.eu-west-1.compute.internal`,
    'k8s.pod.name': `${service}-7d9f8c6b5-${word(5)}`,
    'telemetry.sdk.language': 'nodejs',
    'telemetry.sdk.version': '1.25.1',
  });
}

/** ~1 KB COPY text rows: 16-span traces, 10 span attributes, 8 resource attributes, events on 1/4. */
function makeRows(count: number): SpanRow[] {
  const rows: SpanRow[] = [];
  const services = ['checkout', 'cart', 'payment', 'frontend'].map((s) => ({
    name: s,
    resource: resourceAttributes(s),
  }));
  let traceId = randomBytes(16);
  let rootId = randomBytes(8);
  for (let i = 0; i < count; i++) {
    if (i % 16 === 0) {
      traceId = randomBytes(16);
      rootId = randomBytes(8);
    }
    const service = services[i % services.length];
    // Rows spread over two days, as real traffic around midnight would be.
    const startMs = BASE_MS + (i % 2) * DAY_MS + Math.floor(Math.random() * 3_600_000);
    const start = BigInt(startMs) * 1_000_000n + BigInt(Math.floor(Math.random() * 1_000_000));
    const duration = BigInt(Math.floor(Math.random() * 50_000_000));
    const hasEvent = i % 4 === 0;
    rows.push({
      traceId,
      spanId: i % 16 === 0 ? rootId : randomBytes(8),
      parentSpanId: i % 16 === 0 ? null : rootId,
      traceState: '',
      flags: 257,
      name: `GET /api/v1/items/{id}/${['detail', 'reviews', 'stock'][i % 3]}`,
      kind: (i % 5) + 1,
      serviceName: service.name,
      startTimeUnixNano: start,
      endTimeUnixNano: start + duration,
      statusCode: i % 20 === 0 ? 2 : 0,
      statusMessage: i % 20 === 0 ? 'upstream timed out' : '',
      sharedAttributes: '{}',
      attributes: JSON.stringify({
        'http.request.method': 'GET',
        'http.route': '/api/v1/items/{id}',
        'url.full': `https://shop.example.com/api/v1/items/${i}?ref=${word(12)}`,
        'http.response.status_code': i % 20 === 0 ? 504 : 200,
        'server.address': 'shop.example.com',
        'server.port': 443,
        'network.protocol.version': '1.1',
        'user_agent.original': 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0',
        'client.address': `10.1.${i % 255}.${(i * 7) % 255}`,
        'app.request_id': word(24),
      }),
      resourceAttributes: service.resource,
      scopeName: '@opentelemetry/instrumentation-http',
      scopeVersion: '0.52.1',
      scopeAttributes: '{}',
      events: hasEvent
        ? JSON.stringify([
            {
              timeUnixNano: String(start + 1000n),
              name: 'exception',
              attributes: { 'exception.type': 'TimeoutError', 'exception.message': 'socket hang up after 30000 ms' },
              droppedAttributesCount: 0,
            },
          ])
        : '[]',
      links: '[]',
      droppedAttributesCount: 0,
      droppedEventsCount: 0,
      droppedLinksCount: 0,
      samplingWeight: 1,
      sizeBytes: 1200,
    });
  }
  return rows;
}

// ---- variants ---------------------------------------------------------------------------------

interface Writers {
  storage: Storage;
  unnestPool: pg.Pool;
  copyPool: pg.Pool;
}

function toUnnestParams(batch: SpanBatch): unknown[] {
  const ts = new TimestampFormatter();
  const cols: unknown[][] = Array.from({ length: SPAN_COLUMNS.length }, () => new Array(batch.rows.length));
  batch.rows.forEach((r, i) => {
    // Keyed by column, so the compiler keeps it in step with SPAN_COLUMNS.
    const byColumn: Record<(typeof SPAN_COLUMNS)[number], unknown> = {
      tenant: batch.tenant,
      trace_id: r.traceId,
      span_id: r.spanId,
      parent_span_id: r.parentSpanId,
      trace_state: r.traceState,
      flags: r.flags,
      name: r.name,
      kind: r.kind,
      service_name: r.serviceName,
      start_time: ts.format(r.startTimeUnixNano),
      start_time_unix_nano: r.startTimeUnixNano,
      duration_ns: r.endTimeUnixNano - r.startTimeUnixNano,
      status_code: r.statusCode,
      status_message: r.statusMessage,
      attributes: r.attributes,
      events: r.events,
      links: r.links,
      dropped_attributes_count: r.droppedAttributesCount,
      dropped_events_count: r.droppedEventsCount,
      dropped_links_count: r.droppedLinksCount,
      sampling_weight: r.samplingWeight,
      resource_id: computeResourceId(r),
      attribute_set_id: attributeSetIdOf(r.sharedAttributes),
    };
    const values = SPAN_COLUMNS.map((c) => byColumn[c]);
    for (let c = 0; c < SPAN_COLUMNS.length; c++) cols[c][i] = values[c];
  });
  return cols;
}

async function writeBatch(variant: Variant, w: Writers, batch: SpanBatch): Promise<number> {
  switch (variant) {
    case 'a':
      return (await w.storage.writer.write([batch])).inserted;
    case 'b': {
      const { rows } = await w.unnestPool.query<{ inserted: number }>(INSERT_UNNEST, toUnnestParams(batch));
      return rows[0].inserted;
    }
    case 'c': {
      const client = await w.copyPool.connect();
      try {
        const { chunks } = encodeCopyRows([batch], { staged: false });
        await pipeline(Readable.from(chunks), client.query(pgCopyStreams.from(COPY_INTO_SPANS)));
        return batch.rows.length;
      } finally {
        client.release();
      }
    }
    case 'd': {
      const client = await w.copyPool.connect();
      try {
        const { chunks } = encodeCopyRows([batch]);
        await client.query(CREATE_STAGE);
        await client.query(BEGIN_WRITE);
        await pipeline(Readable.from(chunks), client.query(pgCopyStreams.from(COPY_INTO_STAGE)));
        const results = (await client.query(
          `${INSERT_FROM_STAGE_WITHOUT_SUMMARY}; COMMIT`,
        )) as unknown as pg.QueryResult[];
        return results[0].rows[0].inserted as number;
      } finally {
        client.release();
      }
    }
  }
}

// ---- measurement ------------------------------------------------------------------------------

interface Sample {
  round: number;
  size: number;
  variant: Variant;
  rowsPerS: number;
  clientUsPerRow: number;
  pgUsPerRow: number | undefined;
}

/** CPU time (µs) per backend of the writing connections, from /proc (same host only). */
async function backendCpuUs(admin: pg.Pool): Promise<Map<number, number> | undefined> {
  const { rows } = await admin.query<{ pid: number }>(
    "SELECT pid FROM pg_stat_activity WHERE application_name IN ('tracehouse', 'tracehouse-bench')",
  );
  const out = new Map<number, number>();
  for (const { pid } of rows) {
    try {
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
      out.set(pid, (Number(fields[11]) + Number(fields[12])) * 10_000); // utime + stime in 10 ms ticks
    } catch {
      return undefined;
    }
  }
  return out;
}

function cpuDelta(before: Map<number, number> | undefined, after: Map<number, number> | undefined): number | undefined {
  if (!before || !after) return undefined;
  let total = 0;
  for (const [pid, us] of after) total += us - (before.get(pid) ?? 0); // a backend born meanwhile counts in full
  return total;
}

async function measure(
  variant: Variant,
  size: number,
  w: Writers,
  db: pg.Pool,
  rows: SpanRow[],
): Promise<Omit<Sample, 'round'>> {
  await db.query('TRUNCATE spans, traces');
  await db.query('CHECKPOINT');
  const batches: SpanBatch[] = [];
  for (let i = 0; i < rows.length; i += size) batches.push({ tenant: TENANT, rows: rows.slice(i, i + size) });
  // Make sure every writer connection exists before the CPU snapshot.
  await Promise.all([w.storage.ping(), w.unnestPool.query('SELECT 1'), w.copyPool.query('SELECT 1')]);
  const pgBefore = await backendCpuUs(db);
  const cpuBefore = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  let inserted = 0;
  for (const batch of batches) inserted += await writeBatch(variant, w, batch);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpuBefore);
  const pgAfter = await backendCpuUs(db);
  if (inserted !== rows.length) throw new Error(`variant ${variant}: inserted ${inserted} of ${rows.length}`);
  const { rows: count } = await db.query('SELECT count(*)::int AS n FROM spans');
  if (count[0].n !== rows.length) {
    throw new Error(`variant ${variant}: ${count[0].n} rows stored, expected ${rows.length}`);
  }
  return {
    size,
    variant,
    rowsPerS: rows.length / seconds,
    clientUsPerRow: (cpu.user + cpu.system) / rows.length,
    pgUsPerRow: ((d) => (d === undefined ? undefined : d / rows.length))(cpuDelta(pgBefore, pgAfter)),
  };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');

async function main(): Promise<void> {
  const adminUrl =
    process.env.BENCH_DATABASE_URL || process.env.TEST_DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/postgres';
  const name = `th_bench_${process.pid}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`);
  await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(name)} TEMPLATE template0 ENCODING 'UTF8'`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const dbUrl = url.toString();
  const log = pino({ level: 'warn' });
  // Same session settings as the shipped writer (which raises work_mem per write transaction).
  const poolConfig = {
    connectionString: dbUrl,
    max: 1,
    application_name: 'tracehouse-bench',
    options: '-c synchronous_commit=on -c TimeZone=UTC -c work_mem=64MB',
  };
  const db = new pg.Pool({ connectionString: dbUrl, max: 1 });
  const storage = await createStorage({ ...DEFAULTS.storage, poolSize: 1, connectionString: dbUrl }, log);
  const w: Writers = { storage, unnestPool: new pg.Pool(poolConfig), copyPool: new pg.Pool(poolConfig) };
  // DROP DATABASE … WITH (FORCE) at the end may reach a connection still closing.
  for (const pool of [db, w.unnestPool, w.copyPool]) pool.on('error', () => undefined);
  try {
    await migrate(dbUrl);
    await storage.partitions.ensureRange(new Date(BASE_MS), new Date(BASE_MS + DAY_MS));
    const settings = await db.query(
      "SELECT version() AS v, current_setting('shared_buffers') AS sb, current_setting('synchronous_commit') AS sc",
    );
    const sampleRows = makeRows(512);
    const copyBytes = encodeCopyRows([{ tenant: TENANT, rows: sampleRows }]).chunks.reduce((n, c) => n + c.length, 0);
    console.log(`# bench-write  ${new Date().toISOString()}  node ${process.version}`);
    console.log(
      `# ${settings.rows[0].v}; shared_buffers ${settings.rows[0].sb}; synchronous_commit ${settings.rows[0].sc}`,
    );
    console.log(
      `# ${ROWS} rows per measurement, ${(copyBytes / 512).toFixed(0)} B/row as COPY text, ${ROUNDS} rounds, batch sizes ${SIZES.join(', ')}`,
    );
    console.log('# one connection, one transaction per batch; TRUNCATE + CHECKPOINT before every measurement');

    // Warm-up: plans, stage table, JIT-free code paths.
    for (const v of ['a', 'b', 'c', 'd'] as Variant[]) await measure(v, 512, w, db, makeRows(2048));

    const samples: Sample[] = [];
    const order: Variant[] = ['a', 'b', 'c', 'd'];
    for (let round = 1; round <= ROUNDS; round++) {
      for (const size of SIZES) {
        const rotated = [...order.slice(round % order.length), ...order.slice(0, round % order.length)];
        for (const variant of rotated) {
          const s = await measure(variant, size, w, db, makeRows(ROWS));
          samples.push({ round, ...s });
          console.log(
            `round ${round} size ${String(size).padStart(4)} (${variant}) ${fmt(s.rowsPerS).padStart(7)} rows/s` +
              `  client ${s.clientUsPerRow.toFixed(1)} µs/row` +
              (s.pgUsPerRow !== undefined ? `  pg backend ${s.pgUsPerRow.toFixed(1)} µs/row` : ''),
          );
        }
      }
    }

    console.log(
      '\n| variant | batch | rows/s median | min | max | runs | ratio to (c) | same-round ratio to (c), median | client µs/row | PG backend µs/row |',
    );
    console.log('|---|---|---|---|---|---|---|---|---|---|');
    for (const size of SIZES) {
      const of = (v: Variant) => samples.filter((s) => s.size === size && s.variant === v);
      const cMedian = median(of('c').map((s) => s.rowsPerS));
      for (const v of order) {
        const xs = of(v).map((s) => s.rowsPerS);
        const sameRound = of(v).map((s) => s.rowsPerS / of('c').find((c) => c.round === s.round)!.rowsPerS);
        const pgCpu = of(v)
          .map((s) => s.pgUsPerRow)
          .filter((x): x is number => x !== undefined);
        console.log(
          `| (${v}) ${VARIANTS[v]} | ${size} | ${fmt(median(xs))} | ${fmt(Math.min(...xs))} | ${fmt(Math.max(...xs))} | ${xs.length} | ` +
            `${(median(xs) / cMedian).toFixed(2)} | ${median(sameRound).toFixed(2)} | ${median(of(v).map((s) => s.clientUsPerRow)).toFixed(1)} | ` +
            `${pgCpu.length ? median(pgCpu).toFixed(1) : 'n/a'} |`,
        );
      }
    }
    for (const size of SIZES) {
      const ratios = samples
        .filter((s) => s.size === size && s.variant === 'a')
        .map(
          (a) =>
            a.rowsPerS / samples.find((b) => b.size === size && b.variant === 'b' && b.round === a.round)!.rowsPerS,
        );
      console.log(
        `\nbatch ${size}: (a)/(b) same-round median ${median(ratios).toFixed(2)} (rounds: ${ratios.map((r) => r.toFixed(2)).join(', ')})`,
      );
    }
  } finally {
    await storage.stop();
    await Promise.all([w.unnestPool.end(), w.copyPool.end(), db.end()]);
    await admin.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`);
    await admin.end();
  }
}

await main();
