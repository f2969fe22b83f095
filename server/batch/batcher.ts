/**
 * Bounded queue + group commit. Requests offer their span batches; admitted ones wait until the
 * transaction holding them commits, so "200" always means "committed" (DESIGN decision 1).
 *
 * Why it holds state: many concurrent requests must share one transaction (a commit costs a WAL
 * flush; one per request would cap throughput at a few thousand requests/s), and admission must
 * follow commit progress, not just decode speed: the queue limit counts every span that is admitted
 * and NOT YET COMMITTED (waiting or in flight), so when PostgreSQL slows down, new requests get a
 * fast 503 instead of piling up in memory.
 *
 * States: open → draining (stop() called: offers refused, everything queued is flushed at once)
 * → stopped. While PostgreSQL is failing, offers are refused for `storageBackoffMs` after each
 * failed write; the first offer after that probes it again, so ingest resumes by itself.
 *
 * Trade-off: a batch waits at most `flushIntervalMs` to grow (latency) unless it already holds
 * `maxBatchSpans` (throughput). Up to `writers` transactions run at once.
 */
import type { Logger } from 'pino';
import type { BatchConfig } from '../config.js';
import type { ErrorCode } from '../errors.js';
import type { Metrics } from '../ops/metrics.js';
import type { SpanBatch, SpanWriter, WriteResult } from '../storage/types.js';
import { isDataError, isRetryableStorageError } from '../storage/retryable.js';

export type RefusalCode = 'TH_ERR_BATCH_QUEUE_FULL' | 'TH_ERR_BATCH_SHUTTING_DOWN' | 'TH_ERR_STORAGE_UNAVAILABLE';

/** The answer to offer(): admitted (with the commit to wait for) or refused with a retryable code. */
export type Admission = { accepted: true; committed: Promise<WriteResult> } | { accepted: false; code: RefusalCode };

/** How a committed promise rejects: the code says what the client is told. */
export class BatchFailure extends Error {
  constructor(
    readonly code: Extract<
      ErrorCode,
      'TH_ERR_STORAGE_UNAVAILABLE' | 'TH_ERR_STORAGE_REJECTED_DATA' | 'TH_ERR_BATCH_SHUTTING_DOWN'
    >,
    message: string,
  ) {
    super(message);
  }
}

interface Entry {
  batch: SpanBatch;
  spans: number;
  bytes: number;
  enqueuedAt: number;
  resolve: (result: WriteResult) => void;
  reject: (err: BatchFailure) => void;
}

const MAX_CONFLICT_RETRIES = 2;

export class Batcher {
  readonly #writer: SpanWriter;
  readonly #config: BatchConfig;
  readonly #metrics: Metrics;
  readonly #log: Logger;
  #waiting: Entry[] = [];
  #pendingSpans = 0; // waiting + in flight
  #pendingBytes = 0;
  #inFlight = 0;
  /** Moving averages of the requests offered lately: the headroom the next one will likely need. */
  #typicalSpans = 0;
  #typicalBytes = 0;
  #timer: NodeJS.Timeout | undefined;
  #storageRetryAt = 0;
  #state: 'open' | 'draining' | 'stopped' = 'open';
  #idle: (() => void) | undefined;
  #stopping: Promise<void> | undefined;

  constructor(writer: SpanWriter, config: BatchConfig, metrics: Metrics, log: Logger) {
    this.#writer = writer;
    this.#config = config;
    this.#metrics = metrics;
    this.#log = log;
    metrics.queueCapacitySpans.set(config.maxQueueSpans);
  }

  /** Spans and bytes admitted and not yet committed. */
  get depth(): { spans: number; bytes: number } {
    return { spans: this.#pendingSpans, bytes: this.#pendingBytes };
  }

  /**
   * True when a new request would most likely be refused: used before decoding and by /ready.
   * "Likely" uses the typical size of recent offers, not one span: exporters send 512-span batches,
   * so a queue with 500 spans of room left would refuse every one of them only after reading and
   * decoding it (the fault suite's overload scenario measured goodput collapsing to 30 % that way).
   */
  get saturated(): boolean {
    if (this.#state !== 'open') return true;
    if (this.#pendingSpans === 0) return false; // an empty queue admits any request (see offer)
    return (
      this.#pendingSpans + Math.max(1, this.#typicalSpans) > this.#config.maxQueueSpans ||
      this.#pendingBytes + Math.max(1, this.#typicalBytes) > this.#config.maxQueueBytes
    );
  }

  /** True while PostgreSQL writes are failing and offers are refused. */
  get storageBackingOff(): boolean {
    return Date.now() < this.#storageRetryAt;
  }

  offer(batch: SpanBatch): Admission {
    if (this.#state !== 'open') return { accepted: false, code: 'TH_ERR_BATCH_SHUTTING_DOWN' };
    if (this.storageBackingOff) return { accepted: false, code: 'TH_ERR_STORAGE_UNAVAILABLE' };
    const spans = batch.rows.length;
    let bytes = 0;
    for (const row of batch.rows) bytes += row.sizeBytes;
    const first = this.#typicalSpans === 0;
    this.#typicalSpans = first ? spans : this.#typicalSpans + (spans - this.#typicalSpans) / 8;
    this.#typicalBytes = first ? bytes : this.#typicalBytes + (bytes - this.#typicalBytes) / 8;
    const overSpans = this.#pendingSpans + spans > this.#config.maxQueueSpans;
    const overBytes = this.#pendingBytes + bytes > this.#config.maxQueueBytes;
    // An empty queue admits one oversized request rather than refusing it forever.
    if ((overSpans || overBytes) && this.#pendingSpans > 0) return { accepted: false, code: 'TH_ERR_BATCH_QUEUE_FULL' };

    const committed = new Promise<WriteResult>((resolve, reject) => {
      this.#waiting.push({ batch, spans, bytes, enqueuedAt: Date.now(), resolve, reject });
    });
    this.#pendingSpans += spans;
    this.#pendingBytes += bytes;
    this.#updateGauges();
    this.#schedule();
    return { accepted: true, committed };
  }

  /**
   * Refuses new offers, commits everything admitted, then resolves. Entries still waiting at the
   * deadline are failed with TH_ERR_BATCH_SHUTTING_DOWN (never acknowledged, so the client retries).
   * Idempotent: a second call returns the first call's promise.
   */
  stop(timeoutMs: number): Promise<void> {
    this.#stopping ??= this.#drain(timeoutMs);
    return this.#stopping;
  }

  async #drain(timeoutMs: number): Promise<void> {
    this.#state = 'draining';
    this.#schedule();
    if (this.#pendingSpans > 0 || this.#inFlight > 0) {
      let deadline: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((resolve) => (this.#idle = resolve)),
        new Promise<void>((resolve) => (deadline = setTimeout(resolve, timeoutMs))),
      ]);
      clearTimeout(deadline);
    }
    clearTimeout(this.#timer);
    const abandoned = this.#waiting.splice(0);
    for (const entry of abandoned) {
      this.#release(entry);
      entry.reject(new BatchFailure('TH_ERR_BATCH_SHUTTING_DOWN', 'shutdown deadline reached before commit'));
    }
    if (abandoned.length > 0) this.#log.warn({ requests: abandoned.length }, 'drain deadline reached');
    this.#state = 'stopped';
  }

  #schedule(): void {
    while (this.#waiting.length > 0 && this.#inFlight < this.#config.writers) {
      const waitedMs = Date.now() - this.#waiting[0].enqueuedAt;
      const full = this.#waitingSpans() >= this.#config.maxBatchSpans;
      if (!full && this.#state === 'open' && waitedMs < this.#config.flushIntervalMs) {
        if (this.#timer === undefined) {
          this.#timer = setTimeout(() => {
            this.#timer = undefined;
            this.#schedule();
          }, this.#config.flushIntervalMs - waitedMs);
        }
        return;
      }
      void this.#flush(this.#takeBatch());
    }
  }

  #waitingSpans(): number {
    let spans = 0;
    for (const entry of this.#waiting) {
      spans += entry.spans;
      if (spans >= this.#config.maxBatchSpans) break;
    }
    return spans;
  }

  #takeBatch(): Entry[] {
    let spans = 0;
    let count = 0;
    while (
      count < this.#waiting.length &&
      (count === 0 || spans + this.#waiting[count].spans <= this.#config.maxBatchSpans)
    ) {
      spans += this.#waiting[count].spans;
      count += 1;
    }
    return this.#waiting.splice(0, count);
  }

  async #flush(entries: Entry[]): Promise<void> {
    this.#inFlight += 1;
    try {
      await this.#writeEntries(entries);
    } finally {
      this.#inFlight -= 1;
      this.#updateGauges();
      if (this.#inFlight === 0 && this.#waiting.length === 0) this.#idle?.();
      this.#schedule();
    }
  }

  async #writeEntries(entries: Entry[]): Promise<void> {
    const spans = entries.reduce((sum, entry) => sum + entry.spans, 0);
    const startedAt = performance.now();
    for (let attempt = 0; ; attempt += 1) {
      try {
        const result = await this.#writer.write(entries.map((entry) => entry.batch));
        this.#metrics.flushDuration.observe({ outcome: 'committed' }, (performance.now() - startedAt) / 1000);
        this.#metrics.batchSpans.observe(spans);
        this.#metrics.storageWrites.inc({ path: result.path });
        this.#storageRetryAt = 0;
        this.#settle(entries, result);
        return;
      } catch (err) {
        const conflict = (err as { code?: string }).code === '40P01' || (err as { code?: string }).code === '40001';
        if (conflict && attempt < MAX_CONFLICT_RETRIES) continue;
        this.#metrics.flushDuration.observe({ outcome: 'failed' }, (performance.now() - startedAt) / 1000);
        await this.#fail(entries, err);
        return;
      }
    }
  }

  /** Splits one write result among the requests that shared it (duplicates are reported in total). */
  #settle(entries: Entry[], result: WriteResult): void {
    let duplicatesLeft = result.duplicates;
    for (const entry of entries) {
      const duplicates = Math.min(duplicatesLeft, entry.spans);
      duplicatesLeft -= duplicates;
      this.#release(entry);
      entry.resolve({ inserted: entry.spans - duplicates, duplicates });
    }
  }

  async #fail(entries: Entry[], err: unknown): Promise<void> {
    if (isDataError(err) && entries.length > 1) {
      // One request's rows were refused by PostgreSQL: write each request alone so the others commit.
      this.#metrics.storageErrors.inc({ kind: 'data' });
      this.#log.warn({ err, requests: entries.length }, 'batch refused by PostgreSQL, isolating requests');
      for (const entry of entries) await this.#writeEntries([entry]);
      return;
    }
    let failure: BatchFailure;
    if (isDataError(err)) {
      this.#metrics.storageErrors.inc({ kind: 'data' });
      this.#log.error(
        { err, tenant: entries[0].batch.tenant, spans: entries[0].spans },
        'request refused by PostgreSQL',
      );
      failure = new BatchFailure(
        'TH_ERR_STORAGE_REJECTED_DATA',
        `PostgreSQL refused the spans: ${(err as Error).message}`,
      );
    } else {
      const kind = isRetryableStorageError(err) ? 'retryable' : 'other';
      this.#metrics.storageErrors.inc({ kind });
      this.#storageRetryAt = Date.now() + this.#config.storageBackoffMs;
      this.#log.warn({ err, kind, requests: entries.length }, 'batch write failed; refusing for backoff');
      failure = new BatchFailure('TH_ERR_STORAGE_UNAVAILABLE', 'PostgreSQL is unavailable; nothing was stored');
    }
    for (const entry of entries) {
      this.#release(entry);
      entry.reject(failure);
    }
  }

  #release(entry: Entry): void {
    this.#pendingSpans -= entry.spans;
    this.#pendingBytes -= entry.bytes;
  }

  #updateGauges(): void {
    this.#metrics.queueSpans.set(this.#pendingSpans);
    this.#metrics.queueBytes.set(this.#pendingBytes);
  }
}
