/**
 * Keys, tokens and a JWKS server for auth tests. Tokens are signed with jose directly (tests are
 * the attacker as well as the issuer); key files go to a temporary directory removed by cleanup().
 * The JWKS server listens on 127.0.0.1 only and counts every fetch.
 */
import { createHmac, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { SignJWT, exportJWK, type JWK, type JWTPayload, type JWTHeaderParameters } from 'jose';

export const TEST_SECRET = 'test-secret-that-is-at-least-32-bytes-long!!';
export const ISSUER = 'https://issuer.test.tracehouse';
export const AUDIENCE = 'tracehouse';

export interface KeyPair {
  publicKey: KeyObject;
  privateKey: KeyObject;
  publicPem: string;
  privatePem: string;
}

export function rsaKeyPair(modulusLength = 2048): KeyPair {
  return withPem(generateKeyPairSync('rsa', { modulusLength }));
}

export function ecKeyPair(namedCurve = 'P-256'): KeyPair {
  return withPem(generateKeyPairSync('ec', { namedCurve }));
}

export function ed25519KeyPair(): KeyPair {
  return withPem(generateKeyPairSync('ed25519'));
}

function withPem(pair: { publicKey: KeyObject; privateKey: KeyObject }): KeyPair {
  return {
    ...pair,
    publicPem: pair.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    privatePem: pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  };
}

/** A temporary directory for key files; cleanup() removes it. */
export function keyDir(): { write(name: string, content: string): string; cleanup(): void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'th-auth-'));
  return {
    write: (name, content) => {
      const file = path.join(dir, name);
      writeFileSync(file, content);
      return file;
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export const nowS = (): number => Math.floor(Date.now() / 1000);

export interface TokenSpec {
  key: KeyObject | Uint8Array;
  alg: string;
  header?: Partial<JWTHeaderParameters>;
  claims?: JWTPayload;
  /** Default claims are a valid token for ISSUER / AUDIENCE, tenant `acme`, scope traces:write. */
  omit?: string[];
}

/** A signed token: valid unless the spec says otherwise. */
export async function signToken(spec: TokenSpec): Promise<string> {
  const payload: JWTPayload = {
    iss: ISSUER,
    aud: AUDIENCE,
    tenant: 'acme',
    scope: 'traces:write',
    iat: nowS(),
    exp: nowS() + 300,
    ...spec.claims,
  };
  for (const name of spec.omit ?? []) delete payload[name];
  return new SignJWT(payload).setProtectedHeader({ alg: spec.alg, ...spec.header }).sign(spec.key);
}

export const secretKey = (secret = TEST_SECRET): Uint8Array => new TextEncoder().encode(secret);

/** base64url of a JSON value or a string. */
export function b64url(value: unknown): string {
  return Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');
}

/** An HS256 token built by hand: any header and payload, signed with `secret` (string or bytes). */
export function hmacToken(header: object, payload: object, secret: string | Uint8Array = TEST_SECRET): string {
  const input = `${b64url(header)}.${b64url(payload)}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}

/** An RS256 token built by hand with node:crypto (jose refuses to sign with weak keys; attackers do not). */
export function rs256Token(header: object, payload: object, privateKey: KeyObject): string {
  const input = `${b64url(header)}.${b64url(payload)}`;
  return `${input}.${sign('sha256', Buffer.from(input), privateKey).toString('base64url')}`;
}

export async function publicJwk(key: KeyObject, kid: string, alg: string): Promise<JWK> {
  return { ...(await exportJWK(key)), kid, alg, use: 'sig' };
}

/** A JWKS endpoint on 127.0.0.1 whose key set the test changes; counts GETs. */
export interface JwksServer {
  url: string;
  fetches: number;
  setKeys(keys: JWK[]): void;
  /** Answer 503 to every fetch (the issuer is down). */
  setDown(down: boolean): void;
  close(): Promise<void>;
}

export async function startJwksServer(keys: JWK[] = []): Promise<JwksServer> {
  let current = keys;
  let down = false;
  const state = { fetches: 0 };
  const server: Server = createServer((request, response) => {
    state.fetches += 1;
    if (down) {
      response.writeHead(503).end();
      return;
    }
    response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: current }));
  });
  server.keepAliveTimeout = 100;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/.well-known/jwks.json`,
    get fetches() {
      return state.fetches;
    },
    setKeys: (next) => (current = next),
    setDown: (value) => (down = value),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A server that counts any request: for `jku` / `x5u` URLs that must never be fetched. */
export async function startCountingServer(): Promise<{ url: string; hits: () => number; close(): Promise<void> }> {
  let hits = 0;
  const server = createServer((_request, response) => {
    hits += 1;
    response.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    hits: () => hits,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** POST an OTLP body to a listening test server with optional bearer token and extra headers. */
export async function postTraces(
  baseUrl: string,
  body: Buffer | string,
  options: { token?: string; headers?: Record<string, string>; query?: string } = {},
): Promise<{ status: number; headers: Headers; body: Buffer }> {
  const headers: Record<string, string> = {
    'content-type': typeof body === 'string' ? 'application/json' : 'application/x-protobuf',
    ...options.headers,
  };
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
  const response = await fetch(`${baseUrl}/v1/traces${options.query ?? ''}`, {
    method: 'POST',
    headers,
    body: typeof body === 'string' ? body : new Uint8Array(body),
  });
  return { status: response.status, headers: response.headers, body: Buffer.from(await response.arrayBuffer()) };
}
