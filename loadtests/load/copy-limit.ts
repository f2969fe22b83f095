/**
 * The machine's own limit: raw COPY of the very rows the server writes, straight into `spans` of a
 * fresh database with the same schema, on the same PostgreSQL, in the same run.
 *
 * Where the rows come from: the server itself. Once per invocation the template bodies are posted
 * to a real server on a sample database, and the rows it stored are exported with COPY … TO in the
 * table's own column order (every stored, non-generated column). So the limit follows any change
 * to the row shape or the schema (columns moved to a side table, new columns) without knowing about
 * it, and it is byte for byte what the writer produced. The export is in COPY's binary format, the
 * one the writer sends (storage/copy-binary.ts), so the limit gets the same cheaper parsing. Each
 * exported template (512 rows, without the binary header and trailer) gets its ids and times patched
 * per request number (templates.ts, times.ts), as the server's requests do, so every row is unique.
 *
 * What is measured: `connections` sessions, each running COPY spans FROM STDIN with rowsPerCopy
 * rows per statement (one transaction each, synchronous_commit on), back to back. No dedupe, no
 * trace summaries, no catalog, no decode: PostgreSQL's physical ingest rate for these rows.
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import pgCopyStreams from 'pg-copy-streams';
import type { Ledger } from './ledger.js';
import { PatchableBody, SPANS_PER_REQUEST, templateOf, type Template } from './templates.js';

/** Stored, non-generated columns of spans in table order. */
const SPAN_COLUMNS = `
SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) AS columns
  FROM pg_attribute
 WHERE attrelid = 'spans'::regclass AND attnum > 0 AND NOT attisdropped AND attgenerated = ''`;

export interface CopyTemplates {
  columns: string;
  bodies: PatchableBody[]; // one per template: its 512 rows in COPY binary, without header and trailer
}

/** The binary COPY header: signature, flags 0, no header extension (PostgreSQL docs, COPY). */
export const COPY_BINARY_HEADER = Buffer.concat([Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1'), Buffer.alloc(8)]);
/** The binary COPY trailer: a field count of -1. */
export const COPY_BINARY_TRAILER = Buffer.from([0xff, 0xff]);

async function copyOut(client: pg.Client, sql: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const stream = client.query(pgCopyStreams.to(sql));
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/**
 * Exports the rows the server stored for each template (posted unpatched, with the template's own
 * ids) from `databaseUrl`. Throws unless every template's 512 rows are there.
 */
export async function exportCopyTemplates(databaseUrl: string, templates: Template[]): Promise<CopyTemplates> {
  const client = new pg.Client({ connectionString: databaseUrl, application_name: 'tracehouse-loadtest' });
  await client.connect();
  try {
    const columns = (await client.query<{ columns: string }>(SPAN_COLUMNS)).rows[0].columns;
    const bodies: PatchableBody[] = [];
    for (const template of templates) {
      const ids = template.layout.traceIds.map((hex) => `'\\x${hex}'::bytea`).join(', ');
      const where = `trace_id IN (${ids})`;
      const data = await copyOut(
        client,
        `COPY (SELECT ${columns} FROM spans WHERE ${where} ORDER BY trace_id, span_id) TO STDOUT (FORMAT binary)`,
      );
      const rows = (await client.query<{ n: number }>(`SELECT count(*)::int AS n FROM spans WHERE ${where}`)).rows[0].n;
      if (rows !== SPANS_PER_REQUEST) throw new Error(`limit: the server stored ${rows} rows of a template, not 512`);
      const header = data.subarray(0, COPY_BINARY_HEADER.length);
      if (!header.equals(COPY_BINARY_HEADER) || !data.subarray(data.length - 2).equals(COPY_BINARY_TRAILER)) {
        throw new Error('limit: unexpected COPY binary header or trailer');
      }
      const body = data.subarray(COPY_BINARY_HEADER.length, data.length - COPY_BINARY_TRAILER.length);
      bodies.push(new PatchableBody(Buffer.from(body), 'copy-binary', template.layout));
    }
    return { columns, bodies };
  } finally {
    await client.end();
  }
}

export interface CopyLimitOptions {
  databaseUrl: string;
  connections: number;
  rowsPerCopy: number;
  seconds: number;
}

export interface CopyLimitRun {
  startedAt: number;
  endedAt: number;
  copies: number;
}

/** COPYs back to back for `seconds`; each committed request number is answered 200 in the ledger. */
export async function runCopyLimit(
  copy: CopyTemplates,
  ledger: Ledger,
  options: CopyLimitOptions,
): Promise<CopyLimitRun> {
  const perCopy = Math.max(1, Math.round(options.rowsPerCopy / SPANS_PER_REQUEST));
  const sql = `COPY spans (${copy.columns}) FROM STDIN (FORMAT binary)`;
  const startedAt = performance.now();
  const endAt = startedAt + options.seconds * 1000;
  let copies = 0;
  const session = async (): Promise<void> => {
    const client = new pg.Client({
      connectionString: options.databaseUrl,
      application_name: 'tracehouse-loadtest',
      options: '-c synchronous_commit=on -c TimeZone=UTC',
    });
    await client.connect();
    try {
      while (performance.now() < endAt) {
        const rs: number[] = [];
        const buffers: Buffer[] = [];
        for (let k = 0; k < perCopy; k++) {
          const r = ledger.take();
          const body = templateOf(copy.bodies, r);
          const buffer = Buffer.from(body.body);
          body.patchInto(buffer, ledger.tag, r);
          rs.push(r);
          buffers.push(buffer);
        }
        const sentAt = performance.now();
        for (let k = 0; k < rs.length; k++) ledger.sent(rs[k], buffers[k].length, sentAt);
        await pipeline(
          Readable.from([COPY_BINARY_HEADER, ...buffers, COPY_BINARY_TRAILER]),
          client.query(pgCopyStreams.from(sql)),
        );
        const at = performance.now();
        for (const r of rs) ledger.answered(r, 200, false, at);
        copies++;
      }
    } finally {
      await client.end();
    }
  };
  await Promise.all(Array.from({ length: options.connections }, session));
  return { startedAt, endedAt: endAt, copies };
}
