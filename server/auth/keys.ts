/**
 * The verification keys and, for each, its algorithm allow-list. Any combination of the three
 * sources may be configured; a token's `alg` picks the source:
 *   JWT_SECRET           HMAC: HS256 / HS384 / HS512
 *   JWT_PUBLIC_KEY_FILE  PEM public key: RS* and PS* (RSA), PS* (RSA-PSS), ES256/384/512 by curve, EdDSA
 *   JWT_JWKS_URL         remote JWKS (asymmetric algorithms only), cached for JWT_JWKS_CACHE_MAX_AGE_MS,
 *                        fetched at most once per JWT_JWKS_COOLDOWN_MS, whether the fetch succeeds or
 *                        not: a flood of unknown `kid`s, or a flood while the issuer is down, costs
 *                        the issuer one request per cooldown
 * JWT_ALGORITHMS narrows every list. A key is never used with an algorithm of another family, so
 * HS256 signed with the public key ("alg confusion") finds no key at all.
 */
import { readFileSync } from 'node:fs';
import { createPublicKey, type KeyObject } from 'node:crypto';
import { createRemoteJWKSet, customFetch, errors, type FetchImplementation, type JWTVerifyGetKey } from 'jose';
import { ConfigError, type AuthConfig } from '../config.js';
import { JWS_ALGORITHMS, type JwsAlgorithm } from './algorithms.js';
import { AuthFailure } from './failures.js';

const HMAC: JwsAlgorithm[] = ['HS256', 'HS384', 'HS512'];
const RSA: JwsAlgorithm[] = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'];
const RSA_PSS: JwsAlgorithm[] = ['PS256', 'PS384', 'PS512'];
const EC_BY_CURVE: Record<string, JwsAlgorithm[]> = {
  prime256v1: ['ES256'],
  secp384r1: ['ES384'],
  secp521r1: ['ES512'],
};
const EDDSA: JwsAlgorithm[] = ['EdDSA', 'Ed25519'];
const ASYMMETRIC: JwsAlgorithm[] = [...RSA, 'ES256', 'ES384', 'ES512', ...EDDSA];

/** A key that verifies tokens, with the algorithms it may be used with. */
interface KeySource {
  kind: 'secret' | 'public-key' | 'jwks';
  algorithms: ReadonlySet<string>;
}

export interface KeySet {
  /** Union of every source's allow-list: what jose is told to accept. */
  algorithms: JwsAlgorithm[];
  /** jose key resolver: picks the source by the header's alg (and kid, for a JWKS). */
  resolve: JWTVerifyGetKey;
  /** For the start-up log line: which sources, which algorithms. Never key material. */
  description: Array<{ kind: string; algorithms: string[] }>;
  /** Fetches the JWKS once at start, if any (rejects when it cannot; the server starts anyway). */
  prefetch(): Promise<void>;
}

export interface KeySetOptions {
  jwksTimeoutMs?: number;
}

/** The algorithms a public key may verify, by its type (and curve). */
export function algorithmsForPublicKey(key: KeyObject): JwsAlgorithm[] {
  switch (key.asymmetricKeyType) {
    case 'rsa':
      return RSA;
    case 'rsa-pss':
      return RSA_PSS;
    case 'ec':
      return EC_BY_CURVE[key.asymmetricKeyDetails?.namedCurve ?? ''] ?? [];
    case 'ed25519':
      return EDDSA;
    default:
      return [];
  }
}

export function algorithmsForSecret(): JwsAlgorithm[] {
  return HMAC;
}

function narrow(name: string, own: JwsAlgorithm[], allowed: string[] | undefined): Set<string> {
  const result = new Set(allowed === undefined ? own : own.filter((alg) => allowed.includes(alg)));
  if (result.size === 0) {
    throw new ConfigError(
      `JWT_ALGORITHMS (${(allowed ?? []).join(', ')}) allows none of the algorithms of ${name} (${own.join(', ')})`,
    );
  }
  return result;
}

export function hasKeys(config: AuthConfig): boolean {
  return Boolean(config.jwtSecret || config.publicKeyFile || config.jwksUrl);
}

/** Loads the configured keys; undefined when none is configured (the server runs open). */
export function loadKeySet(config: AuthConfig, options: KeySetOptions = {}): KeySet | undefined {
  if (!hasKeys(config)) return undefined;
  const sources: KeySource[] = [];
  let secret: { key: Uint8Array; source: KeySource } | undefined;
  let publicKey: { key: KeyObject; source: KeySource } | undefined;
  let jwks: { get: ReturnType<typeof createRemoteJWKSet>; source: KeySource } | undefined;

  if (config.jwtSecret) {
    const source: KeySource = { kind: 'secret', algorithms: narrow('JWT_SECRET', HMAC, config.algorithms) };
    secret = { key: new TextEncoder().encode(config.jwtSecret), source };
    sources.push(source);
  }
  if (config.publicKeyFile) {
    const key = readPublicKey(config.publicKeyFile);
    const own = algorithmsForPublicKey(key);
    if (own.length === 0) {
      throw new ConfigError(
        `JWT_PUBLIC_KEY_FILE holds a ${key.asymmetricKeyType} key, which tracehouse cannot verify with`,
      );
    }
    const source: KeySource = { kind: 'public-key', algorithms: narrow('JWT_PUBLIC_KEY_FILE', own, config.algorithms) };
    publicKey = { key, source };
    sources.push(source);
  }
  if (config.jwksUrl) {
    const source: KeySource = { kind: 'jwks', algorithms: narrow('JWT_JWKS_URL', ASYMMETRIC, config.algorithms) };
    const get = createRemoteJWKSet(new URL(config.jwksUrl), {
      cooldownDuration: config.jwksCooldownMs,
      cacheMaxAge: config.jwksCacheMaxAgeMs,
      timeoutDuration: options.jwksTimeoutMs ?? 5000,
      [customFetch]: fetchAtMostOncePer(config.jwksCooldownMs),
    });
    jwks = { get, source };
    sources.push(source);
  }

  const resolve: JWTVerifyGetKey = async (header, token) => {
    const alg = header.alg ?? '';
    if (secret?.source.algorithms.has(alg)) return secret.key;
    const jwksFits = jwks?.source.algorithms.has(alg) ?? false;
    const publicKeyFits = publicKey?.source.algorithms.has(alg) ?? false;
    if (jwks && jwksFits && (header.kid !== undefined || !publicKeyFits)) {
      return resolveFromJwks(jwks.get, header, token);
    }
    if (publicKey && publicKeyFits) return publicKey.key;
    throw new AuthFailure('algorithm_not_allowed', `algorithm ${alg.slice(0, 20)} is not allowed`);
  };

  const algorithms = JWS_ALGORITHMS.filter((alg) => sources.some((source) => source.algorithms.has(alg)));
  const description = sources.map((source) => ({ kind: source.kind, algorithms: [...source.algorithms] }));
  const prefetch = async (): Promise<void> => jwks?.get.reload();
  return { algorithms, resolve, description, prefetch };
}

/**
 * jose's remote JWKS waits a cooldown after a *successful* fetch only: while the issuer is down,
 * every unknown kid (and, past the cache age, every token) would fetch again. After a failed
 * fetch this fails at once, without a request, until the cooldown has passed.
 */
function fetchAtMostOncePer(cooldownMs: number, now: () => number = Date.now): FetchImplementation {
  let failedAt = -Infinity;
  let failure: Error = new Error('the JWKS fetch failed');
  return async (url, options) => {
    if (now() - failedAt < cooldownMs) throw failure;
    try {
      const response = await fetch(url, options);
      if (response.status !== 200) {
        failedAt = now();
        failure = new Error(`the JWKS answered HTTP ${response.status}`);
      }
      return response;
    } catch (err) {
      failedAt = now();
      failure = err as Error;
      throw err;
    }
  };
}

function readPublicKey(file: string): KeyObject {
  let pem: string;
  try {
    pem = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`JWT_PUBLIC_KEY_FILE cannot be read: ${(err as Error).message}`);
  }
  try {
    return createPublicKey(pem);
  } catch (err) {
    throw new ConfigError(`JWT_PUBLIC_KEY_FILE is not a PEM public key: ${(err as Error).message}`);
  }
}

/**
 * Keys from the JWKS. "No such kid" is the client's problem (401); an issuer we cannot reach or that
 * serves garbage is ours, and transient: 503, so exporters retry instead of dropping their spans.
 */
async function resolveFromJwks(
  get: ReturnType<typeof createRemoteJWKSet>,
  header: Parameters<JWTVerifyGetKey>[0],
  token: Parameters<JWTVerifyGetKey>[1],
) {
  try {
    return await get(header, token);
  } catch (err) {
    if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys) {
      throw new AuthFailure('unknown_key', 'no key of the JWKS matches the token', { cause: err });
    }
    if (err instanceof errors.JOSENotSupported || err instanceof errors.JOSEAlgNotAllowed) {
      throw new AuthFailure('algorithm_not_allowed', 'the token algorithm cannot be used with the JWKS', {
        cause: err,
      });
    }
    throw new AuthFailure('keys_unavailable', 'the JWKS could not be fetched; retry later', { cause: err });
  }
}
