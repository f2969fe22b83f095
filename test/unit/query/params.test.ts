import { describe, expect, it } from 'vitest';
import {
  parseDuration,
  parseEpoch,
  parseLimit,
  parseLogfmt,
  parseRfc3339,
  parseTraceId,
  resolveWindow,
  tryParseDuration,
} from '../../../server/query/params.js';

describe('durations', () => {
  it.each([
    ['0', 0n],
    ['1.2s', 1_200_000_000n],
    ['100ms', 100_000_000n],
    ['1h30m', 5_400_000_000_000n],
    ['250us', 250_000n],
    ['250µs', 250_000n],
    ['250μs', 250_000n],
    ['7ns', 7n],
    ['.5s', 500_000_000n],
    ['1.000000001s', 1_000_000_001n],
    ['+2m', 120_000_000_000n],
  ])('%s is %s ns, exactly', (text, nanos) => {
    expect(tryParseDuration(text)).toBe(nanos);
  });

  it.each(['', '5', '-1s', '1d', 's', '1.s5', '1 s', 'fast'])('refuses %j', (text) => {
    expect(tryParseDuration(text)).toBeUndefined();
    expect(() => parseDuration(text, 'minDuration')).toThrow(/minDuration must be a duration/);
  });
});

describe('epoch times by magnitude', () => {
  const ns = 1_767_225_600_123_456_789n; // 2026-01-01T00:00:00.123456789Z
  it('reads seconds, milliseconds, microseconds and nanoseconds', () => {
    expect(parseEpoch('1767225600', 'start')).toBe(1_767_225_600_000_000_000n);
    expect(parseEpoch('1767225600123', 'start')).toBe(1_767_225_600_123_000_000n);
    expect(parseEpoch('1767225600123456', 'start')).toBe(1_767_225_600_123_456_000n);
    expect(parseEpoch(ns.toString(), 'start')).toBe(ns);
  });

  it('refuses anything but digits', () => {
    expect(() => parseEpoch('-5', 'end')).toThrow(/end must be a unix timestamp/);
    expect(() => parseEpoch('1.5', 'end')).toThrow(/unix timestamp/);
  });
});

describe('RFC 3339 times', () => {
  it('keeps nanoseconds and applies offsets', () => {
    expect(parseRfc3339('2026-01-01T00:00:00.123456789Z', 't')).toBe(1_767_225_600_123_456_789n);
    expect(parseRfc3339('2026-01-01T02:00:00+02:00', 't')).toBe(1_767_225_600_000_000_000n);
    expect(parseRfc3339('2025-12-31T19:30:00.5-04:30', 't')).toBe(1_767_225_600_500_000_000n);
  });

  it.each(['2026-01-01', '2026-13-01T00:00:00Z', '2026-01-01T00:00:00', 'yesterday'])('refuses %s', (text) => {
    expect(() => parseRfc3339(text, 'query.start_time_min')).toThrow(/query.start_time_min must be an RFC 3339 time/);
  });
});

describe('trace ids', () => {
  it('takes 32 hex digits, and shorter ids left-padded', () => {
    expect(parseTraceId('0AF7651916CD43DD8448EB211C80319C').toString('hex')).toBe('0af7651916cd43dd8448eb211c80319c');
    expect(parseTraceId('af7651916cd43dd8').toString('hex')).toBe('0000000000000000af7651916cd43dd8');
  });

  it.each(['', 'xyz', 'a'.repeat(33), '12 34'])('refuses %j', (text) => {
    expect(() => parseTraceId(text)).toThrow(/1 to 32 hexadecimal digits/);
  });
});

describe('limits, windows and logfmt', () => {
  it('defaults and caps limits', () => {
    expect(parseLimit(undefined, 'limit', 20, 1000)).toBe(20);
    expect(parseLimit('0', 'limit', 20, 1000)).toBe(20);
    expect(parseLimit('5', 'limit', 20, 1000)).toBe(5);
    expect(parseLimit('50000', 'limit', 20, 1000)).toBe(1000);
    expect(() => parseLimit('ten', 'limit', 20, 1000)).toThrow(/positive integer/);
  });

  it('defaults the window to the hour before its end, and refuses one that ends before it starts', () => {
    expect(resolveWindow(undefined, undefined, 10_000_000_000_000n, 3_600_000_000_000n)).toEqual({
      startUnixNano: 6_400_000_000_000n,
      endUnixNano: 10_000_000_000_000n,
    });
    expect(() => resolveWindow(5n, 4n, 10n, 1n)).toThrow(/after its end/);
  });

  it('parses logfmt pairs with quoted values and escapes', () => {
    expect(parseLogfmt('service.name=checkout  http.route="/a b" msg="say \\"hi\\"" empty=', 'tags')).toEqual([
      ['service.name', 'checkout'],
      ['http.route', '/a b'],
      ['msg', 'say "hi"'],
      ['empty', ''],
    ]);
    expect(() => parseLogfmt('novalue', 'tags')).toThrow(/logfmt/);
    expect(() => parseLogfmt('a="bad \\q"', 'tags')).toThrow(/invalid escape/);
  });
});
