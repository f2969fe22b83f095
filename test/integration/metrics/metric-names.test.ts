/**
 * Every metric that the shipped Prometheus rules and Grafana dashboards query exists: exposed by a
 * real tracehouse's /metrics (or the canary's), or recorded by a rule of deploy/prometheus/rules/.
 * A renamed metric then fails here instead of silently blanking a panel or an alert.
 */
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Canary, CANARY_DEFAULTS } from '../../../server/ops/canary.js';
import { useTestDatabase } from '../../helpers/db.js';
import { buildRequest } from '../../helpers/otlp-fixtures.js';
import { startTestServer, type TestServer } from '../../helpers/server.js';
import { ROOT, readYaml, type Yaml } from '../../unit/deploy/deploy-files.js';

const db = useTestDatabase();
let server: TestServer;

beforeAll(async () => {
  // With Redis, as in production: tracehouse_redis_up exists only then.
  server = await startTestServer(db.connectionString, {
    cache: { redisUrl: process.env.TEST_REDIS_URL || 'redis://127.0.0.1:6379' },
  });
  const nowNs = BigInt(Date.now()) * 1_000_000n;
  const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
  await server.app.inject({
    method: 'POST',
    url: '/v1/traces',
    headers: { 'content-type': 'application/json' },
    payload: buildRequest({
      spans: [
        {
          traceId,
          spanId: '00f067aa0ba902b7',
          name: 'GET /',
          kind: 3,
          startTimeUnixNano: nowNs,
          endTimeUnixNano: nowNs + 10n,
        },
        {
          traceId,
          spanId: '00f067aa0ba902b8',
          parentSpanId: '00f067aa0ba902b7',
          name: 'GET /',
          kind: 2,
          startTimeUnixNano: nowNs,
          endTimeUnixNano: nowNs + 5n,
          resource: { attributes: { 'service.name': 'backend' } },
        },
      ],
    }).json,
  });
});

afterAll(async () => {
  await server?.close();
});

/** Sample names of an exposition: from # TYPE lines, histograms with their _bucket/_sum/_count. */
function exposedNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const [, name, type] of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    names.add(name);
    if (type === 'histogram' || type === 'summary') {
      for (const suffix of ['_bucket', '_sum', '_count']) names.add(`${name}${suffix}`);
    }
  }
  return names;
}

const PROMQL_KEYWORDS = new Set([
  'sum',
  'rate',
  'by',
  'max',
  'min',
  'avg',
  'and',
  'or',
  'unless',
  'on',
  'ignoring',
  'group_left',
  'scalar',
  'vector',
  'histogram_quantile',
  'increase',
  'count',
  'topk',
  'le',
  'without',
  'bool',
  'offset',
]);

/** Metric names in a PromQL expression: identifiers that are not functions, keywords, labels or strings. */
function metricNames(expr: string): string[] {
  const withoutStrings = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, '{}')
    .replace(/\[[^\]]*\]/g, '[]')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  return [...withoutStrings.matchAll(/(?<![\w$])([a-zA-Z_:][\w:]*)(?![\w(])/g)]
    .map((m) => m[1])
    .filter((name) => !PROMQL_KEYWORDS.has(name) && !/^\d/.test(name))
    .filter((name) => name.includes('_') || name.includes(':') || name === 'up');
}

function ruleExpressions(): { where: string; expr: string; record?: string }[] {
  const dir = path.join(ROOT, 'deploy/prometheus/rules');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.yml'))
    .flatMap((file) =>
      (readYaml(`deploy/prometheus/rules/${file}`).groups as Yaml[]).flatMap((g) =>
        (g.rules as Yaml[]).map((r) => ({
          where: `${file}: ${r.alert ?? r.record}`,
          expr: r.expr as string,
          record: r.record,
        })),
      ),
    );
}

function dashboardExpressions(): { where: string; expr: string }[] {
  const dir = path.join(ROOT, 'deploy/grafana/dashboards');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .flatMap((file) => {
      const dashboard = JSON.parse(readFileSync(path.join(dir, file), 'utf8'));
      return (dashboard.panels as Yaml[]).flatMap((panel) =>
        ((panel.targets ?? []) as Yaml[])
          .filter((t) => t.expr)
          .map((t) => ({ where: `${file}: ${panel.title}`, expr: (t.expr as string).replace(/\$\w+/g, '1') })),
      );
    });
}

describe('metric names used by the rules and dashboards', () => {
  it('all exist', async () => {
    const exposed = exposedNames(await server.metrics.registry.metrics());
    const canaryRegistry = new Registry();
    new Canary({ endpoint: 'http://127.0.0.1:1', ...CANARY_DEFAULTS }, canaryRegistry);
    for (const name of exposedNames(await canaryRegistry.metrics())) exposed.add(name);
    const rules = ruleExpressions();
    for (const rule of rules) if (rule.record) exposed.add(rule.record);
    exposed.add('up');
    const uses = [...rules, ...dashboardExpressions()].flatMap((u) =>
      metricNames(u.expr).map((name) => ({ ...u, name })),
    );
    expect(uses.length).toBeGreaterThan(50);
    expect(uses.filter((u) => !exposed.has(u.name)).map((u) => `${u.where}: ${u.name}`)).toEqual([]);
    // The span metrics carry the names Grafana's Tempo service graph and APM table query.
    for (const name of [
      'traces_spanmetrics_calls_total',
      'traces_spanmetrics_latency_bucket',
      'traces_service_graph_request_total',
      'traces_service_graph_request_failed_total',
      'traces_service_graph_request_server_seconds_bucket',
      'traces_service_graph_request_client_seconds_bucket',
    ]) {
      expect(exposed.has(name), name).toBe(true);
    }
  });
});
