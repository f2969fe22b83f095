/**
 * The token and tenant attacks of the auth issue (reliability catalog rows 30, 31 and 34) against a
 * server that verifies RS256 tokens from a PEM public key, with the answer each must get: 401 for
 * a token that is forged, tampered with, expired, for another audience or issuer, or that names an
 * invalid tenant; 403 for a valid token without the scope; and for a valid token of tenant A
 * (whatever X-Scope-OrgID says) 200 on ingest, stored as A, and 404 for tenant B's traces.
 */
import { createHmac } from 'node:crypto';
import {
  AUDIENCE,
  ISSUER,
  b64url,
  hmacToken,
  nowS,
  publicJwk,
  rs256Token,
  rsaKeyPair,
  signToken,
  type KeyPair,
} from '../../../test/helpers/auth.js';

export const ATTACKER_TENANT = 'mallory';

export interface AuthAttack {
  id: string;
  /** 'ingest': POST /v1/traces with fresh spans; 'read': GET the victim's trace by id. */
  target: 'ingest' | 'read' | 'websocket';
  headers: Record<string, string>;
  expected: number;
  /** Ingest accepted with a valid token: its spans must be stored under this tenant (and no other). */
  storedAs?: string;
}

const HOUR_S = 3600;

/** A valid RS256 token of `tenant` with `scope`, valid for an hour. */
export function goodToken(key: KeyPair, tenant: string, scope: string): Promise<string> {
  return signToken({ key: key.privateKey, alg: 'RS256', claims: { tenant, scope, exp: nowS() + HOUR_S } });
}

const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` });

export async function buildAuthAttacks(key: KeyPair, attackerTenant = ATTACKER_TENANT): Promise<AuthAttack[]> {
  const attacker = rsaKeyPair();
  const claims = {
    iss: ISSUER,
    aud: AUDIENCE,
    tenant: attackerTenant,
    scope: 'traces:write traces:read',
    iat: nowS(),
    exp: nowS() + HOUR_S,
  };
  const rs = (extra: Record<string, unknown> = {}, omit: string[] = []): Promise<string> =>
    signToken({ key: key.privateKey, alg: 'RS256', claims: { ...claims, ...extra }, omit });
  const valid = await rs();
  const [header, payload, signature] = valid.split('.');
  const flipped = signature.slice(0, -4) + (signature.endsWith('AAAA') ? 'BBBB' : 'AAAA');
  const tampered = b64url({ ...JSON.parse(Buffer.from(payload, 'base64url').toString()), tenant: 'acme' });
  const hsWith = (secret: string, alg = 'HS256', hash = 'sha256'): string => {
    const input = `${b64url({ alg, typ: 'JWT' })}.${b64url(claims)}`;
    return `${input}.${createHmac(hash, secret).update(input).digest('base64url')}`;
  };
  const jwkJson = JSON.stringify(await publicJwk(key.publicKey, 'k1', 'RS256'));
  const ingest401 = (id: string, headers: Record<string, string>): AuthAttack => ({
    id,
    target: 'ingest',
    headers,
    expected: 401,
  });

  return [
    ingest401('no-token', {}),
    ingest401('x-scope-orgid-without-token', { 'x-scope-orgid': 'acme' }),
    ingest401('alg-none-unsigned', bearer(`${b64url({ alg: 'none', typ: 'JWT' })}.${payload}.`)),
    ingest401('alg-none-with-signature', bearer(`${b64url({ alg: 'none' })}.${payload}.${signature}`)),
    ingest401('hs256-signed-with-rsa-public-pem', bearer(hsWith(key.publicPem))),
    ingest401('hs512-signed-with-rsa-public-pem', bearer(hsWith(key.publicPem, 'HS512', 'sha512'))),
    ingest401('hs256-signed-with-public-jwk', bearer(hsWith(jwkJson))),
    ingest401('hs256-guessable-secret', bearer(hmacToken({ alg: 'HS256' }, claims, 'secret'))),
    ingest401('expired', bearer(await rs({ exp: nowS() - 600 }))),
    ingest401('not-yet-valid', bearer(await rs({ nbf: nowS() + 600 }))),
    ingest401('no-exp', bearer(await rs({}, ['exp']))),
    ingest401('wrong-audience', bearer(await rs({ aud: 'grafana' }))),
    ingest401('wrong-issuer', bearer(await rs({ iss: 'https://evil.example' }))),
    ingest401('forged-signature', bearer(`${header}.${payload}.${flipped}`)),
    ingest401('signature-stripped', bearer(`${header}.${payload}.`)),
    ingest401('signed-by-attacker-key', bearer(await signToken({ key: attacker.privateKey, alg: 'RS256', claims }))),
    ingest401(
      'embedded-jwk',
      bearer(
        rs256Token(
          { alg: 'RS256', jwk: await publicJwk(attacker.publicKey, 'a', 'RS256') },
          claims,
          attacker.privateKey,
        ),
      ),
    ),
    ingest401('tenant-claim-tampered', bearer(`${header}.${tampered}.${signature}`)),
    ingest401('tenant-claim-path', bearer(await rs({ tenant: '../acme' }))),
    ingest401('tenant-claim-1kib', bearer(await rs({ tenant: 'a'.repeat(1024) }))),
    ingest401('tenant-claim-object', bearer(await rs({ tenant: { id: 'acme' } }))),
    {
      id: 'valid-token-without-write-scope',
      target: 'ingest',
      headers: bearer(await rs({ scope: 'traces:read' })),
      expected: 403,
    },
    {
      id: 'x-scope-orgid-spoof-with-valid-token',
      target: 'ingest',
      headers: { ...bearer(await rs()), 'x-scope-orgid': 'acme', 'x-tenant': 'acme' },
      expected: 200,
      storedAs: attackerTenant,
    },
    {
      id: 'ws-upgrade-alg-none',
      target: 'websocket',
      headers: bearer(`${b64url({ alg: 'none' })}.${payload}.`),
      expected: 401,
    },
    { id: 'ws-upgrade-expired', target: 'websocket', headers: bearer(await rs({ exp: nowS() - 600 })), expected: 401 },
    { id: 'read-victim-trace-with-own-token', target: 'read', headers: bearer(valid), expected: 404 },
    {
      id: 'read-victim-trace-x-scope-orgid',
      target: 'read',
      headers: { ...bearer(valid), 'x-scope-orgid': 'acme' },
      expected: 404,
    },
    {
      id: 'read-victim-trace-tampered-tenant',
      target: 'read',
      headers: bearer(`${header}.${tampered}.${signature}`),
      expected: 401,
    },
    {
      id: 'read-victim-trace-alg-none',
      target: 'read',
      headers: bearer(`${b64url({ alg: 'none' })}.${tampered}.`),
      expected: 401,
    },
    {
      id: 'read-victim-trace-write-only-token',
      target: 'read',
      headers: bearer(await rs({ scope: 'traces:write' })),
      expected: 403,
    },
    { id: 'read-victim-trace-no-token', target: 'read', headers: { 'x-scope-orgid': 'acme' }, expected: 401 },
  ];
}
