/**
 * A bounded OTLP/HTTP load generator that behaves like an OTLP client and keeps a ledger:
 * `concurrency` loops each post protobuf requests of `spansPerRequest` fresh spans (unique random
 * ids) over node:http; on 429/502/503/504 or a connection error the loop waits (Retry-After, else
 * `retryDelayMs`) and resends the SAME body until it gets a 200. Every attempt is recorded with its
 * status and Retry-After, every request with its span keys (`<trace id hex>:<span id hex>`) and the
 * time of its 200, so a test can diff "acknowledged" against what PostgreSQL holds.
 *
 *   stopNew()  no new requests; loops keep resending the ones they hold (drain to acknowledgement)
 *   stop()     loops give up at their next step; a request in flight still records its answer
 *   settled(t) resolves when every loop has returned (or rejects after t ms)
 */
import http from 'node:http';
import { buildRequest, realisticSpans } from './otlp-fixtures.js';

export interface Attempt {
  startedAt: number;
  finishedAt: number;
  /** HTTP status, or 0 for a connection error / timeout (see `error`). */
  status: number;
  retryAfter: string | null;
  error?: string;
}

export interface SentRequest {
  spanKeys: string[];
  attempts: Attempt[];
  /** Date.now() when a 200 arrived. */
  acknowledgedAt?: number;
  /** Set when the loop stopped resending without a 200 (stop() or maxAttempts). */
  abandoned?: boolean;
}

export interface OtlpLoadOptions {
  url: string; // …/v1/traces
  concurrency: number;
  spansPerRequest: number;
  /** Pause between one request's 200 and the next request of the same loop. */
  pauseMs: number;
  /** Hard cap on requests created, over all loops. */
  maxRequests: number;
  /** Wait before resending when there is no usable Retry-After. */
  retryDelayMs?: number;
  /** Per-attempt timeout. */
  attemptTimeoutMs?: number;
  /** Attempts per request before it is abandoned. */
  maxAttempts?: number;
  /** Extra request headers, e.g. `authorization` (read at each attempt, so a token may be renewed). */
  headers?: Record<string, string>;
}

const RETRYABLE = new Set([429, 502, 503, 504]);

export function spanKey(traceId: string, spanId: string): string {
  return `${traceId.toLowerCase()}:${spanId.toLowerCase()}`;
}

export class OtlpLoad {
  readonly requests: SentRequest[] = [];
  readonly #options: Required<OtlpLoadOptions>;
  readonly #agent = new http.Agent({ keepAlive: true });
  #acceptNew = true;
  #stopped = false;
  #loops: Promise<void>[] = [];
  readonly #sleepers = new Set<() => void>();

  constructor(options: OtlpLoadOptions) {
    this.#options = { retryDelayMs: 1000, attemptTimeoutMs: 15_000, maxAttempts: 1000, headers: {}, ...options };
  }

  start(): void {
    this.grow(this.#options.concurrency);
  }

  /** Adds `clients` more loops (a growing client population). */
  grow(clients: number): void {
    for (let i = 0; i < clients; i++) this.#loops.push(this.#loop());
  }

  get clients(): number {
    return this.#loops.length;
  }

  /**
   * The next request's span keys and body: `spansPerRequest` fresh realistic spans, encoded by the
   * SDK's serializer. A subclass may produce them more cheaply (loadtests/faults/fast-load.ts).
   */
  protected nextRequest(): { spanKeys: string[]; body: Uint8Array<ArrayBuffer> } {
    const spans = realisticSpans(this.#options.spansPerRequest, { nowMs: Date.now() });
    return {
      spanKeys: spans.map((s) => spanKey(s.traceId, s.spanId)),
      body: new Uint8Array(buildRequest({ spans }).protobuf),
    };
  }

  stopNew(): void {
    this.#acceptNew = false;
  }

  stop(): void {
    this.#acceptNew = false;
    this.#stopped = true;
    for (const wake of this.#sleepers) wake();
  }

  async settled(timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`load loops still running after ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      await Promise.race([Promise.all(this.#loops), timeout]);
      this.#agent.destroy(); // every loop returned: close the idle keep-alive sockets
    } finally {
      clearTimeout(timer);
    }
  }

  get attempts(): Attempt[] {
    return this.requests.flatMap((request) => request.attempts);
  }

  acknowledgedKeys(): Set<string> {
    const keys = new Set<string>();
    for (const request of this.requests) {
      if (request.acknowledgedAt !== undefined) for (const key of request.spanKeys) keys.add(key);
    }
    return keys;
  }

  /** Requests acknowledged at or after `since`. */
  acknowledgedSince(since: number): number {
    return this.requests.filter((request) => request.acknowledgedAt !== undefined && request.acknowledgedAt >= since)
      .length;
  }

  /** Attempts that finished with `status` and started at or after `since`. */
  countSince(status: number, since: number): number {
    return this.attempts.filter((attempt) => attempt.status === status && attempt.startedAt >= since).length;
  }

  async #loop(): Promise<void> {
    while (this.#acceptNew && this.requests.length < this.#options.maxRequests) {
      const { spanKeys, body } = this.nextRequest();
      const request: SentRequest = { spanKeys, attempts: [] };
      this.requests.push(request);
      await this.#deliver(request, body);
      if (this.#acceptNew && this.#options.pauseMs > 0) await this.#sleep(this.#options.pauseMs);
    }
  }

  async #deliver(request: SentRequest, body: Uint8Array<ArrayBuffer>): Promise<void> {
    for (let n = 0; n < this.#options.maxAttempts; n++) {
      if (this.#stopped) break;
      const attempt = await this.#post(body);
      request.attempts.push(attempt);
      if (attempt.status === 200) {
        request.acknowledgedAt = attempt.finishedAt;
        return;
      }
      if (attempt.status !== 0 && !RETRYABLE.has(attempt.status)) break; // permanent: an OTLP client drops it
      const seconds = Number(attempt.retryAfter);
      await this.#sleep(
        attempt.retryAfter !== null && Number.isFinite(seconds) ? seconds * 1000 : this.#options.retryDelayMs,
      );
    }
    request.abandoned = true;
  }

  /**
   * One attempt over node:http with a keep-alive agent: the body Buffer goes to the socket as it is
   * (fetch copied and transferred every 300 KB body, which cost the flood of the overload test more
   * CPU than the server it was loading). The timeout covers the whole attempt, like an exporter's.
   */
  #post(body: Uint8Array<ArrayBuffer>): Promise<Attempt> {
    const startedAt = Date.now();
    return new Promise((resolve) => {
      let settled = false;
      const settle = (status: number, retryAfter: string | null, error?: string): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve({ startedAt, finishedAt: Date.now(), status, retryAfter, ...(error === undefined ? {} : { error }) });
      };
      const request = http.request(
        this.#options.url,
        {
          method: 'POST',
          agent: this.#agent,
          headers: {
            ...this.#options.headers,
            'content-type': 'application/x-protobuf',
            'content-length': String(body.byteLength),
          },
        },
        (response) => {
          const status = response.statusCode ?? 0;
          const retryAfter = response.headers['retry-after'] ?? null;
          response.on('error', (err: NodeJS.ErrnoException) => settle(0, null, err.code ?? err.message));
          response.on('end', () => settle(status, retryAfter));
          response.resume();
        },
      );
      const timer = setTimeout(() => {
        request.destroy();
        settle(0, null, 'timeout');
      }, this.#options.attemptTimeoutMs);
      // After a 503 sent before the body was read, the server may close while we still write: the
      // answer already settled the attempt, so that error changes nothing.
      request.on('error', (err: NodeJS.ErrnoException) => settle(0, null, err.code ?? err.message));
      request.end(body);
    });
  }

  #sleep(ms: number): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        this.#sleepers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.#sleepers.add(wake);
    });
  }
}

/** Polls `check` every `intervalMs` until it is true; throws `what` after timeoutMs. */
export async function waitUntil(
  check: () => boolean | Promise<boolean>,
  timeoutMs: number,
  what: string,
  intervalMs = 50,
): Promise<number> {
  const startedAt = Date.now();
  while (!(await check())) {
    if (Date.now() - startedAt > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
  return Date.now() - startedAt;
}

/** GET <baseUrl>/ready → status code, or 0 when the connection failed. */
export async function readyStatus(baseUrl: string): Promise<number> {
  try {
    const res = await fetch(`${baseUrl}/ready`, { signal: AbortSignal.timeout(3000) });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return 0;
  }
}
