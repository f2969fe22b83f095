/**
 * Reliability catalog rows 13 and 14 for the rate limiter: a Redis that accepts connections but
 * never answers the script (slow), and one that is not there at all. Each decision must come back
 * within about the command timeout, on the local share, and stopping must leave no socket or timer.
 */
import net from 'node:net';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RateLimiter } from '../../../server/cache/rate-limiter.js';
import { RedisClient } from '../../../server/cache/redis-client.js';
import { loadConfig } from '../../../server/config.js';
import { createMetrics } from '../../../server/ops/metrics.js';
import { freePort } from '../../helpers/private-postgres.js';
import { counterValue } from '../../helpers/server.js';

const log = pino({ level: 'silent' });
const COMMAND_TIMEOUT_MS = 50;

/** Speaks just enough RESP for ioredis to become ready, then never answers EVAL / EVALSHA. */
async function startSilentRedis(): Promise<{ url: string; scripts: () => number; close(): Promise<void> }> {
  let scripts = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    let buffered = '';
    socket.on('data', (chunk) => {
      buffered += chunk.toString('latin1');
      for (;;) {
        const command = takeCommand(buffered);
        if (!command) return;
        buffered = buffered.slice(command.length);
        const name = command.args[0]?.toUpperCase();
        if (name === 'EVALSHA' || name === 'EVAL') scripts += 1;
        else if (name === 'INFO') socket.write(bulk('# Server\r\nredis_version:7.0.0\r\nloading:0\r\n'));
        else socket.write('+OK\r\n');
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `redis://127.0.0.1:${port}`,
    scripts: () => scripts,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

function bulk(text: string): string {
  return `$${Buffer.byteLength(text, 'latin1')}\r\n${text}\r\n`;
}

/** One RESP array of bulk strings from the front of `input`, or undefined when incomplete. */
function takeCommand(input: string): { args: string[]; length: number } | undefined {
  if (!input.startsWith('*')) return undefined;
  let offset = input.indexOf('\r\n');
  if (offset < 0) return undefined;
  const count = Number(input.slice(1, offset));
  offset += 2;
  const args: string[] = [];
  for (let i = 0; i < count; i++) {
    const end = input.indexOf('\r\n', offset);
    if (end < 0) return undefined;
    const size = Number(input.slice(offset + 1, end));
    if (input.length < end + 2 + size + 2) return undefined;
    args.push(input.slice(end + 2, end + 2 + size));
    offset = end + 2 + size + 2;
  }
  return { args, length: offset };
}

function limiterWith(redis: RedisClient) {
  const config = loadConfig({}, { limits: { overrides: { acme: { spansPerS: 100, burstSpans: 200 } }, instances: 2 } });
  const metrics = createMetrics(new Registry());
  return { limiter: new RateLimiter({ limits: config.limits, keyPrefix: 'th-test:', metrics, redis }), metrics };
}

function openHandles(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const kind of process.getActiveResourcesInfo()) counts[kind] = (counts[kind] ?? 0) + 1;
  return counts;
}

describe('a slow Redis', () => {
  let silent: Awaited<ReturnType<typeof startSilentRedis>>;
  beforeAll(async () => {
    silent = await startSilentRedis();
  });
  afterAll(async () => {
    await silent?.close();
  });

  it('costs one command timeout, then the breaker keeps decisions local for a second', async () => {
    const redis = new RedisClient({ url: silent.url, commandTimeoutMs: COMMAND_TIMEOUT_MS, log });
    await redis.start();
    expect(redis.available).toBe(true);
    const { limiter, metrics } = limiterWith(redis);
    try {
      const first = Date.now();
      expect(await limiter.take('acme', { spans: 10, bytes: 0 })).toEqual({ allowed: true });
      expect(Date.now() - first).toBeLessThan(COMMAND_TIMEOUT_MS + 950); // bounded by the timeout, not by Redis
      expect(redis.available).toBe(false);
      const startedAt = Date.now();
      for (let i = 0; i < 50; i++) await limiter.take('acme', { spans: 1, bytes: 0 });
      expect(Date.now() - startedAt).toBeLessThan(COMMAND_TIMEOUT_MS * 5); // 50 decisions, no timeout among them
      expect(silent.scripts()).toBe(1);
      expect(await counterValue(metrics, 'tracehouse_rate_limit_fallback_total')).toBe(51);
      // the local share is 100 spans of burst: 60 taken, so 50 more are refused
      expect(await limiter.take('acme', { spans: 50, bytes: 0 })).toMatchObject({ allowed: false, exceeded: 'spans' });
    } finally {
      await redis.stop();
    }
  });
});

describe('no Redis at all', () => {
  it('decides locally at once, and stopping leaves no socket or timer behind', async () => {
    const before = openHandles();
    const redis = new RedisClient({
      url: `redis://127.0.0.1:${await freePort()}`,
      commandTimeoutMs: COMMAND_TIMEOUT_MS,
      log,
    });
    await redis.start();
    const { limiter, metrics } = limiterWith(redis);
    const startedAt = Date.now();
    expect(await limiter.take('acme', { spans: 100, bytes: 0 })).toEqual({ allowed: true });
    expect(await limiter.take('acme', { spans: 1, bytes: 0 })).toMatchObject({ allowed: false });
    expect(Date.now() - startedAt).toBeLessThan(COMMAND_TIMEOUT_MS * 5); // no connect or command wait
    expect(await counterValue(metrics, 'tracehouse_rate_limit_fallback_total')).toBe(2);
    await new Promise((resolve) => setTimeout(resolve, 300)); // let a reconnect attempt be scheduled
    await redis.stop();
    const after = openHandles();
    for (const kind of ['Timeout', 'TCPSocketWrap', 'TCPWRAP', 'ConnectWrap']) {
      expect(after[kind] ?? 0, kind).toBeLessThanOrEqual(before[kind] ?? 0);
    }
  });
});
