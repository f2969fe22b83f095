import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ConfigError, DEFAULTS, ENV_KEYS, loadConfig } from '../../server/config.js';

function readmeTable(): Map<string, { unit: string; defaultValue: string }> {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const table = readme.split('<!-- config-table:start -->')[1].split('<!-- config-table:end -->')[0];
  const rows = new Map<string, { unit: string; defaultValue: string }>();
  for (const line of table.split('\n')) {
    const cells = line.split('|').map((cell) => cell.trim());
    const name = /^`([A-Z_0-9]+)`$/.exec(cells[1] ?? '')?.[1];
    if (name) rows.set(name, { unit: cells[2], defaultValue: cells[3].replaceAll('`', '') });
  }
  return rows;
}

describe('configuration', () => {
  it('documents every environment variable in the README with its unit and default', () => {
    const rows = readmeTable();
    expect([...rows.keys()].sort()).toEqual(Object.keys(ENV_KEYS).sort());
    for (const [name, spec] of Object.entries(ENV_KEYS)) {
      const value = (DEFAULTS[spec.section] as unknown as Record<string, unknown>)[spec.key];
      expect(rows.get(name)?.defaultValue, name).toBe(value === undefined ? 'unset' : String(value));
      expect(rows.get(name)?.unit, name).toBe(spec.unit);
    }
  });

  it('reads the environment over the defaults and explicit overrides over the environment', () => {
    const config = loadConfig({ PORT: '9999', RETENTION_DAYS: '3' }, { storage: { retentionDays: 5 } });
    expect(config.server.port).toBe(9999);
    expect(config.storage.retentionDays).toBe(5);
    expect(config.batch).toEqual(DEFAULTS.batch);
  });

  it('fails with the variable name on a value that is not a number or out of range', () => {
    expect(() => loadConfig({ MAX_BODY_BYTES: '16MB' })).toThrow(ConfigError);
    expect(() => loadConfig({ MAX_BODY_BYTES: '16MB' })).toThrow(/MAX_BODY_BYTES/);
    expect(() => loadConfig({ RETRY_AFTER_S: '30' })).toThrow(/RETRY_AFTER_S must be between 1 and 5/);
  });
});

describe('deploy/env.example', () => {
  it('lists every configuration key, with the default value where there is one', () => {
    const example = readFileSync(new URL('../../deploy/env.example', import.meta.url), 'utf8');
    const keys = [...example.matchAll(/^#? ?([A-Z][A-Z_0-9]+)=(.*)$/gm)].map((match) => [match[1], match[2]] as const);
    expect(keys.map(([key]) => key).sort()).toEqual(Object.keys(ENV_KEYS).sort());
    for (const [key, value] of keys) {
      const spec = ENV_KEYS[key];
      const defaultValue = (DEFAULTS[spec.section] as unknown as Record<string, unknown>)[spec.key];
      if (defaultValue !== undefined) expect(value, key).toBe(String(defaultValue));
    }
  });
});
