import { decodeProtectedHeader } from 'jose';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { loadKeySet } from '../../../server/auth/keys.js';
import { mintToken, parseTtl } from '../../../server/auth/mint.js';
import { TokenVerifier } from '../../../server/auth/verifier.js';
import { runTokenCommand } from '../../../server/cli-auth.js';
import { ConfigError, loadConfig, type Config } from '../../../server/config.js';
import { AUDIENCE, ISSUER, TEST_SECRET, ecKeyPair, keyDir, rsaKeyPair } from '../../helpers/auth.js';

const files = keyDir();
afterAll(() => files.cleanup());

function verifierFor(config: Config): TokenVerifier {
  const { auth } = config;
  return new TokenVerifier({
    keys: loadKeySet(auth)!,
    issuer: auth.issuer,
    audience: auth.audience,
    tenantClaim: auth.tenantClaim,
    clockToleranceS: auth.clockToleranceS,
  });
}

describe('tracehouse token', () => {
  it('signs with JWT_SECRET a token the server configured alike accepts', async () => {
    const config = loadConfig({
      JWT_SECRET: TEST_SECRET,
      JWT_ISSUER: ISSUER,
      JWT_AUDIENCE: AUDIENCE,
      JWT_TENANT_CLAIM: 'org',
    });
    const token = await mintToken(config.auth, { tenant: 'acme', scopes: ['traces:write'], ttlS: 60 });
    expect(decodeProtectedHeader(token)).toEqual({ alg: 'HS256', typ: 'JWT' });
    const principal = await verifierFor(config).verify(token);
    expect(principal.tenant).toBe('acme');
    expect([...principal.scopes]).toEqual(['traces:write']);
  });

  it('prefers JWT_PRIVATE_KEY_FILE and picks an algorithm that fits the key and JWT_ALGORITHMS', async () => {
    const ec = ecKeyPair('P-384');
    const config = loadConfig({
      JWT_PUBLIC_KEY_FILE: files.write('ec.pub.pem', ec.publicPem),
      JWT_PRIVATE_KEY_FILE: files.write('ec.pem', ec.privatePem),
      JWT_SECRET: TEST_SECRET,
    });
    const token = await mintToken(config.auth, { tenant: 'acme', scopes: ['traces:read'], ttlS: 60, kid: 'k1' });
    expect(decodeProtectedHeader(token)).toEqual({ alg: 'ES384', typ: 'JWT', kid: 'k1' });
    expect((await verifierFor(config).verify(token)).tenant).toBe('acme');

    const rsa = rsaKeyPair();
    const ps = loadConfig({
      JWT_PUBLIC_KEY_FILE: files.write('rsa.pub.pem', rsa.publicPem),
      JWT_PRIVATE_KEY_FILE: files.write('rsa.pem', rsa.privatePem),
      JWT_ALGORITHMS: 'PS256',
    });
    const psToken = await mintToken(ps.auth, { tenant: 'acme', scopes: [], ttlS: 60 });
    expect(decodeProtectedHeader(psToken).alg).toBe('PS256');
    expect((await verifierFor(ps).verify(psToken)).tenant).toBe('acme');
  });

  it('refuses without a key, with an invalid tenant or an out-of-range TTL', async () => {
    await expect(mintToken(loadConfig({}).auth, { tenant: 'acme', scopes: [], ttlS: 60 })).rejects.toThrow(ConfigError);
    const auth = loadConfig({ JWT_SECRET: TEST_SECRET }).auth;
    await expect(mintToken(auth, { tenant: '../etc', scopes: [], ttlS: 60 })).rejects.toThrow(/tenant/);
    await expect(mintToken(auth, { tenant: 'acme', scopes: [], ttlS: 0 })).rejects.toThrow(/TTL/);
  });

  it('parses TTLs with units', () => {
    expect(parseTtl('90')).toBe(90);
    expect(parseTtl('15m')).toBe(900);
    expect(parseTtl('1h')).toBe(3600);
    expect(parseTtl('7d')).toBe(604_800);
    expect(() => parseTtl('1 week')).toThrow(ConfigError);
  });

  it('prints only the token, so $(npx tracehouse token …) can go into OTEL_EXPORTER_OTLP_HEADERS', async () => {
    const config = loadConfig({ JWT_SECRET: TEST_SECRET });
    const chunks: string[] = [];
    const write = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => chunks.push(String(chunk)) > 0);
    try {
      const code = await runTokenCommand(['--tenant', 'acme', '--scope', 'traces:write', '--ttl', '10m'], config);
      expect(code).toBe(0);
    } finally {
      write.mockRestore();
    }
    const printed = chunks.join('');
    expect(printed).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+\n$/);
    const principal = await verifierFor(config).verify(printed.trim());
    expect(principal.expiresAtMs - Date.now()).toBeGreaterThan(9 * 60_000);
    await expect(runTokenCommand(['--tenant', 'acme', '--scope', 'traces:everything'], config)).rejects.toThrow(
      /unknown scope/,
    );
  });
});
