/**
 * `tracehouse canary` against a real tracehouse (listening on 127.0.0.1): traces written through
 * OTLP/HTTP are read back through the query API and counted written / found; a query side that
 * never finds them counts them missing; the real CLI serves the counters on its own /metrics and
 * stops on SIGTERM. Every loop is bounded in rounds and time.
 */
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Canary, type CanaryOptions } from '../../../server/ops/canary.js';
import { REPO_ROOT, ensureDistBuilt } from '../../helpers/build-dist.js';
import { useTestDatabase } from '../../helpers/db.js';
import { freePort } from '../../helpers/private-postgres.js';
import { counterValue, startTestServer, type TestServer } from '../../helpers/server.js';

const db = useTestDatabase();
let server: TestServer;

beforeAll(async () => {
  server = await startTestServer(db.connectionString, {}, { listen: true });
  await ensureDistBuilt();
});

afterAll(async () => {
  await server?.close();
});

function options(overrides: Partial<CanaryOptions> = {}): CanaryOptions {
  return {
    endpoint: server.url,
    intervalMs: 50,
    lateAfterMs: 5000,
    missingAfterMs: 60_000,
    requestTimeoutMs: 5000,
    serviceName: 'canary-test',
    ...overrides,
  };
}

async function value(registry: Registry, name: string): Promise<number> {
  const { values } = await registry.getSingleMetric(name)!.get();
  return values.reduce((sum, v) => sum + v.value, 0);
}

describe('the canary', () => {
  it('writes small traces through OTLP and finds every one through the query API', async () => {
    const registry = new Registry();
    const canary = new Canary(options(), registry);
    for (let i = 0; i < 3; i++) await canary.tick();
    expect(await value(registry, 'tracehouse_canary_written_total')).toBe(3);
    expect(await value(registry, 'tracehouse_canary_found_total')).toBe(3);
    expect(await value(registry, 'tracehouse_canary_missing_total')).toBe(0);
    expect(await value(registry, 'tracehouse_canary_late_total')).toBe(0);
    expect(canary.pending).toBe(0);
    // Its traces cross two services, so they feed the span metrics and the service graph too.
    expect(
      await counterValue(server.metrics, 'traces_service_graph_request_total', {
        client: 'canary-test-frontend',
        server: 'canary-test-backend',
      }),
    ).toBe(3);
    const stored = await db.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM spans WHERE service_name LIKE 'canary-test-%'",
    );
    expect(stored.rows[0].n).toBe(9);
  });

  it('counts traces the query side never returns as missing, and failed writes by status', async () => {
    const notFound: Server = createServer((_req, res) => res.writeHead(404).end());
    await new Promise<void>((resolve) => notFound.listen(0, '127.0.0.1', resolve));
    const queryEndpoint = `http://127.0.0.1:${(notFound.address() as AddressInfo).port}`;
    try {
      let now = 1_000_000;
      const registry = new Registry();
      const canary = new Canary(options({ queryEndpoint, missingAfterMs: 1000 }), registry, () => now);
      await canary.tick();
      await canary.tick();
      expect(await value(registry, 'tracehouse_canary_written_total')).toBe(2);
      expect(canary.pending).toBe(2);
      now += 2000;
      await canary.readBack();
      expect(await value(registry, 'tracehouse_canary_missing_total')).toBe(2);
      expect(await value(registry, 'tracehouse_canary_found_total')).toBe(0);
      expect(canary.pending).toBe(0);

      const other = new Registry();
      const unwritable = new Canary(options({ endpoint: queryEndpoint }), other);
      await unwritable.tick();
      const { values } = await other.getSingleMetric('tracehouse_canary_write_errors_total')!.get();
      expect(values).toEqual([expect.objectContaining({ labels: { status: '404' }, value: 1 })]);
    } finally {
      await new Promise((resolve) => notFound.close(resolve));
    }
  });

  it('runs as `tracehouse canary`, serves its counters on /metrics and stops on SIGTERM', async () => {
    const port = await freePort();
    const child = spawn(
      process.execPath,
      [
        path.join(REPO_ROOT, 'bin', 'tracehouse.js'),
        'canary',
        '--endpoint',
        server.url,
        '--interval-ms',
        '100',
        '--metrics-host',
        '127.0.0.1',
        '--metrics-port',
        String(port),
      ],
      { cwd: REPO_ROOT, env: { PATH: process.env.PATH ?? '', LOG_LEVEL: 'warn' }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      let text = '';
      const deadline = Date.now() + 20_000;
      while (Date.now() < deadline) {
        text = await fetch(`http://127.0.0.1:${port}/metrics`).then(
          (r) => r.text(),
          () => '',
        );
        const found = /^tracehouse_canary_found_total (\d+)/m.exec(text);
        if (found && Number(found[1]) >= 3) break;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      expect(text, stderr).toMatch(/^tracehouse_canary_found_total [3-9]\d*/m);
      expect(text).toMatch(/^tracehouse_canary_missing_total 0$/m);
      expect(text).toMatch(/^tracehouse_canary_written_total \d+$/m);
      expect(text).toMatch(/^tracehouse_canary_late_total 0$/m);
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
