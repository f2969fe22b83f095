import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../../server/config.js';

describe('TENANT_RETENTION_DAYS', () => {
  it('is unset by default and parses tenant=days pairs', () => {
    expect(loadConfig({}).storage.tenantRetentionDays).toBeUndefined();
    expect({ ...loadConfig({ TENANT_RETENTION_DAYS: 'acme=3, beta=1,' }).storage.tenantRetentionDays }).toEqual({
      acme: 3,
      beta: 1,
    });
  });

  it('keeps a tenant named __proto__ as data, not as the prototype', () => {
    const map = loadConfig({ TENANT_RETENTION_DAYS: '__proto__=2' }).storage.tenantRetentionDays!;
    expect(Object.keys(map)).toEqual(['__proto__']);
    expect(map.__proto__).toBe(2);
  });

  it.each([
    ['acme', /'acme' is not key=integer/],
    ['acme=x', /'acme=x' is not key=integer/],
    ['acme=3,acme=2', /'acme' appears twice/],
    ['acme=0', /TENANT_RETENTION_DAYS\.acme must be between 1 and RETENTION_DAYS \(7\)/],
    ['acme=8', /no tenant can keep more/],
    ['a/b=2', /TENANT_RETENTION_DAYS: tenant 'a\/b'/],
  ])('rejects %s', (value, message) => {
    expect(() => loadConfig({ TENANT_RETENTION_DAYS: value })).toThrow(ConfigError);
    expect(() => loadConfig({ TENANT_RETENTION_DAYS: value })).toThrow(message);
  });

  it('may go up to a raised RETENTION_DAYS', () => {
    expect({
      ...loadConfig({ RETENTION_DAYS: '30', TENANT_RETENTION_DAYS: 'acme=30' }).storage.tenantRetentionDays,
    }).toEqual({ acme: 30 });
  });
});
