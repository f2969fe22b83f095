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
