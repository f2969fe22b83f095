/**
 * Every SQL query of the shipped Grafana dashboards (panel targets and template variables on the
 * PostgreSQL datasource) runs against a seeded database after Grafana's interpolation: template
 * variables and $__interval first, then the PostgreSQL macros ($__timeFilter, $__timeGroupAlias,
 * $__timeFrom, …) expanded as Grafana's PostgreSQL datasource does for a fixed time range. Each
 * returns the expected columns, and the values a direct computation over the seeded spans gives.
 * A new panel without an expectation here fails the test.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../server/config.js';
import { createStorage } from '../../../server/storage/index.js';
import type { Storage } from '../../../server/storage/types.js';
import { useTestDatabase } from '../../helpers/db.js';
import { ROOT } from '../../unit/deploy/deploy-files.js';
import {
  addBuckets,
  durationNs,
  expectedRed,
  minuteOf,
  quantileMs,
  writeSeed,
  type Seed,
  type SeedSpan,
} from './red-seed.js';

const PG_UID = 'tracehouse-postgres';
const DASHBOARDS_DIR = path.join(ROOT, 'deploy', 'grafana', 'dashboards');

type Row = Record<string, unknown>;

interface SqlQuery {
  dashboard: string;
  title: string; // panel title, or `variable <name>`
  format: string;
  sql: string;
}

/** Every PostgreSQL query of every dashboard: panel targets and query variables. */
function dashboardQueries(): SqlQuery[] {
  const out: SqlQuery[] = [];
  for (const file of readdirSync(DASHBOARDS_DIR).filter((f) => f.endsWith('.json'))) {
    const dashboard = JSON.parse(readFileSync(path.join(DASHBOARDS_DIR, file), 'utf8'));
    for (const variable of dashboard.templating?.list ?? []) {
      if (variable.type === 'query' && variable.datasource?.uid === PG_UID) {
        out.push({ dashboard: file, title: `variable ${variable.name}`, format: 'table', sql: variable.query });
      }
    }
    const panels = (dashboard.panels ?? []).flatMap((p: Row) => [p, ...((p.panels as Row[]) ?? [])]);
    for (const panel of panels) {
      for (const target of (panel.targets as Row[]) ?? []) {
        const uid = (target.datasource as Row | undefined)?.uid ?? (panel.datasource as Row | undefined)?.uid;
        if (uid !== PG_UID) continue;
        out.push({
          dashboard: file,
          title: panel.title as string,
          format: target.format as string,
          sql: target.rawSql as string,
        });
      }
    }
  }
  return out;
}

// ---- Grafana's interpolation -----------------------------------------------------------------------

type Variables = Record<string, string | string[]>;

/** Template variables as Grafana formats them for SQL: multi-value → 'a','b'; single → the raw value. */
function interpolateVariables(sql: string, variables: Variables): string {
  return sql.replace(/\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]|\$(\w+)/g, (match, a, b, c) => {
    const name = (a ?? b ?? c) as string;
    if (name.startsWith('__') && !(name in variables)) return match; // a macro: expanded later
    const value = variables[name];
    if (value === undefined) throw new Error(`dashboard SQL uses $${name}, which the test does not define`);
    return Array.isArray(value) ? value.map((v) => `'${v.replaceAll("'", "''")}'`).join(',') : value;
  });
}

function parseIntervalS(text: string): number {
  const m = /^(\d+)(ms|s|m|h|d)$/.exec(text.replace(/'/g, '').trim());
  if (!m) throw new Error(`interval ${text}`);
  return Number(m[1]) * { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400 }[m[2] as 'ms' | 's' | 'm' | 'h' | 'd'];
}

/** The PostgreSQL macros, as grafana's pkg/tsdb/grafana-postgresql-datasource/macros.go expands them. */
function expandMacros(sql: string, from: Date, to: Date): string {
  const iso = (d: Date) => d.toISOString().replace('.000Z', 'Z');
  return sql.replace(/\$(\w+)\(([^)]*)\)/g, (_match, name: string, rawArgs: string) => {
    const args = rawArgs.split(',').map((a) => a.trim());
    const group = () => {
      const s = parseIntervalS(args[1]);
      return `floor(extract(epoch from ${args[0]})/${s})*${s}`;
    };
    switch (name) {
      case '__time':
        return `${args[0]} AS "time"`;
      case '__timeEpoch':
        return `extract(epoch from ${args[0]}) as "time"`;
      case '__timeFilter':
        return `${args[0]} BETWEEN '${iso(from)}' AND '${iso(to)}'`;
      case '__timeFrom':
        return `'${iso(from)}'`;
      case '__timeTo':
        return `'${iso(to)}'`;
      case '__timeGroup':
        return group();
      case '__timeGroupAlias':
        return `${group()} AS "time"`;
      case '__unixEpochFilter':
        return `${args[0]} >= ${Math.floor(from.getTime() / 1000)} AND ${args[0]} <= ${Math.floor(to.getTime() / 1000)}`;
      default:
        throw new Error(`macro $${name} is not expanded by this test`);
    }
  });
}

// ---- the seeded database --------------------------------------------------------------------------------

const db = useTestDatabase();
let storage: Storage;
let seed: Seed;
let from: Date;
let to: Date;
const INTERVAL = '1m';
const VARIABLES: Variables = {
  tenant: 'acme',
  __interval: INTERVAL,
  __interval_ms: String(parseIntervalS(INTERVAL) * 1000),
  availability_target: '99.9',
  latency_target_ms: '500',
};
const SERVICE_ALL = ['api', 'frontend']; // "All" of the multi-value $service: every value, quoted
const SLO_SERVICE = 'api';

beforeAll(async () => {
  const config = loadConfig({}, { storage: { databaseUrl: db.connectionString } });
  storage = await createStorage(
    { ...config.storage, connectionString: db.connectionString },
    pino({ level: 'silent' }),
  );
  seed = await writeSeed(storage, Date.now());
  from = new Date(seed.startMs);
  to = new Date(seed.endMs);
});

afterAll(async () => {
  await storage?.stop();
});

async function runQuery(query: SqlQuery): Promise<{ columns: string[]; rows: Row[] }> {
  const variables = { ...VARIABLES, service: query.dashboard === 'slo.json' ? SLO_SERVICE : SERVICE_ALL };
  const sql = expandMacros(interpolateVariables(query.sql, variables), from, to);
  const result = await db.query(sql);
  return { columns: result.fields.map((f) => f.name), rows: result.rows };
}

// ---- expected figures, straight from the seeded spans ---------------------------------------------------

const acme = (): SeedSpan[] => seed.spans.filter((s) => s.tenant === 'acme');
const isServer = (s: SeedSpan) => s.row.kind === 2 || s.row.kind === 5;
const weightOf = (spans: SeedSpan[]) => spans.reduce((sum, s) => sum + s.row.samplingWeight, 0);
const errorsOf = (spans: SeedSpan[]) => weightOf(spans.filter((s) => s.row.statusCode === 2));

function bucketsOf(spans: SeedSpan[]): number[] {
  let total: number[] | undefined;
  for (const e of expectedRed(spans).values()) total = total ? addBuckets(total, e.buckets) : e.buckets;
  return total!;
}

function groupBy<K>(spans: SeedSpan[], key: (s: SeedSpan) => K): Map<K, SeedSpan[]> {
  const out = new Map<K, SeedSpan[]>();
  for (const s of spans) out.set(key(s), [...(out.get(key(s)) ?? []), s]);
  return out;
}

/** Time series panels: one row per (minute, service); `value` computed from that group's spans. */
function expectSeries(rows: Row[], spans: SeedSpan[], value: (group: SeedSpan[]) => number | null): void {
  const groups = groupBy(spans, (s) => `${minuteOf(s.row) / 1000}|${s.row.serviceName}`);
  expect(rows.length).toBe(groups.size);
  for (const row of rows) {
    const group = groups.get(`${row.time}|${row.metric}`);
    expect(group, `${row.time} ${row.metric}`).toBeDefined();
    expect(row.value as number).toBeCloseTo(value(group!)!, 6);
  }
}

const EXPECTATIONS: Record<string, { columns: string[]; check: (rows: Row[]) => void }> = {
  'variable tenant': {
    columns: ['tenant'],
    check: (rows) => expect(rows).toEqual([{ tenant: 'acme' }, { tenant: 'globex' }]),
  },
  'variable service': {
    columns: ['service_name'],
    check: (rows) => expect(rows).toEqual([{ service_name: 'api' }, { service_name: 'frontend' }]),
  },
  'Requests per second (server spans)': {
    columns: ['time', 'metric', 'value'],
    check: (rows) => expectSeries(rows, acme().filter(isServer), (g) => weightOf(g) / 60),
  },
  'Error ratio (server spans)': {
    columns: ['time', 'metric', 'value'],
    check: (rows) => expectSeries(rows, acme().filter(isServer), (g) => errorsOf(g) / weightOf(g)),
  },
  'p95 duration (server spans)': {
    columns: ['time', 'metric', 'value'],
    check: (rows) => expectSeries(rows, acme().filter(isServer), (g) => quantileMs(0.95, bucketsOf(g))),
  },
  Operations: {
    columns: ['service', 'operation', 'kind', 'calls', 'per_second', 'error_ratio', 'avg_ms', 'p95_ms', 'max_ms'],
    check: (rows) => {
      const kinds = ['unspecified', 'internal', 'server', 'client', 'producer', 'consumer'];
      const groups = groupBy(acme(), (s) => `${s.row.serviceName}|${s.row.name}|${kinds[s.row.kind]}`);
      expect(rows.length).toBe(groups.size);
      const seconds = (to.getTime() - from.getTime()) / 1000;
      for (const row of rows) {
        const g = groups.get(`${row.service}|${row.operation}|${row.kind}`)!;
        expect(g, `${row.service} ${row.operation}`).toBeDefined();
        expect(row.calls).toBeCloseTo(weightOf(g), 9);
        expect(row.per_second).toBeCloseTo(weightOf(g) / seconds, 9);
        expect(row.error_ratio).toBeCloseTo(errorsOf(g) / weightOf(g), 9);
        const weightedMs = g.reduce((sum, s) => sum + (s.row.samplingWeight * durationNs(s.row)) / 1e6, 0);
        expect(row.avg_ms).toBeCloseTo(weightedMs / weightOf(g), 6);
        expect(row.p95_ms).toBeCloseTo(quantileMs(0.95, bucketsOf(g))!, 6);
        expect(row.max_ms).toBeCloseTo(Math.max(...g.map((s) => durationNs(s.row) / 1e6)), 6);
      }
      expect(rows.map((r) => r.calls as number)).toEqual([...rows.map((r) => r.calls as number)].sort((a, b) => b - a));
    },
  },
  'Slowest traces': {
    columns: ['trace_id', 'service', 'operation', 'start_time', 'duration_ms', 'span_count', 'error_count'],
    check: (rows) => {
      const traces = [...groupBy(acme(), (s) => s.row.traceId.toString('hex')).entries()].map(([id, spans]) => {
        const start = spans.reduce(
          (m, s) => (s.row.startTimeUnixNano < m ? s.row.startTimeUnixNano : m),
          spans[0].row.startTimeUnixNano,
        );
        const end = spans.reduce(
          (m, s) => (s.row.endTimeUnixNano > m ? s.row.endTimeUnixNano : m),
          spans[0].row.endTimeUnixNano,
        );
        return {
          id,
          durationMs: Number(end - start) / 1e6,
          errors: spans.filter((s) => s.row.statusCode === 2).length,
        };
      });
      traces.sort((a, b) => b.durationMs - a.durationMs || a.id.localeCompare(b.id));
      expect(rows).toHaveLength(20);
      expect(rows.map((r) => r.trace_id)).toEqual(traces.slice(0, 20).map((t) => t.id));
      rows.forEach((row, i) => {
        expect(row.duration_ms).toBeCloseTo(traces[i].durationMs, 6);
        expect(row).toMatchObject({
          service: 'frontend',
          operation: 'GET /',
          span_count: '4',
          error_count: String(traces[i].errors),
        });
      });
    },
  },
  'Service graph edges': {
    columns: ['client', 'server', 'requests', 'failed', 'avg_server_ms'],
    check: (rows) => {
      const servers = acme().filter((s) => s.row.serviceName === 'api' && s.row.kind === 2);
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({
        client: 'frontend',
        server: 'api',
        requests: weightOf(servers),
        failed: errorsOf(servers),
      });
      const weightedMs = servers.reduce((sum, s) => sum + (s.row.samplingWeight * durationNs(s.row)) / 1e6, 0);
      expect(rows[0].avg_server_ms).toBeCloseTo(weightedMs / weightOf(servers), 6);
    },
  },
  Availability: {
    columns: ['availability', 'target'],
    check: (rows) => {
      const g = acme().filter((s) => isServer(s) && s.row.serviceName === SLO_SERVICE);
      expect(rows).toHaveLength(1);
      expect(rows[0].availability).toBeCloseTo(100 * (1 - errorsOf(g) / weightOf(g)), 9);
      expect(Number(rows[0].target)).toBe(99.9);
    },
  },
  'Error budget remaining': {
    columns: ['budget_remaining'],
    check: (rows) => {
      const g = acme().filter((s) => isServer(s) && s.row.serviceName === SLO_SERVICE);
      expect(rows[0].budget_remaining).toBeCloseTo(100 * (1 - errorsOf(g) / weightOf(g) / 0.001), 6);
      expect(rows[0].budget_remaining as number).toBeLessThan(0); // ~10 % errors miss a 99.9 % target
    },
  },
  'p95 latency': {
    columns: ['p95_ms', 'target_ms'],
    check: (rows) => {
      const g = acme().filter((s) => isServer(s) && s.row.serviceName === SLO_SERVICE);
      expect(rows[0].p95_ms).toBeCloseTo(quantileMs(0.95, bucketsOf(g))!, 6);
      expect(Number(rows[0].target_ms)).toBe(500);
    },
  },
  'Minutes within latency target': {
    columns: ['minutes_within_target'],
    check: (rows) => {
      const minutes = groupBy(
        acme().filter((s) => isServer(s) && s.row.serviceName === SLO_SERVICE),
        (s) => minuteOf(s.row),
      );
      const within = [...minutes.values()].filter((g) => quantileMs(0.95, bucketsOf(g))! <= 500).length;
      expect(Number(rows[0].minutes_within_target)).toBeCloseTo((100 * within) / minutes.size, 9);
    },
  },
  'Error ratio against the allowed ratio': {
    columns: ['time', 'error_ratio', 'allowed'],
    check: (rows) => {
      const minutes = groupBy(
        acme().filter((s) => isServer(s) && s.row.serviceName === SLO_SERVICE),
        (s) => minuteOf(s.row) / 1000,
      );
      expect(rows.length).toBe(minutes.size);
      for (const row of rows) {
        const g = minutes.get(Number(row.time))!;
        expect(row.error_ratio).toBeCloseTo(errorsOf(g) / weightOf(g), 9);
        expect(Number(row.allowed)).toBeCloseTo(0.001, 12);
      }
    },
  },
  'p95 latency against the target': {
    columns: ['time', 'p95_ms', 'target_ms'],
    check: (rows) => {
      const minutes = groupBy(
        acme().filter((s) => isServer(s) && s.row.serviceName === SLO_SERVICE),
        (s) => minuteOf(s.row) / 1000,
      );
      expect(rows.length).toBe(minutes.size);
      for (const row of rows) {
        expect(row.p95_ms).toBeCloseTo(quantileMs(0.95, bucketsOf(minutes.get(Number(row.time))!))!, 6);
      }
    },
  },
};

describe('the SQL of the shipped dashboards', () => {
  const queries = dashboardQueries();

  it('finds the PostgreSQL queries of the service overview and SLO dashboards, each with an expectation', () => {
    expect(new Set(queries.map((q) => q.dashboard))).toEqual(new Set(['service-overview.json', 'slo.json']));
    expect(queries.filter((q) => !(q.title in EXPECTATIONS)).map((q) => `${q.dashboard}: ${q.title}`)).toEqual([]);
  });

  it.each(queries.map((q) => [`${q.dashboard}: ${q.title}`, q] as const))('%s', async (_name, query) => {
    const { columns, rows } = await runQuery(query);
    const expectation = EXPECTATIONS[query.title];
    expect(columns).toEqual(expectation.columns);
    if (query.format === 'time_series') {
      expect(columns[0]).toBe('time');
      const times = rows.map((r) => Number(r.time));
      expect(times).toEqual([...times].sort((a, b) => a - b)); // Grafana needs time series sorted by time
    }
    expect(rows.length).toBeGreaterThan(0);
    expectation.check(rows);
  });
});
