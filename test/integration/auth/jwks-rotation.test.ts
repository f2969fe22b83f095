/**
 * Reliability catalog row 32: key rotation through a JWKS served by the test on 127.0.0.1, a flood
 * of unknown `kid`s, and the issuer going down. The cooldown is 1 s here (30 s by default) so the
 * test can watch several cooldowns pass.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AUDIENCE,
  ISSUER,
  ecKeyPair,
  postTraces,
  publicJwk,
  rsaKeyPair,
  signToken,
  startJwksServer,
  type JwksServer,
} from '../../helpers/auth.js';
import { useTestDatabase } from '../../helpers/db.js';
import { buildRequest, realisticSpans } from '../../helpers/otlp-fixtures.js';
import { startTestServer, type TestServer } from '../../helpers/server.js';

const COOLDOWN_MS = 1000;
const db = useTestDatabase();
const k1 = rsaKeyPair();
const k2 = ecKeyPair('P-256');
const attacker = rsaKeyPair();
let jwks: JwksServer;
let server: TestServer;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const body = () => buildRequest({ spans: realisticSpans(2, { nowMs: Date.now() }) }).protobuf;
const tokenK1 = () => signToken({ key: k1.privateKey, alg: 'RS256', header: { kid: 'k1' } });
const tokenK2 = () => signToken({ key: k2.privateKey, alg: 'ES256', header: { kid: 'k2' } });
const unknownKid = (i: number) => signToken({ key: attacker.privateKey, alg: 'RS256', header: { kid: `flood-${i}` } });

beforeAll(async () => {
  jwks = await startJwksServer([await publicJwk(k1.publicKey, 'k1', 'RS256')]);
  server = await startTestServer(
    db.connectionString,
    { auth: { jwksUrl: jwks.url, issuer: ISSUER, audience: AUDIENCE, jwksCooldownMs: COOLDOWN_MS } },
    { listen: true },
  );
});
afterAll(async () => {
  await server?.close();
  await jwks?.close();
});

/** Sends unknown-kid tokens from `workers` concurrent clients for `ms`; returns the statuses seen. */
async function flood(ms: number, workers: number): Promise<Map<number, number>> {
  const statuses = new Map<number, number>();
  const tokens = await Promise.all(Array.from({ length: 50 }, (_, i) => unknownKid(i)));
  const payload = body();
  const deadline = Date.now() + ms;
  let next = 0;
  await Promise.all(
    Array.from({ length: workers }, async () => {
      while (Date.now() < deadline) {
        const response = await postTraces(server.url, payload, { token: tokens[next++ % tokens.length] });
        statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
      }
    }),
  );
  return statuses;
}

describe('JWKS rotation', () => {
  it('fetches the JWKS at start and accepts the current key', async () => {
    expect(jwks.fetches).toBe(1);
    expect((await postTraces(server.url, body(), { token: await tokenK1() })).status).toBe(200);
    expect(jwks.fetches).toBe(1);
  });

  it('accepts a new kid once the issuer publishes it, with one more fetch', async () => {
    jwks.setKeys([await publicJwk(k1.publicKey, 'k1', 'RS256'), await publicJwk(k2.publicKey, 'k2', 'ES256')]);
    await sleep(COOLDOWN_MS + 50); // the start-up fetch was under a second ago
    const before = jwks.fetches;
    expect((await postTraces(server.url, body(), { token: await tokenK2() })).status).toBe(200);
    expect(jwks.fetches).toBe(before + 1);
    expect((await postTraces(server.url, body(), { token: await tokenK1() })).status).toBe(200);
    expect(jwks.fetches).toBe(before + 1);
  });

  it('fetches at most once per cooldown under a flood of unknown kids, and valid tokens keep working', async () => {
    const before = jwks.fetches;
    const startedAt = Date.now();
    const [statuses, valid] = await Promise.all([
      flood(2500, 16),
      (async () => {
        const results: number[] = [];
        for (let i = 0; i < 10; i++) {
          results.push((await postTraces(server.url, body(), { token: await tokenK2() })).status);
          await sleep(200);
        }
        return results;
      })(),
    ]);
    const elapsed = Date.now() - startedAt;
    const fetched = jwks.fetches - before;
    if (process.env.SHOW_FLOOD) console.log({ statuses: [...statuses], fetched, elapsed });
    expect([...statuses.keys()]).toEqual([401]);
    expect(statuses.get(401)).toBeGreaterThan(100);
    expect(fetched).toBeLessThanOrEqual(Math.floor(elapsed / COOLDOWN_MS) + 1);
    expect(valid.every((status) => status === 200)).toBe(true);
  });

  it('keeps using cached keys while the issuer is down; an unknown kid then gets a retryable 503, fetched once per cooldown', async () => {
    jwks.setDown(true);
    await sleep(COOLDOWN_MS + 50);
    const before = jwks.fetches;
    expect((await postTraces(server.url, body(), { token: await tokenK1() })).status).toBe(200);
    const refused = await postTraces(server.url, body(), { token: await unknownKid(999) });
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('1');
    const statuses = await flood(500, 8);
    expect(statuses.get(503)).toBeGreaterThan(10);
    expect(jwks.fetches - before).toBe(1);
    jwks.setDown(false);
  });

  it('drops a retired key once the JWKS no longer lists it and the cache is refreshed', async () => {
    jwks.setKeys([await publicJwk(k2.publicKey, 'k2', 'ES256')]);
    await sleep(COOLDOWN_MS + 50);
    // an unknown kid triggers the refresh that forgets k1
    expect((await postTraces(server.url, body(), { token: await unknownKid(1000) })).status).toBe(401);
    expect((await postTraces(server.url, body(), { token: await tokenK1() })).status).toBe(401);
    expect((await postTraces(server.url, body(), { token: await tokenK2() })).status).toBe(200);
  });
});
