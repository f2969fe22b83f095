import { describe, expect, it } from 'vitest';
import { LocalGcra, bucketFor, decide } from '../../../server/cache/gcra.js';

const S = 1_000_000; // µs

describe('GCRA', () => {
  it('allows the burst at once, then the rate', () => {
    const bucket = bucketFor(10, 20)!; // 10/s, burst 20
    const gcra = new LocalGcra();
    const t0 = 1_000 * S;
    expect(gcra.take(['k'], [{ bucket, cost: 20 }], t0).allowed).toBe(true);
    const refused = gcra.take(['k'], [{ bucket, cost: 1 }], t0);
    expect(refused.allowed).toBe(false);
    expect(refused.waitUs).toBeCloseTo(0.1 * S, -2);
    expect(gcra.take(['k'], [{ bucket, cost: 1 }], t0 + 0.1 * S).allowed).toBe(true);
    expect(gcra.take(['k'], [{ bucket, cost: 5 }], t0 + 0.2 * S).allowed).toBe(false);
    expect(gcra.take(['k'], [{ bucket, cost: 5 }], t0 + 0.6 * S).allowed).toBe(true);
  });

  it('lets a request larger than the burst through a full bucket and leaves it in debt (blocked)', () => {
    const bucket = bucketFor(10, 20)!;
    const first = decide([{ bucket, cost: 50 }], [0], 10 * S);
    expect(first.allowed).toBe(true);
    expect(first.blockedUs).toBeCloseTo(3 * S, -2); // 50 units = 5 s of rate, minus the 2 s burst
    const next = decide([{ bucket, cost: 0 }], first.newTats, 11 * S);
    expect(next.allowed).toBe(false);
    expect(next.waitUs).toBeCloseTo(2 * S, -2);
    expect(decide([{ bucket, cost: 0 }], first.newTats, 13 * S + 1).allowed).toBe(true);
  });

  it('charges several buckets all or nothing', () => {
    const spans = bucketFor(100, 100)!;
    const bytes = bucketFor(1000, 1000)!;
    const gcra = new LocalGcra();
    const keys = ['spans', 'bytes'];
    expect(
      gcra.take(
        keys,
        [
          { bucket: spans, cost: 50 },
          { bucket: bytes, cost: 900 },
        ],
        S,
      ).allowed,
    ).toBe(true);
    const refused = gcra.take(
      keys,
      [
        { bucket: spans, cost: 10 },
        { bucket: bytes, cost: 200 },
      ],
      S,
    );
    expect(refused).toMatchObject({ allowed: false, refusedIndex: 1 });
    // the spans bucket was not charged by the refused request: 50 more fit
    expect(
      gcra.take(
        keys,
        [
          { bucket: spans, cost: 50 },
          { bucket: bytes, cost: 0 },
        ],
        S,
      ).allowed,
    ).toBe(true);
  });

  it('divides rate and burst by the share, and treats rate 0 as no limit', () => {
    expect(bucketFor(0, 10)).toBeUndefined();
    const whole = bucketFor(100, 200)!;
    const half = bucketFor(100, 200, 2)!;
    expect(half.intervalUs).toBeCloseTo(whole.intervalUs * 2);
    expect(half.toleranceUs).toBeCloseTo(whole.toleranceUs); // burst/2 units at half the rate: same time span
    expect(decide([{ bucket: half, cost: 101 }], [0], S).newTats[0] - S).toBeCloseTo(101 * half.intervalUs, -1);
  });

  it('forgets buckets that are full again once it holds too many keys', () => {
    const bucket = bucketFor(1000, 1000)!;
    const gcra = new LocalGcra(10);
    for (let i = 0; i < 50; i++) gcra.take([`k${i}`], [{ bucket, cost: 1 }], i * S);
    expect(gcra.size).toBeLessThanOrEqual(11);
  });
});
