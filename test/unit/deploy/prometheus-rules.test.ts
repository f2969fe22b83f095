/**
 * The Prometheus rules, their unit tests and the Alertmanager example, checked with the real tools
 * (promtool from Debian's `prometheus` package, amtool from `prometheus-alertmanager`; .ci/run
 * installs both): a missing tool fails, never skips. Every alert has a runbook section, a severity
 * that Alertmanager routes, and is covered by a promtool unit test.
 */
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { ROOT, read, readYaml, type Yaml } from './deploy-files.js';

const run = promisify(execFile);
const RULES_DIR = 'deploy/prometheus/rules';
const TESTS_DIR = 'deploy/prometheus/tests';
const ALERTMANAGER = 'deploy/alertmanager/alertmanager.yml';

async function tool(name: string, args: string[], cwd = ROOT): Promise<{ stdout: string; stderr: string }> {
  try {
    return await run(name, args, { cwd });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stdout?: string; stderr?: string };
    if (e.code === 'ENOENT') {
      throw new Error(`${name} is not installed: apt-get install prometheus prometheus-alertmanager (.ci/run does)`);
    }
    throw new Error(`${name} ${args.join(' ')} failed:\n${e.stdout ?? ''}${e.stderr ?? ''}`);
  }
}

const ruleFiles = readdirSync(path.join(ROOT, RULES_DIR))
  .filter((f) => /\.ya?ml$/.test(f))
  .map((f) => `${RULES_DIR}/${f}`);
const testFiles = readdirSync(path.join(ROOT, TESTS_DIR))
  .filter((f) => /\.ya?ml$/.test(f))
  .map((f) => `${TESTS_DIR}/${f}`);
const alerts: Yaml[] = ruleFiles.flatMap((file) =>
  (readYaml(file).groups as Yaml[]).flatMap((g) => (g.rules as Yaml[]).filter((r) => r.alert)),
);

describe('Prometheus rules', () => {
  it('ship alert and recording rules that pass `promtool check rules`', async () => {
    expect(ruleFiles.map((f) => path.basename(f)).sort()).toEqual(['alerts.yml', 'recording.yml']);
    const { stdout } = await tool('promtool', ['check', 'rules', ...ruleFiles]);
    expect(stdout).not.toMatch(/FAILED/);
  });

  it('pass their unit tests (`promtool test rules`)', async () => {
    expect(testFiles.length).toBeGreaterThan(0);
    const { stdout } = await tool(
      'promtool',
      ['test', 'rules', ...testFiles.map((f) => path.relative(TESTS_DIR, f))],
      path.join(ROOT, TESTS_DIR),
    );
    expect(stdout).toMatch(/SUCCESS/);
  });

  it('cover the alerts the issue asks for, each firing in a unit test', () => {
    const names = alerts.map((a) => a.alert as string);
    for (const wanted of [
      'TracehouseSpanErrorRatioHigh',
      'TracehouseSpanLatencyP95High',
      'TracehouseIngestRefusals',
      'TracehouseIngestRejects',
      'TracehouseClientExportFailures',
      'TracehouseQueueSaturated',
      'TracehousePostgresUnreachable',
      'TracehouseInstanceDown',
      'TracehouseErrorBudgetBurnFast',
      'TracehouseErrorBudgetBurnSlow',
      'TracehouseCanaryTracesMissing',
    ]) {
      expect(names).toContain(wanted);
    }
    const tested = new Set(
      testFiles.flatMap((file) =>
        (readYaml(file).tests as Yaml[]).flatMap((t) =>
          ((t.alert_rule_test ?? []) as Yaml[]).filter((a) => (a.exp_alerts ?? []).length > 0).map((a) => a.alertname),
        ),
      ),
    );
    expect(names.filter((name) => !tested.has(name))).toEqual([]);
  });

  it('give every alert a severity, a summary and a runbook section in deploy/runbook.md', () => {
    const headings = new Set(
      [...read('deploy/runbook.md').matchAll(/^#{1,3} (.+)$/gm)].map((m) =>
        m[1]
          .trim()
          .toLowerCase()
          .replace(/[^\w\- ]/g, '')
          .replace(/ /g, '-'),
      ),
    );
    for (const alert of alerts) {
      expect(['critical', 'warning', 'info'], alert.alert).toContain(alert.labels.severity);
      expect(alert.annotations.summary, alert.alert).toBeTruthy();
      const [file, anchor] = (alert.annotations.runbook_url as string).split('#');
      expect(file, alert.alert).toBe('deploy/runbook.md');
      expect(headings.has(anchor), `${alert.alert}: deploy/runbook.md#${anchor}`).toBe(true);
    }
  });

  it('are loaded by deploy/prometheus/prometheus.yml', () => {
    const prometheus = readYaml('deploy/prometheus/prometheus.yml');
    expect(prometheus.rule_files).toContain('/etc/prometheus/rules/*.yml');
  });
});

describe('Alertmanager example', () => {
  it('passes `amtool check-config`', async () => {
    const { stdout } = await tool('amtool', ['check-config', ALERTMANAGER]);
    expect(stdout).toMatch(/SUCCESS/);
  });

  it.each([
    ['critical', 'pager'],
    ['warning', 'chat'],
    ['info', 'mail'],
  ])('routes severity=%s to %s', async (severity, receiver) => {
    const { stdout } = await tool('amtool', [
      'config',
      'routes',
      'test',
      `--config.file=${ALERTMANAGER}`,
      `severity=${severity}`,
      'alertname=TracehouseQueueSaturated',
    ]);
    expect(stdout.trim()).toBe(receiver);
  });

  it('routes every alert of the rules to a receiver by its severity, and inhibits symptoms while tracehouse or PostgreSQL is down', () => {
    const config = readYaml(ALERTMANAGER);
    const routed = (config.route.routes as Yaml[]).map((r) => r.matchers[0]);
    for (const alert of alerts) expect(routed).toContain(`severity="${alert.labels.severity}"`);
    const inhibit = (config.inhibit_rules as Yaml[]).find((r) => r.target_matchers?.includes('layer="symptom"'));
    expect(inhibit?.source_matchers[0]).toMatch(/TracehouseInstanceDown/);
    expect(inhibit?.source_matchers[0]).toMatch(/TracehousePostgresUnreachable/);
    const causes = alerts.filter((a) => a.labels.layer === 'cause').map((a) => a.alert);
    expect(causes.sort()).toEqual(['TracehouseInstanceDown', 'TracehousePostgresUnreachable']);
  });
});
