/**
 * Signs tokens for local use (`tracehouse token`): with JWT_PRIVATE_KEY_FILE when set, otherwise
 * with JWT_SECRET, using the first algorithm of JWT_ALGORITHMS that fits the key (or the key's
 * natural one), and the configured issuer, audience and tenant claim, so the server that shares
 * this configuration accepts the token. Production tokens come from your identity provider.
 */
import { readFileSync } from 'node:fs';
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { SignJWT } from 'jose';
import { ConfigError, type AuthConfig } from '../config.js';
import { algorithmsForPublicKey, algorithmsForSecret } from './keys.js';
import type { Scope } from './scopes.js';
import { tenantProblem } from './tenant.js';

export interface MintOptions {
  tenant: string;
  scopes: readonly Scope[];
  ttlS: number;
  kid?: string;
  subject?: string;
  now?: () => number; // ms since the epoch
}

const MAX_TTL_S = 366 * 86_400;

export async function mintToken(config: AuthConfig, options: MintOptions): Promise<string> {
  const problem = tenantProblem(options.tenant);
  if (problem !== undefined) throw new ConfigError(`the tenant ${problem}`);
  if (!(Number.isSafeInteger(options.ttlS) && options.ttlS > 0 && options.ttlS <= MAX_TTL_S)) {
    throw new ConfigError(`the TTL must be between 1 s and ${MAX_TTL_S} s`);
  }
  const { key, alg } = signingKey(config);
  const nowS = Math.floor((options.now ?? Date.now)() / 1000);
  const jwt = new SignJWT({ scope: options.scopes.join(' '), [config.tenantClaim]: options.tenant })
    .setProtectedHeader({ alg, typ: 'JWT', ...(options.kid ? { kid: options.kid } : {}) })
    .setIssuedAt(nowS)
    .setExpirationTime(nowS + options.ttlS);
  if (config.issuer) jwt.setIssuer(config.issuer);
  if (config.audience) jwt.setAudience(config.audience);
  if (options.subject) jwt.setSubject(options.subject);
  return jwt.sign(key);
}

function signingKey(config: AuthConfig): { key: KeyObject | Uint8Array; alg: string } {
  if (config.privateKeyFile) {
    let key: KeyObject;
    try {
      key = createPrivateKey(readFileSync(config.privateKeyFile, 'utf8'));
    } catch (err) {
      throw new ConfigError(`JWT_PRIVATE_KEY_FILE is not a readable PEM private key: ${(err as Error).message}`);
    }
    return { key, alg: pick('JWT_PRIVATE_KEY_FILE', algorithmsForPublicKey(createPublicKey(key)), config.algorithms) };
  }
  if (config.jwtSecret) {
    return {
      key: new TextEncoder().encode(config.jwtSecret),
      alg: pick('JWT_SECRET', algorithmsForSecret(), config.algorithms),
    };
  }
  throw new ConfigError('set JWT_SECRET or JWT_PRIVATE_KEY_FILE to sign tokens');
}

function pick(name: string, own: readonly string[], allowed: readonly string[] | undefined): string {
  const alg = allowed === undefined ? own[0] : allowed.find((candidate) => own.includes(candidate));
  if (alg === undefined) throw new ConfigError(`JWT_ALGORITHMS allows none of the algorithms of ${name}`);
  return alg;
}

/** "90", "90s", "15m", "1h", "7d" → seconds. */
export function parseTtl(text: string): number {
  const match = /^(\d+)\s*([smhd]?)$/.exec(text.trim());
  if (!match) throw new ConfigError(`--ttl must look like 3600, 30m, 1h or 7d, got '${text}'`);
  const unit = { '': 1, s: 1, m: 60, h: 3600, d: 86_400 }[match[2] as '' | 's' | 'm' | 'h' | 'd'];
  return Number(match[1]) * unit;
}
