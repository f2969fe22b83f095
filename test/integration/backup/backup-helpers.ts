/**
 * Shared pieces of the backup / restore tests: the real CLI as a child process (bounded, killed on
 * timeout), in-process command output capture, temporary directories removed after the file,
 * fresh databases dropped after the file, span writers for chosen days, producers of real
 * OpenTelemetry SDK spans, and an independent reading of a database's partitions.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { context, trace, SpanKind, type Tracer } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import pg from 'pg';
import { afterAll } from 'vitest';
import type { SpanRow } from '../../../server/decode/types.js';
import type { CommandIo } from '../../../server/ops/backup/reporter.js';
import { connectOpsSession, listSpanPartitions, measurePartition } from '../../../server/storage/backup-queries.js';
import type { Storage } from '../../../server/storage/types.js';
import { REPO_ROOT } from '../../helpers/build-dist.js';
import { createDatabase, databaseUrl, dropDatabase, newDatabaseName } from '../../helpers/db.js';
import { ExportLedger, RecordingExporter } from '../../helpers/recording-exporter.js';
import { makeTrace } from '../storage/span-rows.js';

export const MS_PER_DAY = 86_400_000;

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
  durationMs: number;
}

/** `node bin/tracehouse.js …` with only PATH, HOME and `env`; SIGKILLed after timeoutMs. */
export function runTracehouse(args: string[], env: Record<string, string>, timeoutMs = 60_000): Promise<CliResult> {
  const startedAt = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(REPO_ROOT, 'bin', 'tracehouse.js'), ...args], {
      cwd: REPO_ROOT,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', LOG_LEVEL: 'warn', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, durationMs: Date.now() - startedAt });
    });
  });
}

/** Output of an in-process command: what it printed to stdout and stderr. */
export function captureIo(): CommandIo & { out: () => string; err: () => string } {
  let out = '';
  let err = '';
  const sink = (append: (text: string) => void): Writable =>
    new Writable({
      write(chunk: Buffer | string, _encoding, callback) {
        append(chunk.toString());
        callback();
      },
    });
  return {
    stdout: sink((text) => (out += text)),
    stderr: sink((text) => (err += text)),
    progress: false,
    out: () => out,
    err: () => err,
  };
}

/** A temporary directory removed after the file. */
export function useTempDirs(): () => Promise<string> {
  const dirs: string[] = [];
  afterAll(async () => {
    await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
  });
  return async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'th-backup-test-'));
    dirs.push(dir);
    return dir;
  };
}

/** Fresh databases (empty, or clones of the migrated template), dropped after the file. */
export function useExtraDatabases(): (options?: { empty?: boolean }) => Promise<string> {
  const names: string[] = [];
  afterAll(async () => {
    await Promise.all(names.map((name) => dropDatabase(name)));
  });
  return async (options = {}) => {
    const name = newDatabaseName();
    names.push(name);
    await createDatabase(name, options);
    return databaseUrl(name);
  };
}

/** Start of the UTC day `daysAgo` days before now, in ms. */
export function dayStart(daysAgo: number, now = Date.now()): number {
  return Math.floor(now / MS_PER_DAY) * MS_PER_DAY - daysAgo * MS_PER_DAY;
}

/** Writes `traces` traces of `perTrace` spans starting at `atMs` (1 s apart), for one tenant. */
export async function writeSpansAt(
  storage: Storage,
  atMs: number,
  options: { traces: number; perTrace: number; tenant?: string; serviceName?: string },
): Promise<SpanRow[]> {
  const rows: SpanRow[] = [];
  for (let i = 0; i < options.traces; i++) {
    const start = BigInt(atMs + i * 1000) * 1_000_000n;
    rows.push(
      ...makeTrace(options.perTrace, { startTimeUnixNano: start, serviceName: options.serviceName ?? 'backup-test' }),
    );
  }
  await storage.writer.write([{ tenant: options.tenant ?? 'default', rows }]);
  return rows;
}

export interface PartitionState {
  rows: number;
  checksum: string;
}

/** Every partition of the database with its row count and checksum. */
export async function readPartitions(connectionString: string): Promise<Map<string, PartitionState>> {
  const client = await connectOpsSession(connectionString, 'tracehouse-tests');
  try {
    const out = new Map<string, PartitionState>();
    for (const p of await listSpanPartitions(client)) out.set(p.name, await measurePartition(client, p.schema, p.name));
    return out;
  } finally {
    await client.end();
  }
}

/** One query on a throwaway connection. */
export async function queryOnce<R extends pg.QueryResultRow>(
  connectionString: string,
  text: string,
  params?: unknown[],
): Promise<R[]> {
  const client = new pg.Client({ connectionString, application_name: 'tracehouse-tests' });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return (await client.query<R>(text, params)).rows;
  } finally {
    await client.end();
  }
}

/** The objects a database holds in its public schema (tables, views, functions), for "unchanged" checks. */
export async function listObjects(connectionString: string): Promise<string[]> {
  const rows = await queryOnce<{ item: string }>(
    connectionString,
    `SELECT relkind::text || ' ' || relname AS item FROM pg_class WHERE relnamespace = 'public'::regnamespace
     UNION ALL SELECT 'f ' || proname FROM pg_proc WHERE pronamespace = 'public'::regnamespace ORDER BY 1`,
  );
  return rows.map((row) => row.item);
}

/**
 * Real SDK spans, steadily: `providers` BasicTracerProviders, each BatchSpanProcessor →
 * RecordingExporter → OTLPTraceExporter (protobuf), one trace of `spansPerTick` spans per provider
 * every tickMs, at most maxSpans per provider.
 */
export function startProducers(
  url: string,
  ledger: ExportLedger,
  options: { providers: number; spansPerTick: number; tickMs: number; maxSpans: number; service: string },
): { stop: () => void; shutdown: () => Promise<void> } {
  const providers = Array.from({ length: options.providers }, (_, i) => {
    const exporter = new OTLPTraceExporter({ url: `${url}/v1/traces`, timeoutMillis: 5000 });
    return new BasicTracerProvider({
      resource: resourceFromAttributes({ 'service.name': `${options.service}-${i}` }),
      spanProcessors: [
        new BatchSpanProcessor(new RecordingExporter(exporter, ledger), {
          maxQueueSize: 8192,
          maxExportBatchSize: 512,
          scheduledDelayMillis: 20,
          exportTimeoutMillis: 10_000,
        }),
      ],
    });
  });
  const tracers = providers.map((provider) => provider.getTracer('backup-test', '1.0.0'));
  const produced = new Array<number>(options.providers).fill(0);
  const timer = setInterval(() => {
    tracers.forEach((tracer, i) => {
      if (produced[i] >= options.maxSpans) return;
      produceTrace(tracer, options.spansPerTick);
      produced[i] += options.spansPerTick;
    });
  }, options.tickMs);
  const stop = (): void => clearInterval(timer);
  return {
    stop,
    shutdown: async () => {
      stop();
      await Promise.all(providers.map((provider) => provider.shutdown().catch(() => undefined)));
    },
  };
}

function produceTrace(tracer: Tracer, spans: number): void {
  const root = tracer.startSpan('GET /orders', { kind: SpanKind.SERVER, attributes: { 'http.route': '/orders' } });
  const parent = trace.setSpan(context.active(), root);
  for (let i = 1; i < spans; i++) {
    tracer.startSpan(`SELECT orders ${i}`, { kind: SpanKind.CLIENT, attributes: { 'db.rows': i } }, parent).end();
  }
  root.end();
}

export { ExportLedger };
