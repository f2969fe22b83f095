import { describe, expect, it } from 'vitest';
import { BoundedLru } from '../../../server/cache/query-cache-lru.js';

describe('BoundedLru', () => {
  it('evicts the least recently used entry past maxEntries; a read counts as a use', () => {
    const lru = new BoundedLru<number>({ maxEntries: 2, maxBytes: 1000 });
    lru.set('a', 1, 10, 60_000);
    lru.set('b', 2, 10, 60_000);
    expect(lru.get('a')).toBe(1);
    lru.set('c', 3, 10, 60_000);
    expect(lru.get('b')).toBeUndefined();
    expect(lru.get('a')).toBe(1);
    expect(lru.get('c')).toBe(3);
    expect(lru.size).toBe(2);
  });

  it('keeps its byte total within maxBytes and never keeps a value bigger than that', () => {
    const lru = new BoundedLru<string>({ maxEntries: 1000, maxBytes: 100 });
    for (let i = 0; i < 50; i++) {
      lru.set(`k${i}`, 'v', 30, 60_000);
      expect(lru.bytes).toBeLessThanOrEqual(100);
    }
    expect(lru.size).toBe(3);
    expect(lru.get('k49')).toBe('v');
    lru.set('huge', 'v', 101, 60_000);
    expect(lru.get('huge')).toBeUndefined();
    expect(lru.get('k49')).toBe('v');
  });

  it('expires entries after their ttl and accounts for replaced and deleted ones', () => {
    let now = 1000;
    const lru = new BoundedLru<string>({ maxEntries: 10, maxBytes: 1000 }, () => now);
    lru.set('a', 'x', 40, 500);
    lru.set('a', 'y', 60, 500);
    expect(lru.bytes).toBe(60);
    now += 499;
    expect(lru.get('a')).toBe('y');
    now += 1;
    expect(lru.get('a')).toBeUndefined();
    expect(lru.bytes).toBe(0);
    lru.set('b', 'x', 10, 500);
    lru.delete('b');
    lru.delete('missing');
    expect(lru.bytes).toBe(0);
    expect(lru.size).toBe(0);
  });
});
