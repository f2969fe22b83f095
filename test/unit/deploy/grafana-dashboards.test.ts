/**
 * The shipped Grafana dashboards are valid provisioning JSON that only names provisioned datasource
 * uids, and link trace ids to the trace view. (Their SQL runs in test/integration/metrics/.)
 */
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, read, readYaml, type Yaml } from './deploy-files.js';

const DIR = 'deploy/grafana/dashboards';
const files = readdirSync(path.join(ROOT, DIR)).filter((f) => f.endsWith('.json'));
const dashboards = files.map((file) => ({ file, json: JSON.parse(read(`${DIR}/${file}`)) as Yaml }));
const provisioned = new Map(
  (readYaml('deploy/grafana/provisioning/datasources/datasources.yml').datasources as Yaml[]).map((d) => [
    d.uid,
    d.type,
  ]),
);

describe('Grafana dashboards', () => {
  it('ship the service overview, ingest health and SLO dashboards with fixed, unique uids', () => {
    expect(files.sort()).toEqual(['ingest-health.json', 'service-overview.json', 'slo.json']);
    const uids = dashboards.map((d) => d.json.uid);
    expect(new Set(uids).size).toBe(uids.length);
    for (const { file, json } of dashboards) {
      expect(json.uid, file).toMatch(/^tracehouse-[a-z-]+$/);
      expect(json.title, file).toMatch(/^tracehouse \/ /);
      const ids = (json.panels as Yaml[]).map((p) => p.id);
      expect(new Set(ids).size, file).toBe(ids.length);
    }
  });

  it('name only provisioned datasources, by uid and type', () => {
    for (const { file, json } of dashboards) {
      const refs = [
        ...(json.templating.list as Yaml[]).filter((v) => v.datasource).map((v) => v.datasource),
        ...(json.panels as Yaml[]).flatMap((p) => [p.datasource, ...(p.targets as Yaml[]).map((t) => t.datasource)]),
      ];
      for (const ref of refs) {
        expect(provisioned.get(ref.uid), `${file}: ${ref.uid}`).toBe(ref.type);
      }
    }
  });

  it('link each trace of the slowest-traces table to the trace view of the query API datasource', () => {
    const overview = dashboards.find((d) => d.file === 'service-overview.json')!.json;
    const table = (overview.panels as Yaml[]).find((p) => p.title === 'Slowest traces')!;
    const link = table.fieldConfig.overrides[0].properties[0].value[0];
    const panes = JSON.parse(decodeURIComponent(new URL(link.url, 'http://grafana').searchParams.get('panes')!));
    expect(panes.trace.datasource).toBe('tracehouse-jaeger');
    expect(panes.trace.queries[0]).toMatchObject({ queryType: 'traceId', query: '${__value.raw}' });
  });
});
