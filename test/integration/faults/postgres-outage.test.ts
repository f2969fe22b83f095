/**
 * Fault catalog rows 7 and 9 (reference/reliability.md), scaled to a test: PostgreSQL is stopped
 * in the middle of steady ingest — once with an immediate (crash-like) shutdown, once with a fast
 * one — and started again a few seconds later, while the same tracehouse keeps running.
 *
 * Clients behave like OTLP exporters (resend the same body after Retry-After), so at the end every
 * request has been acknowledged, and every acknowledged span must be in PostgreSQL exactly once.
 * The database is a private embedded PostgreSQL: the shared test server is never stopped.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate } from '../../../server/storage/migrate.js';
import { OtlpLoad, readyStatus, waitUntil } from '../../helpers/otlp-load.js';
import { startPrivatePostgres, type PrivatePostgres } from '../../helpers/private-postgres.js';
import { counterValue, startTestServer, type TestServer } from '../../helpers/server.js';
import { compareAcknowledged, readStoredSpans } from '../../helpers/stored-spans.js';

const OUTAGE_MS = 3000;
const STORAGE_BACKOFF_MS = 200;

let postgres: PrivatePostgres | undefined;
let server: TestServer | undefined;
const loads: OtlpLoad[] = [];

beforeAll(async () => {
  postgres = await startPrivatePostgres();
  await migrate(postgres.connectionString);
  server = await startTestServer(
    postgres.connectionString,
    {
      batch: { storageBackoffMs: STORAGE_BACKOFF_MS },
      storage: { connectTimeoutMs: 1000, statementTimeoutMs: 5000 },
    },
    { listen: true },
  );
});

afterAll(async () => {
  for (const load of loads) load.stop();
  await Promise.all(loads.map((load) => load.settled(20_000).catch(() => undefined)));
  if (postgres && !postgres.running) await postgres.start().catch(() => undefined);
  await server?.close();
  await postgres?.destroy();
});

describe.each([{ stop: 'immediate' as const }, { stop: 'fast' as const }])(
  'PostgreSQL $stop shutdown mid-ingest',
  ({ stop }) => {
    it('answers 503 with Retry-After (never 500), resumes by itself after the restart, and loses no acknowledged span', async () => {
      const url = server!.url;
      const metrics = server!.metrics;
      expect(await readyStatus(url)).toBe(200);
      const before = await spanCounters();
      const errorsBefore = await storageErrors();
      const load = new OtlpLoad({
        url: `${url}/v1/traces`,
        concurrency: 8,
        spansPerRequest: 50,
        pauseMs: 10,
        maxRequests: 4000,
      });
      loads.push(load);
      load.start();

      await waitUntil(() => load.acknowledgedSince(0) >= 40, 15_000, 'acknowledged requests before the outage');
      const stoppedAt = Date.now();
      await postgres!.stop({ immediate: stop === 'immediate' });
      const stopDoneAt = Date.now();
      await waitUntil(async () => (await readyStatus(url)) === 503, 5000, '/ready to turn 503');
      await waitUntil(() => load.countSince(503, stoppedAt) >= 4, 5000, 'ingest requests refused with 503');
      // Requests that overlapped the shutdown (an instant alone can fall between two requests on a busy box).
      const inFlightAtStop = load.requests.filter((r) =>
        r.attempts.some((a) => a.startedAt <= stopDoneAt && a.finishedAt >= stoppedAt),
      );
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, OUTAGE_MS - (Date.now() - stoppedAt))));
      const readyWhileDown = await readyStatus(url);

      await postgres!.start();
      const restartedAt = Date.now();
      await waitUntil(async () => (await readyStatus(url)) === 200, 15_000, '/ready to turn 200 again');
      await waitUntil(() => load.acknowledgedSince(restartedAt) >= 20, 15_000, 'acknowledgements after the restart');
      const recoveryMs =
        Math.min(...load.requests.map((r) => r.acknowledgedAt ?? Infinity).filter((t) => t >= restartedAt)) -
        restartedAt;
      load.stopNew();
      await load.settled(30_000);

      const attempts = load.attempts;
      const statuses = new Map<number, number>();
      for (const attempt of attempts) statuses.set(attempt.status, (statuses.get(attempt.status) ?? 0) + 1);
      const refusedDuringOutage = attempts.filter(
        (a) => a.status === 503 && a.startedAt >= stoppedAt && a.startedAt < restartedAt,
      );
      const stored = await readStoredSpans(postgres!.connectionString);
      const after = await spanCounters();
      const errorsAfter = await storageErrors();
      const diff = compareAcknowledged(load.acknowledgedKeys(), stored);
      console.info(
        `[${stop}] requests=${load.requests.length} attempts=${attempts.length} statuses=${JSON.stringify(Object.fromEntries(statuses))} ` +
          `inFlightAtStop=${inFlightAtStop.length} refusedDuringOutage=${refusedDuringOutage.length} ` +
          `ackedSpans=${diff.acknowledged} storedSpans=${stored.counts.size} firstAckAfterRestartMs=${recoveryMs}`,
      );

      // Only 200 and 503 ever: no 500, no connection errors (PostgreSQL is down, tracehouse is not).
      expect([...statuses.keys()].sort()).toEqual([200, 503]);
      for (const attempt of attempts.filter((a) => a.status === 503)) {
        expect(attempt.retryAfter, 'every 503 carries Retry-After').toMatch(/^[12]$/);
      }
      expect(inFlightAtStop.length, 'requests in flight when PostgreSQL stopped').toBeGreaterThan(0);
      expect(refusedDuringOutage.length).toBeGreaterThan(0);
      expect(readyWhileDown).toBe(503);
      expect(attempts.some((a) => a.status === 200 && a.startedAt >= restartedAt)).toBe(true);

      // Every request was eventually acknowledged, and every acknowledged span is stored exactly once.
      expect(load.requests.filter((r) => r.acknowledgedAt === undefined)).toEqual([]);
      expect(diff.missing).toEqual([]);
      expect(diff.duplicated).toEqual([]);
      expect(diff.acknowledged).toBe(load.requests.length * 50);
      expect(stored.summaryMismatches).toEqual([]);

      // The failures were seen as storage failures, every one classified as transient, and the
      // counters agree with the clients: accepted = acknowledged, received = accepted + refused.
      expect(errorsAfter.retryable - errorsBefore.retryable).toBeGreaterThan(0);
      expect(errorsAfter.other - errorsBefore.other).toBe(0);
      expect(errorsAfter.data - errorsBefore.data).toBe(0);
      expect(after.accepted - before.accepted).toBe(diff.acknowledged);
      expect(after.received - before.received).toBe(
        after.accepted - before.accepted + (after.refused - before.refused) + (after.rejected - before.rejected),
      );

      async function spanCounters(): Promise<Record<'received' | 'accepted' | 'refused' | 'rejected', number>> {
        return {
          received: await counterValue(metrics, 'tracehouse_spans_received_total'),
          accepted: await counterValue(metrics, 'tracehouse_spans_accepted_total'),
          refused: await counterValue(metrics, 'tracehouse_spans_refused_total'),
          rejected: await counterValue(metrics, 'tracehouse_spans_rejected_total'),
        };
      }
      async function storageErrors(): Promise<Record<'retryable' | 'other' | 'data', number>> {
        return {
          retryable: await counterValue(metrics, 'tracehouse_storage_errors_total', { kind: 'retryable' }),
          other: await counterValue(metrics, 'tracehouse_storage_errors_total', { kind: 'other' }),
          data: await counterValue(metrics, 'tracehouse_storage_errors_total', { kind: 'data' }),
        };
      }
    });
  },
);
