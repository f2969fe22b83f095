import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { BatchFailure, Batcher } from '../../../server/batch/batcher.js';
import { DEFAULTS, type BatchConfig } from '../../../server/config.js';
import type { SpanRow } from '../../../server/decode/types.js';
import { createMetrics } from '../../../server/ops/metrics.js';
import type { SpanBatch, SpanWriter, WriteOutcome } from '../../../server/storage/types.js';

/**
 * The batcher's queue logic against an in-memory SpanWriter whose commits the test releases by
 * hand. (The real writer is covered against PostgreSQL in test/integration.)
 */
class ManualWriter implements SpanWriter {
  calls: Array<{ batches: readonly SpanBatch[]; settle: (err?: unknown, duplicates?: number) => void }> = [];

  write(batches: readonly SpanBatch[]): Promise<WriteOutcome> {
    return new Promise((resolve, reject) => {
      const spans = batches.reduce((sum, batch) => sum + batch.rows.length, 0);
      this.calls.push({
        batches,
        settle: (err, duplicates = 0) =>
          err ? reject(err) : resolve({ inserted: spans - duplicates, duplicates, path: 'copy' }),
      });
    });
  }
}

function rows(count: number, sizeBytes = 100): SpanRow[] {
  return Array.from({ length: count }, () => ({ sizeBytes }) as SpanRow);
}

const log = pino({ level: 'silent' });
const batchers: Batcher[] = [];

function makeBatcher(
  writer: SpanWriter,
  overrides: Partial<BatchConfig> = {},
): { batcher: Batcher; registry: Registry } {
  const registry = new Registry();
  const batcher = new Batcher(
    writer,
    { ...DEFAULTS.batch, flushIntervalMs: 0, ...overrides },
    createMetrics(registry),
    log,
  );
  batchers.push(batcher);
  return { batcher, registry };
}

const tick = (ms = 5): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

afterEach(async () => {
  await Promise.all(batchers.splice(0).map((batcher) => batcher.stop(10)));
});

describe('Batcher', () => {
  it('resolves an offer only after the write holding it commits', async () => {
    const writer = new ManualWriter();
    const { batcher } = makeBatcher(writer);
    const admission = batcher.offer({ tenant: 't', rows: rows(3) });
    expect(admission.accepted).toBe(true);
    if (!admission.accepted) return;
    let settled = false;
    void admission.committed.then(() => (settled = true));
    await tick();
    expect(writer.calls).toHaveLength(1);
    expect(settled).toBe(false);
    writer.calls[0].settle();
    await expect(admission.committed).resolves.toEqual({ inserted: 3, duplicates: 0 });
  });

  it('groups concurrent offers into one commit while the writers are busy', async () => {
    const writer = new ManualWriter();
    const { batcher } = makeBatcher(writer, { writers: 1 });
    const first = batcher.offer({ tenant: 't', rows: rows(1) });
    await tick();
    const more = [2, 3, 4].map((n) => batcher.offer({ tenant: 't', rows: rows(n) }));
    await tick();
    expect(writer.calls).toHaveLength(1);
    writer.calls[0].settle();
    await tick();
    expect(writer.calls).toHaveLength(2);
    expect(writer.calls[1].batches.map((batch) => batch.rows.length)).toEqual([2, 3, 4]);
    writer.calls[1].settle();
    for (const admission of [first, ...more]) {
      if (admission.accepted) await admission.committed;
    }
  });

  it('waits up to flushIntervalMs to grow a batch, and flushes at once when maxBatchSpans is reached', async () => {
    const writer = new ManualWriter();
    const { batcher } = makeBatcher(writer, { flushIntervalMs: 50, maxBatchSpans: 10 });
    batcher.offer({ tenant: 't', rows: rows(4) });
    await tick(10);
    expect(writer.calls).toHaveLength(0);
    batcher.offer({ tenant: 't', rows: rows(6) });
    await tick(1);
    expect(writer.calls).toHaveLength(1);
    batcher.offer({ tenant: 't', rows: rows(1) });
    await tick(80);
    expect(writer.calls).toHaveLength(2);
    writer.calls.forEach((call) => call.settle());
  });

  it('refuses with TH_ERR_BATCH_QUEUE_FULL while uncommitted spans would exceed the limit, and admits again after commit', async () => {
    const writer = new ManualWriter();
    const { batcher } = makeBatcher(writer, { maxQueueSpans: 10, maxBatchSpans: 10, writers: 1 });
    const first = batcher.offer({ tenant: 't', rows: rows(8) });
    expect(first.accepted).toBe(true);
    await tick();
    // In flight still counts: admission follows commit progress, not decode speed.
    expect(batcher.offer({ tenant: 't', rows: rows(3) })).toEqual({ accepted: false, code: 'TH_ERR_BATCH_QUEUE_FULL' });
    // 2 spans of room, and requests here have been 3-8 spans: the next one would be refused too.
    expect(batcher.saturated).toBe(true);
    writer.calls[0].settle();
    if (first.accepted) await first.committed;
    expect(batcher.depth.spans).toBe(0);
    expect(batcher.offer({ tenant: 't', rows: rows(3) }).accepted).toBe(true);
    await tick();
    writer.calls[1].settle();
  });

  it('reports saturated once the room left is smaller than a typical request, so transports refuse before reading', async () => {
    const writer = new ManualWriter();
    const { batcher } = makeBatcher(writer, { maxQueueSpans: 2048, maxBatchSpans: 2048, writers: 1 });
    const admitted = [0, 1, 2].map(() => batcher.offer({ tenant: 't', rows: rows(512) }));
    expect(admitted.every((a) => a.accepted)).toBe(true);
    // 512 spans of room: one more 512-span request fits, so not saturated yet.
    expect(batcher.saturated).toBe(false);
    expect(batcher.offer({ tenant: 't', rows: rows(500) }).accepted).toBe(true);
    // 36 spans of room: any request of the usual size would be refused after decoding.
    expect(batcher.depth.spans).toBe(2036);
    expect(batcher.saturated).toBe(true);
    for (let settled = 0; batcher.depth.spans > 0 && settled < 10; settled++) {
      await tick();
      writer.calls[settled]?.settle();
    }
    await tick();
    expect(batcher.depth.spans).toBe(0);
    expect(batcher.saturated).toBe(false);
  });

  it('refuses by bytes as well as by spans', async () => {
    const writer = new ManualWriter();
    const { batcher } = makeBatcher(writer, { maxQueueBytes: 1000 });
    expect(batcher.offer({ tenant: 't', rows: rows(5, 150) }).accepted).toBe(true);
    expect(batcher.offer({ tenant: 't', rows: rows(2, 150) })).toEqual({
      accepted: false,
      code: 'TH_ERR_BATCH_QUEUE_FULL',
    });
    await tick();
    writer.calls.forEach((call) => call.settle());
  });

  it('fails every request of a batch with TH_ERR_STORAGE_UNAVAILABLE on a connection error, then refuses fast during the backoff', async () => {
    const writer = new ManualWriter();
    const { batcher } = makeBatcher(writer, { storageBackoffMs: 50, writers: 1 });
    const a = batcher.offer({ tenant: 't', rows: rows(1) });
    await tick();
    const b = batcher.offer({ tenant: 't', rows: rows(1) });
    writer.calls[0].settle(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }));
    if (!a.accepted || !b.accepted) throw new Error('expected admission');
    const failure = await a.committed.catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(BatchFailure);
    expect((failure as BatchFailure).code).toBe('TH_ERR_STORAGE_UNAVAILABLE');
    expect(batcher.offer({ tenant: 't', rows: rows(1) })).toEqual({
      accepted: false,
      code: 'TH_ERR_STORAGE_UNAVAILABLE',
    });
    await tick();
    writer.calls[1].settle();
    await b.committed;
    await tick(60);
    expect(batcher.storageBackingOff).toBe(false);
    expect(batcher.offer({ tenant: 't', rows: rows(1) }).accepted).toBe(true);
    await tick();
    writer.calls[2].settle();
  });

  it('isolates a request PostgreSQL refuses as data so the others in its batch still commit', async () => {
    const writer = new ManualWriter();
    const { batcher } = makeBatcher(writer, { writers: 1, flushIntervalMs: 20 });
    const good = batcher.offer({ tenant: 't', rows: rows(2) });
    const bad = batcher.offer({ tenant: 't', rows: rows(3) });
    await tick(30);
    writer.calls[0].settle(Object.assign(new Error('invalid input syntax'), { code: '22P02' }));
    await tick();
    writer.calls[1].settle();
    await tick();
    writer.calls[2].settle(Object.assign(new Error('invalid input syntax'), { code: '22P02' }));
    if (!good.accepted || !bad.accepted) throw new Error('expected admission');
    await expect(good.committed).resolves.toEqual({ inserted: 2, duplicates: 0 });
    await expect(bad.committed).rejects.toMatchObject({ code: 'TH_ERR_STORAGE_REJECTED_DATA' });
  });

  it('retries a deadlock victim instead of failing the requests', async () => {
    const writer = new ManualWriter();
    const { batcher } = makeBatcher(writer);
    const admission = batcher.offer({ tenant: 't', rows: rows(2) });
    await tick();
    writer.calls[0].settle(Object.assign(new Error('deadlock detected'), { code: '40P01' }));
    await tick();
    writer.calls[1].settle();
    if (admission.accepted) await expect(admission.committed).resolves.toEqual({ inserted: 2, duplicates: 0 });
  });

  it('on stop refuses new offers, commits what was admitted, and returns the same promise twice', async () => {
    const writer = new ManualWriter();
    const { batcher } = makeBatcher(writer, { flushIntervalMs: 10_000 });
    const admitted = batcher.offer({ tenant: 't', rows: rows(5) });
    const stopping = batcher.stop(1000);
    expect(batcher.stop(1000)).toBe(stopping);
    expect(batcher.offer({ tenant: 't', rows: rows(1) })).toEqual({
      accepted: false,
      code: 'TH_ERR_BATCH_SHUTTING_DOWN',
    });
    await tick();
    expect(writer.calls).toHaveLength(1);
    writer.calls[0].settle();
    await stopping;
    if (admitted.accepted) await expect(admitted.committed).resolves.toEqual({ inserted: 5, duplicates: 0 });
  });

  it('fails what it could not commit by the drain deadline with a retryable code, never as success', async () => {
    const writer = new ManualWriter();
    const { batcher } = makeBatcher(writer, { writers: 1 });
    const inFlight = batcher.offer({ tenant: 't', rows: rows(1) });
    await tick();
    const waiting = batcher.offer({ tenant: 't', rows: rows(1) });
    await batcher.stop(20);
    if (!waiting.accepted || !inFlight.accepted) throw new Error('expected admission');
    await expect(waiting.committed).rejects.toMatchObject({ code: 'TH_ERR_BATCH_SHUTTING_DOWN' });
    writer.calls[0].settle();
    await inFlight.committed;
  });

  it('reports duplicates from the write result to the requests that shared it', async () => {
    const writer = new ManualWriter();
    const { batcher, registry } = makeBatcher(writer, { flushIntervalMs: 20 });
    const a = batcher.offer({ tenant: 't', rows: rows(2) });
    const b = batcher.offer({ tenant: 't', rows: rows(2) });
    await tick(30);
    writer.calls[0].settle(undefined, 3);
    if (!a.accepted || !b.accepted) throw new Error('expected admission');
    const results = await Promise.all([a.committed, b.committed]);
    expect(results.reduce((sum, r) => sum + r.duplicates, 0)).toBe(3);
    expect(await registry.getSingleMetricAsString('tracehouse_batch_spans')).toContain(
      'tracehouse_batch_spans_count 1',
    );
  });
});
