import { describe, expect, it } from 'vitest';
import type { SpanRow } from '../../../server/decode/types.js';
import { Sampler, keepsTraceId, thresholdForRate } from '../../../server/receive/sampler.js';
import { createRng } from '../../helpers/otlp-fixtures.js';

function traceIds(count: number, seed: number): Buffer[] {
  const rng = createRng(seed);
  return Array.from({ length: count }, () => {
    const id = Buffer.alloc(16);
    for (let i = 0; i < 16; i++) id[i] = Math.floor(rng() * 256);
    return id;
  });
}

function row(traceId: Buffer, overrides: Partial<SpanRow> = {}): SpanRow {
  return {
    traceId,
    spanId: Buffer.from('00000000000000a1', 'hex'),
    parentSpanId: null,
    traceState: '',
    flags: 1,
    name: 'op',
    kind: 2,
    serviceName: 'checkout',
    startTimeUnixNano: 1n,
    endTimeUnixNano: 2n,
    statusCode: 0,
    statusMessage: '',
    attributes: '{}',
    sharedAttributes: '{}',
    resourceAttributes: '{}',
    scopeName: '',
    scopeVersion: '',
    scopeAttributes: '{}',
    events: '[]',
    links: '[]',
    droppedAttributesCount: 0,
    droppedEventsCount: 0,
    droppedLinksCount: 0,
    samplingWeight: 1,
    sizeBytes: 100,
    ...overrides,
  };
}

/** A trace id whose randomness (lowest 56 bits) is exactly r. */
function idWithRandomness(r: bigint): Buffer {
  const id = Buffer.alloc(16, 0xee);
  for (let i = 15; i >= 9; i--) {
    id[i] = Number(r & 0xffn);
    r >>= 8n;
  }
  return id;
}

const config = (rate: number, extra: Partial<ConstructorParameters<typeof Sampler>[0]> = {}) => ({
  rate,
  overrides: undefined,
  keepErrors: true,
  ...extra,
});

describe('consistent sampling by trace id', () => {
  const ids = traceIds(100_000, 0x5eed);

  it.each([0.5, 0.25, 0.1])('keeps %f of 100k traces within ±2 %%', (rate) => {
    const t = thresholdForRate(rate);
    const kept = ids.filter((id) => keepsTraceId(id, t)).length;
    expect(Math.abs(kept / ids.length - rate) / rate).toBeLessThan(0.02);
  });

  it('keeps 1 % of 100k traces within ±10 % (its standard error alone is 3 %)', () => {
    const kept = ids.filter((id) => keepsTraceId(id, thresholdForRate(0.01))).length;
    expect(Math.abs(kept / ids.length - 0.01) / 0.01).toBeLessThan(0.1);
  });

  it('decides the same on two instances, and a lower rate keeps a subset of a higher one', () => {
    const one = new Sampler(config(0.3));
    const two = new Sampler(config(0.3));
    const decisions = (sampler: Sampler) =>
      ids.slice(0, 20_000).map((id) => sampler.apply('acme', [row(id)]).kept.length === 1);
    expect(decisions(one)).toEqual(decisions(two));
    const tenth = thresholdForRate(0.1);
    const third = thresholdForRate(0.3);
    for (const id of ids.slice(0, 20_000)) if (keepsTraceId(id, tenth)) expect(keepsTraceId(id, third)).toBe(true);
  });

  it('compares all 56 bits exactly at the threshold', () => {
    const t = thresholdForRate(0.25); // T = 0xc0000000000000
    expect(t.threshold).toBe(0xc0000000000000n);
    expect(keepsTraceId(idWithRandomness(0xc0000000000000n), t)).toBe(true);
    expect(keepsTraceId(idWithRandomness(0xbfffffffffffffn), t)).toBe(false);
    expect(keepsTraceId(idWithRandomness(0xffffffffffffffn), thresholdForRate(0))).toBe(false);
    expect(keepsTraceId(idWithRandomness(0n), thresholdForRate(1))).toBe(true);
  });

  it('keeps every span of a kept trace and none of a dropped one, whatever the span', () => {
    const sampler = new Sampler(config(0.5));
    const kept = idWithRandomness(0xf0000000000000n);
    const dropped = idWithRandomness(0x10000000000000n);
    const rows = [row(kept), row(dropped), row(kept, { name: 'child', kind: 3 }), row(dropped, { name: 'child' })];
    const result = sampler.apply('acme', rows);
    expect(result.kept.map((r) => r.traceId)).toEqual([kept, kept]);
    expect(result.sampledOut).toBe(2);
  });
});

describe('sampling weights', () => {
  it('gives kept spans the adjusted count 1 / rate', () => {
    const { kept } = new Sampler(config(0.25)).apply('acme', [row(idWithRandomness(0xf0000000000000n))]);
    expect(kept[0].samplingWeight).toBe(4);
  });

  it('composes with the SDK threshold by the larger threshold, not the product', () => {
    const sampler = new Sampler(config(0.25)); // T = 0xc…
    // The SDK sampled at 50 % (th:8): spans that pass our 25 % stand for 4.
    const a = row(idWithRandomness(0xd0000000000000n), { traceState: 'ot=th:8', samplingWeight: 2 });
    // The SDK sampled at 12.5 % (th:e): every span that reached us passes our 25 %; still 8.
    const b = row(idWithRandomness(0xe8000000000000n), { traceState: 'ot=th:e', samplingWeight: 8 });
    const { kept } = sampler.apply('acme', [a, b]);
    expect(kept.map((r) => r.samplingWeight)).toEqual([4, 8]);
  });

  it("uses the tracestate's explicit randomness rv when the SDK set one", () => {
    const sampler = new Sampler(config(0.5));
    const low = idWithRandomness(0x01n);
    const { kept } = sampler.apply('acme', [row(low, { traceState: 'ot=rv:f0000000000000' })]);
    expect(kept).toHaveLength(1);
    expect(
      sampler.apply('acme', [row(idWithRandomness(0xffn << 48n), { traceState: 'ot=rv:00000000000001' })]).kept,
    ).toEqual([]);
  });

  it('keeps error spans of dropped traces with their weight unchanged, unless told not to', () => {
    const dropped = idWithRandomness(0x10n);
    const error = row(dropped, { statusCode: 2 });
    const result = new Sampler(config(0.1)).apply('acme', [error, row(dropped)]);
    expect(result.kept).toEqual([error]);
    expect(error.samplingWeight).toBe(1);
    expect(
      new Sampler(config(0.1, { keepErrors: false })).apply('acme', [row(dropped, { statusCode: 2 })]).kept,
    ).toEqual([]);
  });
});

describe('per-tenant and per-service rates', () => {
  const sampler = new Sampler(
    config(1, {
      overrides: { acme: { rate: 0.5, services: { health: 0, payments: 1 } }, beta: { services: { noisy: 0.25 } } },
    }),
  );

  it('applies the service rate, then the tenant rate, then the global one', () => {
    expect(sampler.thresholdFor('acme', 'health').rate).toBe(0);
    expect(sampler.thresholdFor('acme', 'payments').rate).toBe(1);
    expect(sampler.thresholdFor('acme', 'checkout').rate).toBe(0.5);
    expect(sampler.thresholdFor('beta', 'noisy').rate).toBe(0.25);
    expect(sampler.thresholdFor('beta', 'checkout').rate).toBe(1);
    expect(sampler.thresholdFor('gamma', 'noisy').rate).toBe(1);
    expect(sampler.enabled).toBe(true);
  });

  it('is off (no work at all) when every rate is 1', () => {
    const off = new Sampler(config(1, { overrides: { acme: { rate: 1, services: { x: 1 } } } }));
    expect(off.enabled).toBe(false);
    const rows = [row(idWithRandomness(0n))];
    expect(off.apply('acme', rows).kept).toBe(rows);
  });

  it('drops a rate-0 service entirely but keeps its errors', () => {
    const ids = traceIds(1000, 7);
    const result = sampler.apply(
      'acme',
      ids.map((id, i) => row(id, { serviceName: 'health', statusCode: i % 100 === 0 ? 2 : 0 })),
    );
    expect(result.kept).toHaveLength(10);
    expect(result.sampledOut).toBe(990);
  });
});

describe('sampling configuration', () => {
  it('reads SAMPLING_RATE, SAMPLING_OVERRIDES and SAMPLING_KEEP_ERRORS, and refuses bad values by name', async () => {
    const { loadConfig, ConfigError } = await import('../../../server/config.js');
    const config = loadConfig({
      SAMPLING_RATE: '0.2',
      SAMPLING_OVERRIDES: '{"acme": {"rate": 0.5, "services": {"health": 0}}}',
      SAMPLING_KEEP_ERRORS: 'false',
    });
    expect(config.sampling).toEqual({
      rate: 0.2,
      overrides: { acme: { rate: 0.5, services: { health: 0 } } },
      keepErrors: false,
    });
    expect(loadConfig({}).sampling).toEqual({ rate: 1, overrides: undefined, keepErrors: true });
    expect(() => loadConfig({ SAMPLING_RATE: '1.5' })).toThrow(/SAMPLING_RATE must be between 0 and 1/);
    expect(() => loadConfig({ SAMPLING_RATE: 'half' })).toThrow(ConfigError);
    expect(() => loadConfig({ SAMPLING_OVERRIDES: '{"acme": 0.5}' })).toThrow(
      /SAMPLING_OVERRIDES.acme must be an object/,
    );
    expect(() => loadConfig({ SAMPLING_OVERRIDES: '{"acme": {"ratio": 0.5}}' })).toThrow(/ratio is unknown/);
    expect(() => loadConfig({ SAMPLING_OVERRIDES: '{"acme": {"services": {"x": 2}}}' })).toThrow(
      /services.x must be a number between 0 and 1/,
    );
    expect(() => loadConfig({ SAMPLING_OVERRIDES: '{"a b": {"rate": 0.5}}' })).toThrow(/SAMPLING_OVERRIDES: tenant/);
    expect(() => loadConfig({ SPAN_METRICS_MAX_SERIES: '-1' })).toThrow(/SPAN_METRICS_MAX_SERIES/);
  });
});
