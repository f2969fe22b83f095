/**
 * Reliability catalog row 30/31 and DESIGN's bad-input row for JWTs: forged and invalid tokens
 * sent over real HTTP to a server whose keys come from a JWKS (RS256 and ES256 allowed, issuer and
 * audience required). Every one gets 401, nothing is written, and no `jku` / `x5u` URL is fetched.
 */
import { createHmac, sign } from 'node:crypto';
import { CompactEncrypt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AUDIENCE,
  ISSUER,
  b64url,
  ecKeyPair,
  hmacToken,
  nowS,
  postTraces,
  publicJwk,
  rs256Token,
  rsaKeyPair,
  signToken,
  startCountingServer,
  startJwksServer,
  type JwksServer,
} from '../../helpers/auth.js';
import { useTestDatabase } from '../../helpers/db.js';
import { buildRequest, realisticSpans } from '../../helpers/otlp-fixtures.js';
import { counterValue, startTestServer, type TestServer } from '../../helpers/server.js';

const db = useTestDatabase();
const k1 = rsaKeyPair();
const k2 = ecKeyPair('P-256');
const attacker = rsaKeyPair();
let jwks: JwksServer;
let trap: Awaited<ReturnType<typeof startCountingServer>>;
let server: TestServer;

beforeAll(async () => {
  jwks = await startJwksServer([
    await publicJwk(k1.publicKey, 'k1', 'RS256'),
    await publicJwk(k2.publicKey, 'k2', 'ES256'),
  ]);
  trap = await startCountingServer();
  server = await startTestServer(
    db.connectionString,
    {
      auth: {
        jwksUrl: jwks.url,
        algorithms: ['RS256', 'ES256'],
        issuer: ISSUER,
        audience: AUDIENCE,
        clockToleranceS: 30,
      },
    },
    { listen: true },
  );
});
afterAll(async () => {
  await server?.close();
  await jwks?.close();
  await trap?.close();
});

interface Forgery {
  name: string;
  /** The Authorization header, or none. */
  authorization?: string;
  headers?: Record<string, string>;
  query?: string;
}

const claims = () => ({
  iss: ISSUER,
  aud: AUDIENCE,
  tenant: 'acme',
  scope: 'traces:write',
  iat: nowS(),
  exp: nowS() + 300,
});
const rs = (extra: Record<string, unknown> = {}, omit: string[] = [], header: Record<string, unknown> = {}) =>
  signToken({ key: k1.privateKey, alg: 'RS256', header: { kid: 'k1', ...header }, claims: extra, omit });

/** A compact JWS over any payload text, signed with k1 (a valid signature on an invalid token). */
function rawRs256(header: Record<string, unknown>, payload: string): string {
  const input = `${b64url(header)}.${b64url(payload)}`;
  return `${input}.${sign('sha256', Buffer.from(input), k1.privateKey).toString('base64url')}`;
}

function hmacLike(hash: string, alg: string, secret: string): string {
  const input = `${b64url({ alg, kid: 'k1' })}.${b64url(claims())}`;
  return `${input}.${createHmac(hash, secret).update(input).digest('base64url')}`;
}

async function forgeries(): Promise<Forgery[]> {
  const bearer = (token: string): string => `Bearer ${token}`;
  const valid = await rs();
  const [validHeader, validPayload, validSignature] = valid.split('.');
  const publicJwkJson = JSON.stringify(await publicJwk(k1.publicKey, 'k1', 'RS256'));
  const jwe = await new CompactEncrypt(new TextEncoder().encode(JSON.stringify(claims())))
    .setProtectedHeader({ alg: 'RSA-OAEP-256', enc: 'A256GCM', kid: 'k1' })
    .encrypt(k1.publicKey);
  const attackerJwk = await publicJwk(attacker.publicKey, 'attacker', 'RS256');
  const flipped = validSignature.slice(0, -4) + (validSignature.endsWith('AAAA') ? 'BBBB' : 'AAAA');
  const tamperedPayload = b64url({
    ...JSON.parse(Buffer.from(validPayload, 'base64url').toString()),
    tenant: 'globex',
  });

  return [
    { name: 'no Authorization header' },
    { name: 'X-Scope-OrgID without a token', headers: { 'x-scope-orgid': 'acme' } },
    { name: 'a valid token in ?access_token on HTTP ingest', query: `?access_token=${valid}` },
    { name: 'Basic credentials', authorization: `Basic ${Buffer.from('acme:secret').toString('base64')}` },
    { name: 'empty bearer', authorization: 'Bearer ' },
    { name: 'two tokens', authorization: `Bearer ${valid} ${valid}` },
    { name: 'garbage', authorization: bearer('definitely.not.a-jwt') },
    { name: 'alg none, unsigned', authorization: bearer(`${b64url({ alg: 'none', typ: 'JWT' })}.${validPayload}.`) },
    {
      name: 'alg none with a signature',
      authorization: bearer(`${b64url({ alg: 'none' })}.${validPayload}.${validSignature}`),
    },
    { name: 'alg NONE', authorization: bearer(`${b64url({ alg: 'NONE' })}.${validPayload}.${validSignature}`) },
    {
      name: 'HS256 signed with the RSA public key (PEM)',
      authorization: bearer(hmacToken({ alg: 'HS256' }, claims(), k1.publicPem)),
    },
    {
      name: 'HS256 with kid k1 signed with the public key (PEM)',
      authorization: bearer(hmacToken({ alg: 'HS256', kid: 'k1' }, claims(), k1.publicPem)),
    },
    {
      name: 'HS256 signed with the public JWK',
      authorization: bearer(hmacToken({ alg: 'HS256', kid: 'k1' }, claims(), publicJwkJson)),
    },
    { name: 'expired beyond the tolerance', authorization: bearer(await rs({ exp: nowS() - 120 })) },
    { name: 'not valid before, beyond the tolerance', authorization: bearer(await rs({ nbf: nowS() + 120 })) },
    { name: 'no exp', authorization: bearer(await rs({}, ['exp'])) },
    {
      name: 'exp as a string',
      authorization: bearer(
        rs256Token({ alg: 'RS256', kid: 'k1' }, { ...claims(), exp: String(nowS() + 300) }, k1.privateKey),
      ),
    },
    { name: 'wrong issuer', authorization: bearer(await rs({ iss: 'https://evil.example' })) },
    { name: 'no issuer', authorization: bearer(await rs({}, ['iss'])) },
    { name: 'wrong audience', authorization: bearer(await rs({ aud: 'grafana' })) },
    { name: 'audience array without us', authorization: bearer(await rs({ aud: ['grafana', 'loki'] })) },
    { name: 'bad signature', authorization: bearer(`${validHeader}.${validPayload}.${flipped}`) },
    {
      name: 'payload changed after signing',
      authorization: bearer(`${validHeader}.${tamperedPayload}.${validSignature}`),
    },
    { name: 'signature stripped', authorization: bearer(`${validHeader}.${validPayload}.`) },
    { name: 'JWE encrypted to our key', authorization: bearer(jwe) },
    {
      name: 'embedded jwk (the attacker key)',
      authorization: bearer(await signToken({ key: attacker.privateKey, alg: 'RS256', header: { jwk: attackerJwk } })),
    },
    {
      name: 'jku pointing at the attacker',
      authorization: bearer(
        await signToken({
          key: attacker.privateKey,
          alg: 'RS256',
          header: { jku: `${trap.url}/jwks`, kid: 'attacker' },
        }),
      ),
    },
    {
      name: 'x5u pointing at the attacker',
      authorization: bearer(rs256Token({ alg: 'RS256', x5u: `${trap.url}/cert.pem` }, claims(), attacker.privateKey)),
    },
    {
      name: 'x5c chain',
      authorization: bearer(rs256Token({ alg: 'RS256', x5c: ['MIIB'] }, claims(), attacker.privateKey)),
    },
    {
      name: 'unknown kid',
      authorization: bearer(await signToken({ key: attacker.privateKey, alg: 'RS256', header: { kid: 'k-unknown' } })),
    },
    {
      name: 'known kid, attacker key',
      authorization: bearer(await signToken({ key: attacker.privateKey, alg: 'RS256', header: { kid: 'k1' } })),
    },
    {
      name: 'ES256 header on the RSA kid',
      authorization: bearer(await signToken({ key: k2.privateKey, alg: 'ES256', header: { kid: 'k1' } })),
    },
    {
      name: 'PS256 (not in JWT_ALGORITHMS)',
      authorization: bearer(await signToken({ key: k1.privateKey, alg: 'PS256', header: { kid: 'k1' } })),
    },
    { name: 'typ JWE', authorization: bearer(await rs({}, [], { typ: 'JWE' })) },
    {
      name: 'crit with an unknown extension',
      authorization: bearer(
        rs256Token({ alg: 'RS256', kid: 'k1', crit: ['exp-v2'], 'exp-v2': 1 }, claims(), k1.privateKey),
      ),
    },
    { name: 'oversized (validly signed)', authorization: bearer(await rs({ padding: 'x'.repeat(10_000) })) },
    { name: 'no tenant claim', authorization: bearer(await rs({}, ['tenant'])) },
    { name: 'tenant with ..', authorization: bearer(await rs({ tenant: '../globex' })) },
    { name: 'tenant of 1 KiB', authorization: bearer(await rs({ tenant: 'a'.repeat(1024) })) },
    { name: 'tenant as a number', authorization: bearer(await rs({ tenant: 42 })) },
    { name: 'tenant as an object', authorization: bearer(await rs({ tenant: { id: 'acme' } })) },
    {
      name: 'HS384 signed with the public key (PEM)',
      authorization: bearer(hmacLike('sha384', 'HS384', k1.publicPem)),
    },
    {
      name: 'HS512 signed with the public key (PEM)',
      authorization: bearer(hmacLike('sha512', 'HS512', k1.publicPem)),
    },
    {
      name: 'HS256 signed with a guessable secret',
      authorization: bearer(hmacToken({ alg: 'HS256' }, claims(), 'secret')),
    },
    {
      name: 'RS256 on the EC kid',
      authorization: bearer(await signToken({ key: k1.privateKey, alg: 'RS256', header: { kid: 'k2' } })),
    },
    {
      name: 'EC kid, attacker EC key',
      authorization: bearer(await signToken({ key: ecKeyPair().privateKey, alg: 'ES256', header: { kid: 'k2' } })),
    },
    {
      name: 'kid with a path',
      authorization: bearer(await signToken({ key: attacker.privateKey, alg: 'RS256', header: { kid: '../../k1' } })),
    },
    {
      name: 'signature of another valid token',
      authorization: bearer(`${validHeader}.${validPayload}.${(await rs({ tenant: 'globex' })).split('.')[2]}`),
    },
    { name: 'exp 0', authorization: bearer(await rs({ exp: 0 })) },
    { name: 'no audience', authorization: bearer(await rs({}, ['aud'])) },
    { name: 'issuer in another case', authorization: bearer(await rs({ iss: ISSUER.toUpperCase() })) },
    { name: 'payload not JSON (signed)', authorization: bearer(rawRs256({ alg: 'RS256', kid: 'k1' }, 'not json')) },
    { name: 'payload a JSON array (signed)', authorization: bearer(rawRs256({ alg: 'RS256', kid: 'k1' }, '[1,2,3]')) },
    {
      name: 'unencoded payload (b64: false)',
      authorization: bearer(rawRs256({ alg: 'RS256', kid: 'k1', b64: false, crit: ['b64'] }, JSON.stringify(claims()))),
    },
    {
      name: 'lowercase scheme, forged token',
      authorization: `bearer ${hmacToken({ alg: 'HS256' }, claims(), k1.publicPem)}`,
    },
  ];
}

/** google.rpc.Status { int32 code = 1; string message = 2 } as the server encodes it (short messages). */
function decodeRpcStatus(body: Buffer): { code: number; message: string } {
  expect(body[0]).toBe(0x08);
  expect(body[2]).toBe(0x12);
  let length = 0;
  let offset = 3;
  for (let shift = 0; ; shift += 7) {
    const byte = body[offset++];
    length |= (byte & 0x7f) << shift;
    if (byte < 0x80) break;
  }
  return { code: body[1], message: body.subarray(offset, offset + length).toString() };
}

describe('forged and invalid tokens', () => {
  it('answers every one of 55 forgeries with 401 in the request encoding and writes nothing', async () => {
    const spans = realisticSpans(5, { nowMs: Date.now() });
    const { protobuf, json } = buildRequest({ spans });
    const cases = await forgeries();
    expect(cases.length).toBeGreaterThanOrEqual(55);
    const results: Array<{ name: string; status: number; code?: number; message?: string }> = [];
    for (const [i, forgery] of cases.entries()) {
      const useJson = i % 2 === 0;
      const response = await postTraces(server.url, useJson ? json : protobuf, {
        headers: {
          ...forgery.headers,
          ...(forgery.authorization !== undefined ? { authorization: forgery.authorization } : {}),
        },
        query: forgery.query,
      });
      const status = useJson
        ? (JSON.parse(response.body.toString()) as { code: number; message: string })
        : decodeRpcStatus(response.body);
      results.push({ name: forgery.name, status: response.status, code: status.code, message: status.message });
      expect(response.headers.get('www-authenticate'), forgery.name).toMatch(/^Bearer realm="tracehouse"/);
      expect(response.headers.get('content-type'), forgery.name).toMatch(
        useJson ? /^application\/json/ : /^application\/x-protobuf$/,
      );
    }
    if (process.env.SHOW_FORGERIES) console.table(results);
    expect(results.filter((r) => r.status !== 401 || r.code !== 16)).toEqual([]);
    for (const r of results) expect(r.message, r.name).toMatch(/^TH_ERR_AUTH_(MISSING|INVALID)_TOKEN: /);

    const stored = await db.query<{ spans: number; traces: number }>(
      'SELECT (SELECT count(*) FROM spans)::int AS spans, (SELECT count(*) FROM traces)::int AS traces',
    );
    expect(stored.rows[0]).toEqual({ spans: 0, traces: 0 });
    expect(trap.hits()).toBe(0);
    expect(await counterValue(server.metrics, 'tracehouse_spans_received_total')).toBe(0);
    expect(await counterValue(server.metrics, 'tracehouse_auth_failures_total')).toBe(cases.length);
  });

  it('still accepts a valid token for both keys afterwards (the matrix did not break the server)', async () => {
    const spans = realisticSpans(4, { nowMs: Date.now() });
    const { protobuf } = buildRequest({ spans });
    const viaRsa = await postTraces(server.url, protobuf, { token: await rs() });
    expect(viaRsa.status).toBe(200);
    const viaEc = await postTraces(server.url, protobuf, {
      token: await signToken({ key: k2.privateKey, alg: 'ES256', header: { kid: 'k2' } }),
    });
    expect(viaEc.status).toBe(200);
    const { rows } = await db.query<{ tenant: string; n: number }>(
      'SELECT tenant, count(*)::int AS n FROM spans GROUP BY tenant',
    );
    expect(rows).toEqual([{ tenant: 'acme', n: 4 }]);
    expect(jwks.fetches).toBeLessThanOrEqual(2);
  });
});
