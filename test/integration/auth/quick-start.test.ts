/**
 * The README quick start with authentication, as a user runs it: `tracehouse token` (the compiled
 * CLI) prints a token signed with JWT_SECRET, and the real OTel protobuf exporter sends it from
 * OTEL_EXPORTER_OTLP_HEADERS="Authorization=Bearer <token>". Without it the export fails at once:
 * 401 is not retried.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_SECRET } from '../../helpers/auth.js';
import { REPO_ROOT, ensureDistBuilt } from '../../helpers/build-dist.js';
import { useTestDatabase } from '../../helpers/db.js';
import { realisticSpans, toReadableSpans } from '../../helpers/otlp-fixtures.js';
import { startTestServer, type TestServer } from '../../helpers/server.js';

const db = useTestDatabase();
let server: TestServer;

beforeAll(async () => {
  const build = await ensureDistBuilt();
  if (build.diagnostics) console.warn(`tsc reported problems but emitted dist/:\n${build.diagnostics.slice(0, 2000)}`);
  server = await startTestServer(db.connectionString, { auth: { jwtSecret: TEST_SECRET } }, { listen: true });
});
afterAll(async () => {
  await server?.close();
});

function runTracehouse(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [path.join(REPO_ROOT, 'bin', 'tracehouse.js'), ...args],
      { env: { PATH: process.env.PATH ?? '', ...env }, timeout: 30_000 },
      (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

async function exportWithEnvHeaders(headers: string | undefined, tenantService: string): Promise<ExportResult> {
  const saved = process.env.OTEL_EXPORTER_OTLP_HEADERS;
  if (headers === undefined) delete process.env.OTEL_EXPORTER_OTLP_HEADERS;
  else process.env.OTEL_EXPORTER_OTLP_HEADERS = headers;
  try {
    const exporter = new OTLPTraceExporter({ url: `${server.url}/v1/traces` });
    const spans = toReadableSpans({
      spans: realisticSpans(20, { nowMs: Date.now(), resource: { attributes: { 'service.name': tenantService } } }),
    });
    const result = await new Promise<ExportResult>((resolve) => exporter.export(spans, resolve));
    await exporter.shutdown();
    return result;
  } finally {
    if (saved === undefined) delete process.env.OTEL_EXPORTER_OTLP_HEADERS;
    else process.env.OTEL_EXPORTER_OTLP_HEADERS = saved;
  }
}

describe('README quick start with authentication', () => {
  it('exports with OTEL_EXPORTER_OTLP_HEADERS="Authorization=Bearer $(tracehouse token …)" as the token’s tenant', async () => {
    const minted = await runTracehouse(['token', '--tenant', 'acme', '--scope', 'traces:write', '--ttl', '1h'], {
      JWT_SECRET: TEST_SECRET,
      LOG_LEVEL: 'silent',
    });
    expect(minted.stderr).toBe('');
    expect(minted.code).toBe(0);
    const token = minted.stdout.trim();
    expect(token.split('.')).toHaveLength(3);

    const result = await exportWithEnvHeaders(`Authorization=Bearer ${token}`, 'quick-start');
    expect(result.code).toBe(ExportResultCode.SUCCESS);
    const { rows } = await db.query<{ tenant: string; n: number }>(
      "SELECT tenant, count(*)::int AS n FROM spans WHERE service_name = 'quick-start' GROUP BY tenant",
    );
    expect(rows).toEqual([{ tenant: 'acme', n: 20 }]);
  });

  it('fails an export without a token at once (401 is not retried)', async () => {
    const startedAt = Date.now();
    const result = await exportWithEnvHeaders(undefined, 'no-token');
    expect(result.code).toBe(ExportResultCode.FAILED);
    expect(Date.now() - startedAt).toBeLessThan(2000);
  });

  it('explains what is missing when no key is configured, with exit code 2', async () => {
    const result = await runTracehouse(['token', '--tenant', 'acme'], { LOG_LEVEL: 'silent' });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/set JWT_SECRET or JWT_PRIVATE_KEY_FILE/);
  });
});
