/**
 * Verifies one bearer token and returns who it names. JWS compact serialization only; checks, in
 * order, before any cryptography: size, shape (a JWE or an unsigned token is refused), header (no
 * embedded `jwk`, no `jku` / `x5u` / `x5c` to fetch, a JWT `typ` if any, an allowed `alg`); then
 * jose checks the signature, `exp` (required), `nbf`, `iss` and `aud` with the clock tolerance;
 * then the tenant claim and the scopes. Every refusal is an AuthFailure with a reason.
 */
import { decodeProtectedHeader, errors, jwtVerify, type JWTPayload, type ProtectedHeaderParameters } from 'jose';
import { AuthFailure } from './failures.js';
import type { KeySet } from './keys.js';
import { parseScopes, type Scope } from './scopes.js';
import { tenantProblem } from './tenant.js';

/** Longer tokens are refused unread (a real one is well under 2 KiB). */
export const MAX_TOKEN_BYTES = 8192;

const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+$/;
const FORBIDDEN_HEADERS = ['jwk', 'jku', 'x5u', 'x5c'] as const;
const JWT_TYPES = new Set(['jwt', 'at+jwt', 'application/jwt', 'application/at+jwt']);

/** Who a verified token names. */
export interface Principal {
  tenant: string;
  scopes: ReadonlySet<Scope>;
  /** When the token stops being accepted: (exp + clock tolerance) in ms since the epoch. */
  expiresAtMs: number;
  subject?: string;
}

export interface VerifierOptions {
  keys: KeySet;
  issuer?: string;
  audience?: string;
  tenantClaim: string;
  clockToleranceS: number;
  now?: () => number; // ms since the epoch
}

export class TokenVerifier {
  readonly #options: VerifierOptions;

  constructor(options: VerifierOptions) {
    this.#options = options;
  }

  /** Resolves with the principal, or rejects with an AuthFailure. */
  async verify(token: string): Promise<Principal> {
    const { keys, issuer, audience, tenantClaim, clockToleranceS } = this.#options;
    checkShape(token);
    const header = readHeader(token);
    if (!keys.algorithms.includes(header.alg as never)) {
      throw new AuthFailure('algorithm_not_allowed', `algorithm ${String(header.alg).slice(0, 20)} is not allowed`);
    }
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, keys.resolve, {
        algorithms: keys.algorithms,
        issuer,
        audience,
        clockTolerance: clockToleranceS,
        requiredClaims: ['exp'],
        currentDate: new Date((this.#options.now ?? Date.now)()),
      }));
    } catch (err) {
      throw toAuthFailure(err);
    }
    const tenant = payload[tenantClaim];
    const problem = tenantProblem(tenant);
    if (problem !== undefined) throw new AuthFailure('bad_tenant', `the "${tenantClaim}" claim ${problem}`);
    return {
      tenant: tenant as string,
      scopes: parseScopes(payload.scope),
      expiresAtMs: ((payload.exp as number) + clockToleranceS) * 1000,
      subject: typeof payload.sub === 'string' ? payload.sub : undefined,
    };
  }
}

function checkShape(token: string): void {
  if (token.length > MAX_TOKEN_BYTES) {
    throw new AuthFailure('malformed_token', `token longer than ${MAX_TOKEN_BYTES} bytes`);
  }
  if (COMPACT_JWS.test(token)) return;
  const parts = token.split('.').length;
  if (parts === 5) {
    throw new AuthFailure('malformed_token', 'encrypted tokens (JWE) are not accepted; send a signed JWT');
  }
  if (parts === 3 && token.endsWith('.')) throw new AuthFailure('malformed_token', 'the token has no signature');
  throw new AuthFailure('malformed_token', 'the token is not a compact JWS (header.payload.signature)');
}

function readHeader(token: string): ProtectedHeaderParameters {
  let header: ProtectedHeaderParameters;
  try {
    header = decodeProtectedHeader(token);
  } catch {
    throw new AuthFailure('malformed_token', 'the token header is not base64url JSON');
  }
  for (const name of FORBIDDEN_HEADERS) {
    if (header[name] !== undefined) {
      throw new AuthFailure('forbidden_header', `tokens carrying a "${name}" header are not accepted`);
    }
  }
  if (header.typ !== undefined && !(typeof header.typ === 'string' && JWT_TYPES.has(header.typ.toLowerCase()))) {
    throw new AuthFailure('malformed_token', 'the token "typ" is not JWT');
  }
  if (typeof header.alg !== 'string') throw new AuthFailure('malformed_token', 'the token header has no "alg"');
  return header;
}

function toAuthFailure(err: unknown): AuthFailure {
  if (err instanceof AuthFailure) return err;
  if (err instanceof errors.JWTExpired) return new AuthFailure('expired', 'the token has expired', { cause: err });
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === 'nbf' && err.reason === 'check_failed') {
      return new AuthFailure('not_yet_valid', 'the token is not valid yet ("nbf")', { cause: err });
    }
    return new AuthFailure('bad_claims', `the "${err.claim}" claim ${claimReason(err.reason)}`, { cause: err });
  }
  if (err instanceof errors.JWSSignatureVerificationFailed) {
    return new AuthFailure('bad_signature', 'signature verification failed', { cause: err });
  }
  if (err instanceof errors.JOSEAlgNotAllowed) {
    return new AuthFailure('algorithm_not_allowed', 'the token algorithm is not allowed', { cause: err });
  }
  if (err instanceof errors.JOSEError || err instanceof TypeError) {
    // JWSInvalid, JWTInvalid, JOSENotSupported (e.g. an unknown "crit"), a key unusable for the alg.
    return new AuthFailure('malformed_token', 'the token is malformed or cannot be verified', { cause: err });
  }
  return new AuthFailure('malformed_token', 'the token cannot be verified', { cause: err });
}

function claimReason(reason: string): string {
  if (reason === 'missing') return 'is missing';
  if (reason === 'check_failed') return 'has an unexpected value';
  return 'is invalid';
}
