/**
 * The auth stage as the rest of the server sees it: either open (no keys configured: every
 * request is tenant `default` with every scope, and the server says so loudly at start) or a
 * TokenVerifier over the configured keys. Production mode (TRACEHOUSE_PRODUCTION=1) refuses to serve
 * open unless AUTH_ALLOW_OPEN=1 (other commands, such as migrate, do not care).
 */
import type { Logger } from 'pino';
import { ConfigError, type AuthConfig } from '../config.js';
import { loadKeySet, type KeySetOptions } from './keys.js';
import { ALL_SCOPES } from './scopes.js';
import { OPEN_TENANT } from './tenant.js';
import { TokenVerifier, type Principal } from './verifier.js';

export interface Authenticator {
  /** True when no keys are configured: requests are not authenticated. */
  readonly open: boolean;
  /** Resolves with the token's principal or rejects with an AuthFailure. */
  verify(token: string): Promise<Principal>;
}

/** The principal of every request while the server runs open. */
export const OPEN_PRINCIPAL: Principal = { tenant: OPEN_TENANT, scopes: ALL_SCOPES, expiresAtMs: Infinity };

export async function createAuthenticator(
  config: AuthConfig,
  log: Pick<Logger, 'info' | 'warn'>,
  options: KeySetOptions & { now?: () => number } = {},
): Promise<Authenticator> {
  const keys = loadKeySet(config, options);
  if (keys === undefined && config.production && !config.allowOpen) {
    throw new ConfigError(
      'TRACEHOUSE_PRODUCTION is set but no JWT_SECRET, JWT_PUBLIC_KEY_FILE or JWT_JWKS_URL is: refusing to serve ' +
        'without authentication (set AUTH_ALLOW_OPEN=1 to run open as tenant "default" anyway)',
    );
  }
  if (keys === undefined) {
    log.warn(
      { tenant: OPEN_TENANT, production: config.production, allowOpen: config.allowOpen },
      'AUTHENTICATION IS OFF: no JWT_SECRET, JWT_PUBLIC_KEY_FILE or JWT_JWKS_URL is set, so anyone who can ' +
        `reach this port writes as tenant "${OPEN_TENANT}". Configure a key before exposing tracehouse.`,
    );
    return { open: true, verify: async () => OPEN_PRINCIPAL };
  }
  const verifier = new TokenVerifier({
    keys,
    issuer: config.issuer,
    audience: config.audience,
    tenantClaim: config.tenantClaim,
    clockToleranceS: config.clockToleranceS,
    now: options.now,
  });
  log.info(
    {
      keys: keys.description,
      issuer: config.issuer,
      audience: config.audience,
      tenantClaim: config.tenantClaim,
      clockToleranceS: config.clockToleranceS,
    },
    'JWT authentication on',
  );
  // A JWKS is fetched now, so a wrong URL shows at start; an issuer that is down is not fatal.
  await keys
    .prefetch()
    .catch((err: unknown) =>
      log.warn({ err: { message: (err as Error).message }, jwksUrl: config.jwksUrl }, 'JWKS not reachable at start'),
    );
  return { open: false, verify: (token) => verifier.verify(token) };
}
