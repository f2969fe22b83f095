/**
 * One run of one scenario: a fresh database cloned from the migrated template, a fresh server
 * process (so its peak RSS is this run's), the load for warm-up + measured seconds, then the server
 * is stopped with SIGTERM (it drains: nothing it accepted is still in flight) before the loss
 * accounting and the storage cost are read from PostgreSQL, and the database is dropped.
 */
import { readdirSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { OPEN_TENANT } from '../../server/auth/tenant.js';
import type { TracehouseProcess } from '../../test/helpers/tracehouse-process.js';
import { exportCopyTemplates, runCopyLimit, type CopyTemplates } from './copy-limit.js';
import { serverErrors, startServer, stopServer, type DatabaseServer } from './environment.js';
import { gzipPoolSource, patchingSource, runHttpLoad, type BodySource } from './http-load.js';
import { newRunTag } from './ids.js';
import { Ledger } from './ledger.js';
import { runPacedLoad } from './paced-load.js';
import { profilerEnv } from './profile.js';
import { cpuSeconds, peakRssBytes, treeCpuSeconds, type CpuProbe } from './proc-stats.js';
import { runQueryLoad } from './query-load.js';
import {
  scheduleCpuWindow,
  selfCpuSeconds,
  windowFigures,
  type RunResult,
  type RunSettings,
  type ScenarioName,
} from './run-result.js';
import { measureStorageCost } from './storage-cost.js';
import { SPANS_PER_REQUEST, type Template } from './templates.js';
import { runWsLoad } from './ws-load.js';

export interface ScenarioContext {
  db: DatabaseServer;
  templates: Template[];
  copy: CopyTemplates;
  settings: RunSettings;
  /** This round's protobuf spans/s, when it ran already (protobuf-70 and the gzip pool use it). */
  protobufSpansPerS?: number;
}

let databaseCounter = 0;

/** A fresh database for one run; `use` runs with its URL, the database is dropped afterwards. */
export async function withFreshDatabase<T>(db: DatabaseServer, use: (url: string) => Promise<T>): Promise<T> {
  const name = `th_load_${process.pid}_${++databaseCounter}`;
  const drop = await db.freshDatabase(name);
  try {
    return await use(db.urlOf(name));
  } finally {
    await drop();
  }
}

export function postgresProbe(db: DatabaseServer): Map<string, CpuProbe> {
  const pid = db.postmasterPid;
  return pid === undefined ? new Map() : new Map([['postgres', () => treeCpuSeconds(pid)]]);
}

/** Accounting and storage cost of a finished run, read directly from PostgreSQL. */
export async function readOutcome(
  url: string,
  ledger: Ledger,
  withStorage: boolean,
): Promise<Pick<RunResult, 'accounting' | 'storage'>> {
  const client = new pg.Client({ connectionString: url, application_name: 'tracehouse-loadtest' });
  await client.connect();
  try {
    const accounting = await ledger.account(client, OPEN_TENANT);
    return { accounting, storage: withStorage ? await measureStorageCost(client) : undefined };
  } finally {
    await client.end();
  }
}

/** Posts each template body unpatched to a server on a sample database and exports the stored rows. */
export async function sampleCopyTemplates(db: DatabaseServer, templates: Template[]): Promise<CopyTemplates> {
  return withFreshDatabase(db, async (url) => {
    const server = await startServer(url);
    try {
      for (const template of templates) {
        const res = await fetch(`${server.url}/v1/traces`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-protobuf' },
          body: template.protobuf.body as Uint8Array<ArrayBuffer>,
        });
        await res.arrayBuffer();
        if (res.status !== 200) throw new Error(`sample request answered ${res.status}`);
      }
    } finally {
      await stopServer(server);
    }
    return exportCopyTemplates(url, templates);
  });
}

async function gzipSource(ctx: ScenarioContext, ledger: Ledger): Promise<BodySource> {
  // Enough bodies for 1.5 × this round's protobuf rate (or 100k spans/s when unknown), at most 8,000.
  const rate = (ctx.protobufSpansPerS ?? 100_000) * 1.5;
  const seconds = ctx.settings.warmupS + ctx.settings.durationS;
  const count = Math.min(8000, Math.ceil((rate * seconds) / SPANS_PER_REQUEST) + ctx.settings.connections * 2);
  return gzipPoolSource(ctx.templates, ledger, count);
}

/** One run of an ingest scenario against one server process. */
export async function runIngest(ctx: ScenarioContext, scenario: ScenarioName, run: number): Promise<RunResult> {
  const { settings } = ctx;
  const seconds = settings.warmupS + settings.durationS;
  return withFreshDatabase(ctx.db, async (url) => {
    const profiling = scenario === 'protobuf' && settings.profileDir !== undefined;
    const env: Record<string, string> = profiling
      ? { ...settings.serverEnv, ...profilerEnv(settings.profileDir!, settings.serverEnv.NODE_OPTIONS) }
      : settings.serverEnv;
    const spawnedAt = performance.now();
    const server: TracehouseProcess = await startServer(url, env);
    const ledger = new Ledger(newRunTag(), SPANS_PER_REQUEST);
    const notes: string[] = [];
    let rss: number | undefined;
    let result: Partial<RunResult> = {};
    try {
      const source =
        scenario === 'protobuf-gzip'
          ? await gzipSource(ctx, ledger)
          : patchingSource(ctx.templates, ledger, scenario === 'json' ? 'json' : 'protobuf');
      const serverPid = server.child.pid!;
      const probes = new Map<string, CpuProbe>([
        ['server', () => cpuSeconds(serverPid) ?? Number.NaN],
        ...postgresProbe(ctx.db),
        ['loadgen', selfCpuSeconds],
      ]);
      const cpu = scheduleCpuWindow(probes, settings);
      const startedAt = performance.now();
      result.profileSkipMs = startedAt - spawnedAt;
      let offered: number | undefined;
      if (scenario === 'websocket') {
        const ws = await runWsLoad(ctx.templates, ledger, {
          url: server.url,
          connections: settings.wsConnections,
          window: settings.wsWindow,
          seconds,
        });
        const closes = Object.entries(ws.closeCodes).filter(([code]) => code !== '1000' && code !== '1005');
        if (closes.length > 0) notes.push(`WebSocket closes: ${closes.map(([c, n]) => `${c}×${n}`).join(', ')}`);
        if (ws.unexpectedAcks > 0) notes.push(`${ws.unexpectedAcks} acks for no frame in flight`);
      } else if (scenario === 'protobuf-70') {
        if (ctx.protobufSpansPerS === undefined) throw new Error('protobuf-70 needs the protobuf scenario first');
        offered = (ctx.protobufSpansPerS * settings.pacedFraction) / SPANS_PER_REQUEST;
        const paced = await runPacedLoad(source, ledger, {
          url: server.url,
          requestsPerS: offered,
          seconds,
          maxInFlight: settings.connections * 4,
        });
        if (paced.skipped > 0) notes.push(`${paced.skipped} sends skipped: ${settings.connections * 4} in flight`);
      } else {
        const ingest = runHttpLoad(source, ledger, { url: server.url, connections: settings.connections, seconds });
        const queries =
          scenario === 'mixed'
            ? runQueryLoad(ledger, {
                url: server.url,
                connections: 2,
                requestsPerS: settings.queryRequestsPerS,
                seconds,
              })
            : undefined;
        const load = await ingest;
        if (load.exhausted) {
          notes.push(`gzip bodies used up after ${((load.endedAt - load.startedAt) / 1000).toFixed(1)} s`);
        }
        result.queries = await queries;
      }
      result = { ...result, ...windowFigures(ledger, startedAt, settings), offeredRequestsPerS: offered };
      result.cores = await cpu.result;
      rss = peakRssBytes(serverPid);
    } finally {
      await stopServer(server);
    }
    notes.push(
      ...serverErrors(server)
        .slice(0, 5)
        .map((m) => `server error: ${m}`),
    );
    if (profiling) {
      const file = readdirSync(settings.profileDir!).find((f) => f.includes(`.${server.child.pid}.`));
      result.profile = file && path.join(settings.profileDir!, file);
    }
    const outcome = await readOutcome(url, ledger, true);
    const notFound = result.queries?.acknowledgedNotFound ?? 0;
    if (notFound > 0) {
      // Acknowledged means committed: a trace of an acknowledged request must be readable.
      outcome.accounting.ok = false;
      notes.push(`${notFound} trace-by-id lookups of acknowledged traces answered 404`);
    }
    return { ...(result as RunResult), scenario, run, peakRssBytes: rss, ...outcome, notes };
  });
}

/** One run of the raw COPY limit. */
export async function runLimit(ctx: ScenarioContext, run: number): Promise<RunResult> {
  const { settings } = ctx;
  return withFreshDatabase(ctx.db, async (url) => {
    const ledger = new Ledger(newRunTag(), SPANS_PER_REQUEST);
    const cpu = scheduleCpuWindow(new Map([...postgresProbe(ctx.db), ['loadgen', selfCpuSeconds]]), settings);
    const startedAt = performance.now();
    const limit = await runCopyLimit(ctx.copy, ledger, {
      databaseUrl: url,
      connections: settings.copyConnections,
      rowsPerCopy: settings.copyRowsPerCopy,
      seconds: settings.warmupS + settings.durationS,
    });
    const figures = windowFigures(ledger, startedAt, settings);
    const cores = await cpu.result;
    const outcome = await readOutcome(url, ledger, true);
    const notes = [`${limit.copies} COPY statements of ${settings.copyRowsPerCopy} rows`];
    return { scenario: 'limit', run, ...figures, peakRssBytes: undefined, cores, ...outcome, notes };
  });
}
