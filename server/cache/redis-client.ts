/**
 * The one Redis connection of an instance (ioredis). Redis is a cache here, never a source of
 * truth, so it must never slow ingest down: commands time out after REDIS_COMMAND_TIMEOUT_MS,
 * nothing is queued while disconnected (enableOfflineQueue: false, so a command fails at once),
 * ioredis reconnects in the background, and callers fall back to in-process state whenever
 * `available` is false or a command fails.
 *
 * Why it holds state: a short circuit breaker. After a failure (timeout, reset) Redis is not
 * tried again for BREAKER_MS, so a slow Redis costs one timeout per second, not one per request.
 * It also counts connections (`connections` rises on every connect and reconnect), so a user can
 * tell that Redis may have lost or kept state it could not see being changed meanwhile.
 */
import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';

const BREAKER_MS = 1000;
const MAX_RECONNECT_DELAY_MS = 2000;

export interface RedisClientOptions {
  url: string;
  commandTimeoutMs: number;
  log: Pick<Logger, 'info' | 'warn'>;
  now?: () => number;
  /** What this connection serves, for its log lines (default: the shared rate limits). */
  purpose?: { name: string; fallback: string };
}

const RATE_LIMITS = { name: 'shared rate limits', fallback: 'rate limits fall back to the local share' };

export class RedisClient {
  readonly #client: Redis;
  readonly #log: RedisClientOptions['log'];
  readonly #now: () => number;
  readonly #scripts = new Map<string, string>(); // sha1 → source
  readonly #connectTimeoutMs: number;
  readonly #purpose: { name: string; fallback: string };
  #openUntil = 0;
  #connections = 0;
  #down = false;
  #stopped = false;

  constructor(options: RedisClientOptions) {
    this.#log = options.log;
    this.#now = options.now ?? Date.now;
    this.#purpose = options.purpose ?? RATE_LIMITS;
    this.#connectTimeoutMs = Math.max(1000, options.commandTimeoutMs * 10);
    this.#client = new Redis(options.url, {
      lazyConnect: true,
      enableOfflineQueue: false,
      commandTimeout: options.commandTimeoutMs,
      connectTimeout: this.#connectTimeoutMs,
      maxRetriesPerRequest: 0,
      retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), MAX_RECONNECT_DELAY_MS),
      connectionName: 'tracehouse',
    });
    this.#client.on('error', (err: Error) => this.#markDown(err));
    this.#client.on('ready', () => {
      this.#connections += 1;
      this.#markUp();
    });
  }

  /** Connects, waiting at most until the connect timeout; a Redis that is down is not an error. */
  async start(): Promise<void> {
    try {
      await this.#client.connect();
    } catch (err) {
      this.#markDown(err as Error);
    }
  }

  /** Idempotent. Ends the connection and the reconnect loop; resolves once the socket is gone. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    if (this.#client.status === 'reconnecting') {
      // Between attempts there is no socket: disconnect() clears the retry timer, and no 'end' follows.
      this.#client.disconnect();
      return;
    }
    const ended = this.#ended();
    if (this.#client.status === 'ready') await this.#client.quit().catch(() => this.#client.disconnect());
    else this.#client.disconnect();
    await ended;
  }

  /** 'end' is the last event; a connect attempt in flight may hold its socket until it fails. */
  #ended(): Promise<void> {
    if (this.#client.status === 'end') return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, this.#connectTimeoutMs + 100);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.#client.once('end', done);
    });
  }

  /** False while disconnected or while the breaker is open: callers use their fallback. */
  get available(): boolean {
    return !this.#stopped && this.#client.status === 'ready' && this.#now() >= this.#openUntil;
  }

  /** How many times the connection became ready (the first connect included). */
  get connections(): number {
    return this.#connections;
  }

  /** EVALSHA, loading the script on NOSCRIPT. Rejects on any failure (and opens the breaker). */
  async runScript(source: string, keys: readonly string[], args: ReadonlyArray<string | number>): Promise<unknown> {
    const sha = this.#shaOf(source);
    try {
      let result: unknown;
      try {
        result = await this.#client.evalsha(sha, keys.length, ...keys, ...args);
      } catch (err) {
        if (!String((err as Error).message).startsWith('NOSCRIPT')) throw err;
        result = await this.#client.eval(source, keys.length, ...keys, ...args);
      }
      this.#markUp();
      return result;
    } catch (err) {
      this.#openUntil = this.#now() + BREAKER_MS;
      this.#markDown(err as Error);
      throw err;
    }
  }

  #shaOf(source: string): string {
    for (const [sha, known] of this.#scripts) if (known === source) return sha;
    const sha = createHash('sha1').update(source).digest('hex');
    this.#scripts.set(sha, source);
    return sha;
  }

  #markUp(): void {
    this.#openUntil = 0;
    if (!this.#down) return;
    this.#down = false;
    this.#log.info(`Redis reachable again: ${this.#purpose.name} back on`);
  }

  #markDown(err: Error): void {
    if (this.#down || this.#stopped) return;
    this.#down = true;
    this.#log.warn({ err: { message: err.message } }, `Redis unavailable: ${this.#purpose.fallback}`);
  }
}
