import Fastify, { type FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuthenticator } from '../../../server/auth/authenticator.js';
import { registerAuth } from '../../../server/auth/hook.js';
import { requireScope } from '../../../server/auth/scopes.js';
import { loadConfig, type Config } from '../../../server/config.js';
import { createMetrics, type Metrics } from '../../../server/ops/metrics.js';
import { AUDIENCE, ISSUER, TEST_SECRET, secretKey, signToken } from '../../helpers/auth.js';
import { counterValue } from '../../helpers/server.js';

const WS_PATH = '/v1/traces/ws';

async function buildAuthApp(config: Config): Promise<{ app: FastifyInstance; metrics: Metrics }> {
  const metrics = createMetrics(new Registry());
  const app = Fastify();
  app.decorateRequest('tenant', '');
  registerAuth(app, {
    authenticator: await createAuthenticator(config.auth, pino({ level: 'silent' })),
    metrics,
    retryAfterS: 1,
    webSocketPath: WS_PATH,
  });
  const echo = async (request: { tenant: string; scopes: ReadonlySet<string>; authExpiresAt?: number }) => ({
    tenant: request.tenant,
    scopes: [...request.scopes].sort(),
    expiresAt: request.authExpiresAt ?? null,
  });
  app.post('/v1/traces', requireScope('traces:write'), echo);
  app.get(WS_PATH, requireScope('traces:write'), echo);
  app.get('/api/search', requireScope('traces:read'), echo);
  app.get('/health', requireScope('public'), async () => ({ status: 'ok' }));
  app.post('/admin/backup', echo); // declares nothing: needs admin
  await app.ready();
  return { app, metrics };
}

const token = (claims: Record<string, unknown> = {}) =>
  signToken({ key: secretKey(), alg: 'HS256', claims: { scope: 'traces:write', ...claims } });

describe('auth off (no keys configured)', () => {
  let app: FastifyInstance;
  beforeAll(async () => ({ app } = await buildAuthApp(loadConfig({}))));
  afterAll(() => app.close());

  it('runs every request as tenant default with every scope, whatever the headers say', async () => {
    const response = await app.inject({ method: 'POST', url: '/v1/traces', headers: { 'x-scope-orgid': 'globex' } });
    expect(response.json()).toEqual({
      tenant: 'default',
      scopes: ['admin', 'traces:read', 'traces:write'],
      expiresAt: null,
    });
  });

  it('refuses to serve open in production mode unless explicitly allowed', async () => {
    const silent = pino({ level: 'silent' });
    await expect(createAuthenticator(loadConfig({ TRACEHOUSE_PRODUCTION: '1' }).auth, silent)).rejects.toThrow(
      /refusing to serve without authentication/,
    );
    const allowed = await createAuthenticator(
      loadConfig({ TRACEHOUSE_PRODUCTION: '1', AUTH_ALLOW_OPEN: '1' }).auth,
      silent,
    );
    expect(allowed.open).toBe(true);
    const keyed = await createAuthenticator(
      loadConfig({ TRACEHOUSE_PRODUCTION: 'yes', JWT_SECRET: TEST_SECRET }).auth,
      silent,
    );
    expect(keyed.open).toBe(false);
    expect(() => loadConfig({ TRACEHOUSE_PRODUCTION: 'maybe' })).toThrow(/must be 1 or 0/);
  });

  it('says loudly that authentication is off', async () => {
    const lines: string[] = [];
    const log = pino({ level: 'info' }, { write: (line: string) => lines.push(line) });
    await createAuthenticator(loadConfig({}).auth, log);
    expect(lines.map((line) => JSON.parse(line) as { level: number; msg: string })).toContainEqual(
      expect.objectContaining({ level: 40, msg: expect.stringMatching(/^AUTHENTICATION IS OFF/) }),
    );
  });
});

describe('auth on', () => {
  let app: FastifyInstance;
  let metrics: Metrics;
  beforeAll(async () => {
    ({ app, metrics } = await buildAuthApp(
      loadConfig({ JWT_SECRET: TEST_SECRET, JWT_ISSUER: ISSUER, JWT_AUDIENCE: AUDIENCE }),
    ));
  });
  afterAll(() => app.close());

  it('sets tenant, scopes and expiry from a valid bearer token; X-Scope-OrgID and ?tenant= change nothing', async () => {
    const exp = Math.floor(Date.now() / 1000) + 120;
    const response = await app.inject({
      method: 'POST',
      url: '/v1/traces?tenant=globex',
      headers: { authorization: `Bearer ${await token({ exp })}`, 'x-scope-orgid': 'globex' },
    });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ tenant: 'acme', scopes: ['traces:write'], expiresAt: (exp + 30) * 1000 });
  });

  it('answers a missing token with 401, WWW-Authenticate and a google.rpc.Status in the request encoding', async () => {
    const json = await app.inject({
      method: 'POST',
      url: '/v1/traces',
      headers: { 'content-type': 'application/json' },
    });
    expect(json.statusCode).toBe(401);
    expect(json.headers['www-authenticate']).toBe('Bearer realm="tracehouse"');
    expect(json.json()).toMatchObject({ code: 16, message: expect.stringMatching(/^TH_ERR_AUTH_MISSING_TOKEN: /) });
    const proto = await app.inject({
      method: 'POST',
      url: '/v1/traces',
      headers: { 'content-type': 'application/x-protobuf', authorization: 'Bearer nope' },
    });
    expect(proto.statusCode).toBe(401);
    expect(proto.headers['content-type']).toBe('application/x-protobuf');
    expect(proto.headers['www-authenticate']).toContain('error="invalid_token"');
    expect(proto.rawPayload[0]).toBe(0x08);
    expect(proto.rawPayload[1]).toBe(16); // UNAUTHENTICATED
  });

  it('refuses a non-Bearer Authorization header', async () => {
    for (const authorization of [
      `Basic ${Buffer.from('a:b').toString('base64')}`,
      'Bearer',
      `Token ${await token()}`,
    ]) {
      const response = await app.inject({ method: 'POST', url: '/v1/traces', headers: { authorization } });
      expect(response.statusCode, authorization).toBe(401);
    }
  });

  it('answers 403 with insufficient_scope when the token lacks the route scope; scopes do not imply each other', async () => {
    const readOnly = await token({ scope: 'traces:read' });
    const write = await app.inject({
      method: 'POST',
      url: '/v1/traces',
      headers: { authorization: `Bearer ${readOnly}` },
    });
    expect(write.statusCode).toBe(403);
    expect(write.headers['www-authenticate']).toContain('error="insufficient_scope", scope="traces:write"');
    expect(write.json()).toMatchObject({ code: 7 });
    const read = await app.inject({
      method: 'GET',
      url: '/api/search',
      headers: { authorization: `Bearer ${readOnly}` },
    });
    expect(read.statusCode).toBe(200);
    const admin = await token({ scope: 'admin' });
    const adminWrite = await app.inject({
      method: 'POST',
      url: '/v1/traces',
      headers: { authorization: `Bearer ${admin}` },
    });
    expect(adminWrite.statusCode).toBe(403);
  });

  it('lets public routes through and makes routes that declare nothing need admin', async () => {
    expect((await app.inject({ method: 'GET', url: '/health' })).statusCode).toBe(200);
    const writer = await token();
    const backup = await app.inject({
      method: 'POST',
      url: '/admin/backup',
      headers: { authorization: `Bearer ${writer}` },
    });
    expect(backup.statusCode).toBe(403);
    const admin = await token({ scope: 'admin' });
    const ok = await app.inject({
      method: 'POST',
      url: '/admin/backup',
      headers: { authorization: `Bearer ${admin}` },
    });
    expect(ok.statusCode).toBe(200);
    expect((await app.inject({ method: 'GET', url: '/nowhere' })).statusCode).toBe(404);
  });

  it('takes the WebSocket token from a bearer.<token> subprotocol or ?access_token, on the upgrade only', async () => {
    const valid = await token();
    const upgrade = { upgrade: 'websocket', connection: 'Upgrade' };
    const viaProtocol = await app.inject({
      method: 'GET',
      url: WS_PATH,
      headers: { ...upgrade, 'sec-websocket-protocol': `tracehouse.otlp.v1, bearer.${valid}` },
    });
    expect(viaProtocol.statusCode).toBe(200);
    expect(viaProtocol.json().tenant).toBe('acme');
    const viaQuery = await app.inject({ method: 'GET', url: `${WS_PATH}?access_token=${valid}`, headers: upgrade });
    expect(viaQuery.statusCode).toBe(200);
    const notUpgrade = await app.inject({ method: 'GET', url: `${WS_PATH}?access_token=${valid}` });
    expect(notUpgrade.statusCode).toBe(401);
    const httpQuery = await app.inject({ method: 'POST', url: `/v1/traces?access_token=${valid}` });
    expect(httpQuery.statusCode).toBe(401);
    const httpProtocol = await app.inject({
      method: 'POST',
      url: '/v1/traces',
      headers: { 'sec-websocket-protocol': `bearer.${valid}` },
    });
    expect(httpProtocol.statusCode).toBe(401);
  });

  it('counts every refusal by reason', async () => {
    const before = await counterValue(metrics, 'tracehouse_auth_failures_total', { reason: 'expired' });
    const expired = await token({ exp: Math.floor(Date.now() / 1000) - 3600 });
    const response = await app.inject({
      method: 'POST',
      url: '/v1/traces',
      headers: { authorization: `Bearer ${expired}` },
    });
    expect(response.statusCode).toBe(401);
    expect(response.json().message).toMatch(/expired/);
    expect(await counterValue(metrics, 'tracehouse_auth_failures_total', { reason: 'expired' })).toBe(before + 1);
  });
});
