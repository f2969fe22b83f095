import { describe, expect, it } from 'vitest';
import { LocalQueryCache } from '../../../server/cache/query-cache-local.js';
import { estimateTraceBytes } from '../../../server/cache/query-cache-policy.js';
import type { StoredSpan } from '../../../server/storage/reader-types.js';

const POLICY = { ttlMs: 60_000, quietMs: 1000, maxTraceBytes: 16 * 1024 };

function trace(n: number, spans = 5): { id: Buffer; spans: StoredSpan[] } {
  const id = Buffer.alloc(16);
  id.writeUInt32BE(n + 1, 12);
  const list = Array.from({ length: spans }, (_, i) => ({
    traceId: id,
    spanId: Buffer.from([0, 0, 0, 0, 0, 0, 1, i + 1]),
    parentSpanId: null,
    traceState: '',
    flags: 1,
    name: `op ${i}`,
    kind: 1,
    serviceName: 'svc',
    startTimeUnixNano: 1_000_000_000n + BigInt(i),
    endTimeUnixNano: 2_000_000_000n,
    statusCode: 0,
    statusMessage: '',
    attributes: `{"i": ${i}, "pad": "${'x'.repeat(200)}"}`,
    resourceAttributes: '{"service.name": "svc"}',
    scopeName: '',
    scopeVersion: '',
    scopeAttributes: '{}',
    events: '[]',
    links: '[]',
    droppedAttributesCount: 0,
    droppedEventsCount: 0,
    droppedLinksCount: 0,
  }));
  return { id, spans: list };
}

async function store(cache: LocalQueryCache, n: number): Promise<void> {
  const { id, spans } = trace(n);
  const lookup = await cache.lookupTrace('acme', id);
  if (lookup.kind !== 'miss' || !lookup.stamp) throw new Error(`expected a miss, got ${lookup.kind}`);
  const window = { startUnixNano: spans[0].startTimeUnixNano, endUnixNano: spans[0].endTimeUnixNano };
  await cache.storeTrace('acme', id, lookup.stamp, { window, spans, updatedAt: new Date(Date.now() - 5000) });
}

describe('the in-process query cache', () => {
  it('stays within its byte bound while traces keep coming, keeping the most recent ones', async () => {
    const maxBytes = 256 * 1024;
    const cache = new LocalQueryCache({ policy: POLICY, maxBytes });
    const perTrace = estimateTraceBytes(trace(0).spans);
    for (let n = 0; n < 2000; n++) {
      await store(cache, n);
      expect(cache.usage.bytes).toBeLessThanOrEqual(maxBytes);
    }
    expect(cache.usage.entries).toBeGreaterThan(maxBytes / (perTrace + 128) / 2);
    expect((await cache.lookupTrace('acme', trace(1999).id)).kind).toBe('trace');
    expect((await cache.lookupTrace('acme', trace(0).id)).kind).toBe('miss');
  });

  it('stays within its entry bound', async () => {
    const cache = new LocalQueryCache({ policy: POLICY, maxBytes: 64 * 1024 * 1024, maxEntries: 100 });
    for (let n = 0; n < 500; n++) await store(cache, n);
    expect(cache.usage.entries).toBe(100); // 50 traces, each with its window
    expect((await cache.lookupTrace('acme', trace(499).id)).kind).toBe('trace');
  });

  it('expires entries after their time to live', async () => {
    let now = 0;
    const cache = new LocalQueryCache({ policy: POLICY, maxBytes: 1024 * 1024, now: () => now });
    await store(cache, 1);
    expect((await cache.lookupTrace('acme', trace(1).id)).kind).toBe('trace');
    now += POLICY.ttlMs;
    expect((await cache.lookupTrace('acme', trace(1).id)).kind).toBe('miss');
    expect(cache.usage).toEqual({ entries: 0, bytes: 0 });
  });
});

describe('the in-process query cache, marks of written traces', () => {
  const QUIET = { ...POLICY, quietMs: 300 };
  const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
  const rows = (n: number) =>
    trace(n).spans.map((s) => ({ ...s, sharedAttributes: '{}', samplingWeight: 1, sizeBytes: 100 }));

  /** Looks the trace up and tries to store it: true when the cache then holds it. */
  async function stores(cache: LocalQueryCache, n: number): Promise<boolean> {
    const { id, spans } = trace(n);
    const lookup = await cache.lookupTrace('acme', id);
    if (lookup.kind === 'trace') return true;
    if (lookup.kind === 'unavailable' || lookup.stamp === undefined) throw new Error('no stamp');
    const window = { startUnixNano: spans[0].startTimeUnixNano, endUnixNano: spans[0].endTimeUnixNano };
    await cache.storeTrace('acme', id, lookup.stamp, { window, spans, updatedAt: new Date(Date.now() - 5000) });
    return (await cache.lookupTrace('acme', id)).kind === 'trace';
  }

  it('refuses to store a trace written within the quiet period, and stores it once the period is over', async () => {
    const cache = new LocalQueryCache({ policy: QUIET, maxBytes: 1 << 20 });
    cache.noteWritten('acme', rows(1));
    expect(await stores(cache, 1)).toBe(false);
    expect(await stores(cache, 2)).toBe(true); // other traces are not affected
    await sleep(350);
    cache.noteWritten('acme', rows(3)); // a later write expires the old marks
    expect(await stores(cache, 1)).toBe(true);
  });

  it('keeps the newest mark of a trace written again when its first mark expires', async () => {
    const cache = new LocalQueryCache({ policy: { ...POLICY, quietMs: 300 }, maxBytes: 1 << 20 });
    cache.noteWritten('acme', rows(1));
    await sleep(200);
    cache.noteWritten('acme', rows(1)); // marked again: refused until ≥ 500 ms
    await sleep(150); // the first mark (until 300 ms) has expired
    cache.noteWritten('acme', rows(2)); // expires the first mark's entry
    expect(await stores(cache, 1)).toBe(false);
  });

  it('expires thousands of marks without losing the live ones', async () => {
    const cache = new LocalQueryCache({ policy: { ...POLICY, quietMs: 400 }, maxBytes: 1 << 20 });
    const early = Array.from({ length: 10_000 }, (_, n) => rows(n).slice(0, 1));
    const late = Array.from({ length: 10_000 }, (_, n) => rows(10_000 + n).slice(0, 1));
    for (const written of early) cache.noteWritten('acme', written);
    await sleep(450);
    for (const written of late) cache.noteWritten('acme', written);
    expect(await stores(cache, 5)).toBe(true);
    expect(await stores(cache, 15_000)).toBe(false);
  });
});
