import { afterAll, describe, expect, it } from 'vitest';
import { AuthFailure } from '../../../server/auth/failures.js';
import { loadKeySet } from '../../../server/auth/keys.js';
import { TokenVerifier } from '../../../server/auth/verifier.js';
import { ConfigError, loadConfig, type AuthConfig } from '../../../server/config.js';
import {
  AUDIENCE,
  ISSUER,
  TEST_SECRET,
  b64url,
  ecKeyPair,
  ed25519KeyPair,
  hmacToken,
  keyDir,
  rs256Token,
  rsaKeyPair,
  secretKey,
  signToken,
} from '../../helpers/auth.js';

const files = keyDir();
afterAll(() => files.cleanup());

const rsa = rsaKeyPair();
const ec = ecKeyPair('P-256');
const ec384 = ecKeyPair('P-384');
const ed = ed25519KeyPair();
const NOW_S = 1_800_000_000;
const TOLERANCE_S = 30;

function authConfig(auth: Partial<AuthConfig>): AuthConfig {
  return loadConfig({}, { auth: { issuer: ISSUER, audience: AUDIENCE, clockToleranceS: TOLERANCE_S, ...auth } }).auth;
}

function verifierFor(auth: Partial<AuthConfig>): TokenVerifier {
  const config = authConfig(auth);
  return new TokenVerifier({
    keys: loadKeySet(config)!,
    issuer: config.issuer,
    audience: config.audience,
    tenantClaim: config.tenantClaim,
    clockToleranceS: config.clockToleranceS,
    now: () => NOW_S * 1000,
  });
}

async function reasonOf(verifier: TokenVerifier, token: string): Promise<string> {
  try {
    await verifier.verify(token);
    return 'accepted';
  } catch (err) {
    if (err instanceof AuthFailure) return err.reason;
    throw err;
  }
}

const hmac = verifierFor({ jwtSecret: TEST_SECRET });
const hs = (claims: Record<string, unknown> = {}, omit: string[] = []) =>
  signToken({
    key: secretKey(),
    alg: 'HS256',
    claims: { iat: NOW_S, exp: NOW_S + 300, ...claims },
    omit,
  });

describe('claims and clock tolerance', () => {
  it('accepts a valid token and returns its tenant, scopes and the instant it stops being accepted', async () => {
    const principal = await hmac.verify(await hs({ scope: 'traces:write traces:read unknown:scope' }));
    expect(principal.tenant).toBe('acme');
    expect([...principal.scopes].sort()).toEqual(['traces:read', 'traces:write']);
    expect(principal.expiresAtMs).toBe((NOW_S + 300 + TOLERANCE_S) * 1000);
  });

  it('accepts exp up to the tolerance in the past and refuses it one second beyond', async () => {
    expect(await reasonOf(hmac, await hs({ exp: NOW_S - TOLERANCE_S + 1 }))).toBe('accepted');
    expect(await reasonOf(hmac, await hs({ exp: NOW_S - TOLERANCE_S - 1 }))).toBe('expired');
    expect(await reasonOf(hmac, await hs({ exp: NOW_S - TOLERANCE_S }))).toBe('expired');
  });

  it('accepts nbf up to the tolerance in the future and refuses it one second beyond', async () => {
    expect(await reasonOf(hmac, await hs({ nbf: NOW_S + TOLERANCE_S - 1 }))).toBe('accepted');
    expect(await reasonOf(hmac, await hs({ nbf: NOW_S + TOLERANCE_S + 1 }))).toBe('not_yet_valid');
  });

  it('requires exp, the issuer and the audience', async () => {
    expect(await reasonOf(hmac, await hs({}, ['exp']))).toBe('bad_claims');
    expect(await reasonOf(hmac, await hs({}, ['iss']))).toBe('bad_claims');
    expect(await reasonOf(hmac, await hs({}, ['aud']))).toBe('bad_claims');
    expect(await reasonOf(hmac, await hs({ iss: 'https://evil.example' }))).toBe('bad_claims');
    expect(await reasonOf(hmac, await hs({ aud: 'someone-else' }))).toBe('bad_claims');
    expect(await reasonOf(hmac, await hs({ aud: ['a', 'b'] }))).toBe('bad_claims');
    expect(await reasonOf(hmac, await hs({ aud: ['a', AUDIENCE] }))).toBe('accepted');
    expect(await reasonOf(hmac, await hs({ exp: String(NOW_S + 300) }))).toBe('bad_claims');
  });

  it('validates the tenant claim: present, at most 150 bytes, safe characters, not . or ..', async () => {
    expect(await reasonOf(hmac, await hs({}, ['tenant']))).toBe('bad_tenant');
    for (const bad of ['', '.', '..', '../x', 'a/b', 'a b', 'x'.repeat(151), 'é', 'a{b}', 42]) {
      expect(await reasonOf(hmac, await hs({ tenant: bad })), String(bad)).toBe('bad_tenant');
    }
    for (const good of ['x'.repeat(150), "A-z_0.9!*'()", 'acme']) {
      expect(await reasonOf(hmac, await hs({ tenant: good })), good).toBe('accepted');
    }
  });

  it('reads the tenant from the configured claim only', async () => {
    const custom = verifierFor({ jwtSecret: TEST_SECRET, tenantClaim: 'org' });
    expect(await reasonOf(custom, await hs({ tenant: 'acme' }))).toBe('bad_tenant');
    expect((await custom.verify(await hs({ org: 'globex' }))).tenant).toBe('globex');
  });

  it('gives no scope for a missing or non-string scope claim', async () => {
    expect((await hmac.verify(await hs({}, ['scope']))).scopes.size).toBe(0);
    expect((await hmac.verify(await hs({ scope: ['traces:write'] }))).scopes.size).toBe(0);
  });
});

describe('keys and algorithms', () => {
  it('verifies RS256 and PS256 with an RSA PEM key, ES256 / ES384 by curve, and EdDSA', async () => {
    const cases = [
      { pair: rsa, algs: ['RS256', 'PS256', 'RS512'] },
      { pair: ec, algs: ['ES256'] },
      { pair: ec384, algs: ['ES384'] },
      { pair: ed, algs: ['EdDSA'] },
    ];
    for (const { pair, algs } of cases) {
      const verifier = verifierFor({ publicKeyFile: files.write(`${algs[0]}.pem`, pair.publicPem) });
      for (const alg of algs) {
        const token = await signToken({ key: pair.privateKey, alg, claims: { iat: NOW_S, exp: NOW_S + 60 } });
        expect(await reasonOf(verifier, token), alg).toBe('accepted');
      }
    }
  });

  it('never uses a key with another family: HS256 signed with the public key finds no key', async () => {
    const verifier = verifierFor({ publicKeyFile: files.write('rsa.pem', rsa.publicPem) });
    const forged = await signToken({
      key: new TextEncoder().encode(rsa.publicPem),
      alg: 'HS256',
      claims: { iat: NOW_S, exp: NOW_S + 60 },
    });
    expect(await reasonOf(verifier, forged)).toBe('algorithm_not_allowed');
    const ecVerifier = verifierFor({ publicKeyFile: files.write('ec.pem', ec.publicPem) });
    const rs = await signToken({ key: rsa.privateKey, alg: 'RS256', claims: { iat: NOW_S, exp: NOW_S + 60 } });
    expect(await reasonOf(ecVerifier, rs)).toBe('algorithm_not_allowed');
  });

  it('with a secret and a public key both configured, HS256 signed with the public PEM is a bad signature', async () => {
    const both = verifierFor({ jwtSecret: TEST_SECRET, publicKeyFile: files.write('rsa2.pem', rsa.publicPem) });
    const forged = await signToken({
      key: new TextEncoder().encode(rsa.publicPem),
      alg: 'HS256',
      claims: { iat: NOW_S, exp: NOW_S + 60 },
    });
    expect(await reasonOf(both, forged)).toBe('bad_signature');
    expect(await reasonOf(both, await hs())).toBe('accepted');
    const rs = await signToken({ key: rsa.privateKey, alg: 'RS256', claims: { iat: NOW_S, exp: NOW_S + 60 } });
    expect(await reasonOf(both, rs)).toBe('accepted');
  });

  it('JWT_ALGORITHMS narrows each key, and a key it leaves without algorithms is a configuration error', async () => {
    const rsOnly = verifierFor({ publicKeyFile: files.write('rsa3.pem', rsa.publicPem), algorithms: ['RS256'] });
    const ps = await signToken({ key: rsa.privateKey, alg: 'PS256', claims: { iat: NOW_S, exp: NOW_S + 60 } });
    expect(await reasonOf(rsOnly, ps)).toBe('algorithm_not_allowed');
    expect(() =>
      loadKeySet(authConfig({ publicKeyFile: files.write('rsa4.pem', rsa.publicPem), algorithms: ['ES256'] })),
    ).toThrow(ConfigError);
    expect(() => loadConfig({ JWT_ALGORITHMS: 'none' })).toThrow(/not a supported JWS algorithm/);
    expect(() => loadConfig({ JWT_SECRET: 'short' })).toThrow(/at least 32 bytes/);
  });

  it('refuses an RSA key shorter than 2048 bits even when the signature matches', async () => {
    const weak = rsaKeyPair(1024);
    const verifier = verifierFor({ publicKeyFile: files.write('weak.pem', weak.publicPem) });
    const token = rs256Token(
      { alg: 'RS256' },
      { tenant: 'acme', iss: ISSUER, aud: AUDIENCE, exp: NOW_S + 60 },
      weak.privateKey,
    );
    expect(await reasonOf(verifier, token)).toBe('malformed_token');
  });
});

describe('token shape and header', () => {
  it('refuses unsigned, encrypted, oversized, garbage and header-injected tokens before any key is used', async () => {
    const valid = await hs();
    const [header, payload] = valid.split('.');
    const cases: Array<[string, string, string]> = [
      ['alg none', `${b64url({ alg: 'none' })}.${payload}.`, 'malformed_token'],
      ['alg none with a signature', `${b64url({ alg: 'none' })}.${payload}.c2ln`, 'algorithm_not_allowed'],
      ['no signature', `${header}.${payload}.`, 'malformed_token'],
      ['JWE', 'eyJhbGciOiJSU0EtT0FFUCJ9.a.b.c.d', 'malformed_token'],
      ['garbage', 'not-a-token', 'malformed_token'],
      ['header not JSON', `${b64url('{{{')}.${payload}.c2ln`, 'malformed_token'],
      ['oversized', `${header}.${b64url({ pad: 'x'.repeat(9000) })}.c2ln`, 'malformed_token'],
      ['typ JWE', `${b64url({ alg: 'HS256', typ: 'JWE' })}.${payload}.c2ln`, 'malformed_token'],
      ['embedded jwk', `${b64url({ alg: 'HS256', jwk: { kty: 'oct', k: 'AA' } })}.${payload}.c2ln`, 'forbidden_header'],
      ['jku', `${b64url({ alg: 'RS256', jku: 'http://127.0.0.1:9/jwks' })}.${payload}.c2ln`, 'forbidden_header'],
      ['x5u', `${b64url({ alg: 'RS256', x5u: 'http://127.0.0.1:9/cert' })}.${payload}.c2ln`, 'forbidden_header'],
      ['x5c', `${b64url({ alg: 'RS256', x5c: ['AAAA'] })}.${payload}.c2ln`, 'forbidden_header'],
      ['no alg', `${b64url({ typ: 'JWT' })}.${payload}.c2ln`, 'malformed_token'],
    ];
    for (const [name, token, reason] of cases) expect(await reasonOf(hmac, token), name).toBe(reason);
  });

  it('refuses a token whose crit names an extension it does not understand', async () => {
    const claims = { iss: ISSUER, aud: AUDIENCE, tenant: 'acme', exp: NOW_S + 60 };
    expect(await reasonOf(hmac, hmacToken({ alg: 'HS256' }, claims))).toBe('accepted');
    const token = hmacToken({ alg: 'HS256', crit: ['x-unknown'], 'x-unknown': 1 }, claims);
    expect(await reasonOf(hmac, token)).toBe('malformed_token');
  });

  it('accepts typ JWT and at+jwt in any case', async () => {
    for (const typ of ['JWT', 'jwt', 'at+jwt', 'application/at+JWT']) {
      const token = await signToken({ key: secretKey(), alg: 'HS256', header: { typ }, claims: { exp: NOW_S + 60 } });
      expect(await reasonOf(hmac, token), typ).toBe('accepted');
    }
  });
});
