/**
 * Open-loop OTLP/HTTP load at a fixed request rate, for "p99 latency at 70 % of the sustained
 * maximum". autocannon's rate limit is a per-second quota that each connection spends as fast as it
 * can, so its load arrives in bursts at full speed at the top of every second; here requests leave
 * evenly spaced (one every 1000/rate ms, on schedule even when earlier ones are still waiting), and
 * latency is measured from the scheduled send time, so a stalled server cannot hide its backlog
 * (no coordinated omission). At most maxInFlight requests are outstanding; a request that would
 * exceed it is counted as skipped, not queued.
 */
import http from 'node:http';
import type { BodySource } from './http-load.js';
import type { Ledger } from './ledger.js';

export interface PacedLoadOptions {
  url: string;
  requestsPerS: number;
  seconds: number;
  maxInFlight: number;
  timeoutMs?: number;
}

export interface PacedLoadRun {
  startedAt: number;
  endedAt: number;
  skipped: number;
}

export async function runPacedLoad(
  source: BodySource,
  ledger: Ledger,
  options: PacedLoadOptions,
): Promise<PacedLoadRun> {
  const target = new URL('/v1/traces', options.url);
  const agent = new http.Agent({ keepAlive: true, maxSockets: options.maxInFlight });
  const intervalMs = 1000 / options.requestsPerS;
  const startedAt = performance.now();
  const endAt = startedAt + options.seconds * 1000;
  let inFlight = 0;
  let skipped = 0;
  let sentCount = 0;
  const pending = new Set<Promise<void>>();

  const send = (scheduledAt: number): void => {
    const item = source.next();
    if (item === undefined) return;
    inFlight++;
    ledger.sent(item.r, item.body.length, scheduledAt);
    const done = new Promise<void>((resolve) => {
      const req = http.request(
        target,
        {
          method: 'POST',
          agent,
          headers: { ...source.headers, 'content-length': String(item.body.length) },
          timeout: options.timeoutMs ?? 30_000,
        },
        (res) => {
          let body = '';
          res.setEncoding('latin1');
          res.on('data', (chunk: string) => (body += chunk));
          res.on('end', () => {
            const status = res.statusCode ?? 0;
            const partial =
              status === 200 && body.length > 0 && (source.encoding !== 'json' || body.includes('rejected'));
            ledger.answered(item.r, status, partial);
            resolve();
          });
          res.on('error', () => resolve());
        },
      );
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', () => resolve()); // stays "sent, no answer" in the ledger
      req.end(item.body);
    }).finally(() => {
      inFlight--;
      pending.delete(done);
    });
    pending.add(done);
  };

  await new Promise<void>((resolve) => {
    const tick = (): void => {
      const now = performance.now();
      // Every send that is due by now, each stamped with its own scheduled time.
      while (sentCount * intervalMs + startedAt <= now && sentCount * intervalMs + startedAt < endAt) {
        const scheduledAt = startedAt + sentCount * intervalMs;
        sentCount++;
        if (inFlight >= options.maxInFlight) skipped++;
        else send(scheduledAt);
      }
      if (now >= endAt) return resolve();
      setTimeout(tick, Math.max(0, Math.min(intervalMs, startedAt + sentCount * intervalMs - now)));
    };
    tick();
  });
  await Promise.race([Promise.all(pending), new Promise((resolve) => setTimeout(resolve, 15_000))]);
  agent.destroy();
  return { startedAt, endedAt: endAt, skipped };
}
