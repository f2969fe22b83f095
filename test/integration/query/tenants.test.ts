/**
 * Tenant isolation on every query endpoint. Two tenants store a trace with the SAME trace id (and
 * their own services); the query API, mounted with a test-only tenant hook (the app sets
 * request.tenant from the verified token; here a header stands in for it), shows each tenant only
 * its own rows, and a third tenant nothing at all.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import '../../../server/app.js'; // request.tenant
import { registerQueryApi } from '../../../server/query/index.js';
import type { Storage } from '../../../server/storage/types.js';
import { useTestDatabase } from '../../helpers/db.js';
import { makeRow, spanId, traceId } from '../storage/span-rows.js';
import { useStorage } from '../storage/storage-fixture.js';
import { type Json } from './query-fixtures.js';

const db = useTestDatabase();
const newStorage = useStorage(db);
let storage: Storage;
let app: FastifyInstance;

const sharedTraceId = traceId();
const hex = sharedTraceId.toString('hex');
const nowMs = Date.now();
const startNs = BigInt(nowMs - 10 * 60_000) * 1_000_000n;
const TENANTS = ['acme', 'globex'] as const;

/** A two-span trace of `tenant`: `<tenant>-web` calls `<tenant>-db`. */
function rowsOf(tenant: string) {
  const rootId = spanId();
  const common = { traceId: sharedTraceId, attributes: `{"tenant.marker":"${tenant}"}` };
  return [
    makeRow({
      ...common,
      spanId: rootId,
      parentSpanId: null,
      name: `${tenant} GET /`,
      serviceName: `${tenant}-web`,
      resourceAttributes: `{"service.name":"${tenant}-web"}`,
      startTimeUnixNano: startNs,
      endTimeUnixNano: startNs + 5_000_000n,
    }),
    makeRow({
      ...common,
      parentSpanId: rootId,
      name: `${tenant} SELECT`,
      kind: 3,
      serviceName: `${tenant}-db`,
      resourceAttributes: `{"service.name":"${tenant}-db"}`,
      startTimeUnixNano: startNs + 1_000_000n,
      endTimeUnixNano: startNs + 2_000_000n,
    }),
  ];
}

beforeAll(async () => {
  storage = await newStorage();
  await storage.writer.write(TENANTS.map((tenant) => ({ tenant, rows: rowsOf(tenant) })));
  app = Fastify();
  app.decorateRequest('tenant', '');
  app.addHook('onRequest', async (request) => {
    request.tenant = String(request.headers['x-test-tenant']);
  });
  await registerQueryApi(app, { reader: storage.reader });
  await app.ready();
});
afterAll(async () => {
  await app?.close();
});

async function get(
  tenant: string,
  url: string,
  accept?: string,
): Promise<{ status: number; text: string; body: Json }> {
  const headers: Record<string, string> = { 'x-test-tenant': tenant };
  if (accept) headers.accept = accept;
  const response = await app.inject({ method: 'GET', url, headers });
  const text = response.rawPayload.toString('latin1');
  const json = String(response.headers['content-type']).includes('json') ? response.json() : undefined;
  return { status: response.statusCode, text, body: json };
}

const window = `start=${Math.floor(nowMs / 1000) - 3600}&end=${Math.floor(nowMs / 1000) + 60}`;
const iso = (ms: number) => new Date(ms).toISOString();
const v3Window = `query.start_time_min=${iso(nowMs - 3_600_000)}&query.start_time_max=${iso(nowMs + 60_000)}`;

/** Every endpoint, called for the tenant being checked; each answer may mention only that tenant. */
function endpoints(tenant: string): Array<{ name: string; url: string; accept?: string }> {
  const q = encodeURIComponent(`{ resource.service.name = "${tenant}-web" }`);
  return [
    { name: 'v1 services', url: '/api/services' },
    { name: 'v1 service operations', url: `/api/services/${tenant}-web/operations` },
    { name: 'v1 operations', url: `/api/operations?service=${tenant}-web` },
    { name: 'v1 search', url: `/api/traces?service=${tenant}-web&start=${(nowMs - 3_600_000) * 1000}` },
    { name: 'v1 traces by id list', url: `/api/traces?traceID=${hex}` },
    { name: 'v1 trace by id', url: `/api/traces/${hex}` },
    { name: 'tempo v1 trace by id (protobuf)', url: `/api/traces/${hex}`, accept: 'application/protobuf' },
    { name: 'v1 dependencies', url: `/api/dependencies?endTs=${nowMs + 60_000}&lookback=3600000` },
    { name: 'v3 services', url: '/api/v3/services' },
    { name: 'v3 operations', url: `/api/v3/operations?service=${tenant}-web` },
    { name: 'v3 search', url: `/api/v3/traces?query.service_name=${tenant}-web&${v3Window}` },
    { name: 'v3 trace by id', url: `/api/v3/traces/${hex}` },
    { name: 'tempo v2 trace by id (protobuf)', url: `/api/v2/traces/${hex}`, accept: 'application/protobuf' },
    { name: 'tempo v2 trace by id (json)', url: `/api/v2/traces/${hex}` },
    { name: 'tempo search (q)', url: `/api/search?q=${q}&${window}` },
    { name: 'tempo search (everything)', url: `/api/search?q=%7B%7D&${window}` },
    { name: 'tempo search (tags)', url: `/api/search?tags=${encodeURIComponent(`tenant.marker=${tenant}`)}&${window}` },
    { name: 'tempo tags v1', url: `/api/search/tags?${window}` },
    { name: 'tempo tags v2', url: `/api/v2/search/tags?${window}` },
    { name: 'tempo tag values v1', url: `/api/search/tag/tenant.marker/values?${window}` },
    { name: 'tempo service values v1', url: `/api/search/tag/service.name/values?${window}` },
    { name: 'tempo tag values v2', url: `/api/v2/search/tag/span.tenant.marker/values?${window}` },
    { name: 'tempo service values v2', url: `/api/v2/search/tag/resource.service.name/values?${window}` },
    { name: 'tempo span name values v2', url: `/api/v2/search/tag/name/values?${window}` },
  ];
}

describe.each(TENANTS)('tenant %s', (tenant) => {
  const other = TENANTS.find((t) => t !== tenant)!;

  it.each(endpoints(tenant))('$name shows its own rows and never the other tenant’s', async ({ url, accept }) => {
    const { status, text } = await get(tenant, url, accept);
    expect(status, text).toBe(200);
    if (!url.includes('/tags?')) expect(text).toContain(tenant);
    expect(text).not.toContain(other);
  });

  it.each(endpoints(other))('$name for the other tenant’s names finds nothing', async ({ name, url, accept }) => {
    const { status, text, body } = await get(tenant, url, accept);
    expect(text).not.toContain(other);
    if (name.includes('trace by id')) return; // the same trace id exists for both: covered above
    if (name === 'v3 search') expect(status).toBe(404);
    else expect(status).toBe(200);
    if (name === 'v1 search' || name === 'v1 service operations' || name === 'v1 operations') {
      expect(body.data).toEqual([]);
    }
    if (name === 'tempo search (q)' || name === 'tempo search (tags)') expect(body.traces).toEqual([]);
  });
});

describe('a tenant with no data', () => {
  it.each(endpoints('acme'))('$name shows nothing of acme or globex', async ({ name, url, accept }) => {
    const { status, text } = await get('initech', url, accept);
    expect(text).not.toContain('acme');
    expect(text).not.toContain('globex');
    if (name.includes('trace by id') && !name.includes('list')) expect(status).toBe(404);
    else if (name === 'v3 search') expect(status).toBe(404);
    else expect(status).toBe(200);
  });
});
