/**
 * The canary (`tracehouse canary`): end to end proof that traces arrive, the way Tempo's vulture
 * does it. Every interval it writes one small trace through the public OTLP/HTTP endpoint (a
 * frontend server span calling a backend: three spans, two services, so the span metrics and the
 * service graph see it too), then reads every trace it wrote back through the query API
 * (`GET /api/traces/{id}`, Jaeger v1) until all of its spans are there.
 *
 *   tracehouse_canary_written_total   traces the endpoint acknowledged (200)
 *   tracehouse_canary_found_total     traces read back complete
 *   tracehouse_canary_late_total      of those, found only after lateAfterMs
 *   tracehouse_canary_missing_total   traces still incomplete after missingAfterMs (given up)
 *   tracehouse_canary_write_errors_total{status}, tracehouse_canary_read_errors_total{status}
 *   tracehouse_canary_read_latency_seconds   acknowledgement → first complete read
 *   tracehouse_canary_pending_traces  written, neither found nor given up yet
 *
 * written = found + missing + pending. A 200 means committed (DESIGN decision 1), so a trace that is
 * not readable at once is already a finding: late ones point at the query path, missing ones at
 * data loss. State: the traces waiting to be found, at most missingAfterMs / intervalMs of them.
 */
import { randomBytes } from 'node:crypto';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export interface CanaryOptions {
  /** Base URL of the OTLP/HTTP endpoint, e.g. http://tracehouse:4318 (POST {endpoint}/v1/traces). */
  endpoint: string;
  /** Base URL of the query API; default: endpoint. */
  queryEndpoint?: string;
  /** Bearer token with traces:write and traces:read. */
  token?: string;
  intervalMs: number;
  lateAfterMs: number;
  missingAfterMs: number;
  requestTimeoutMs: number;
  /** Service names the canary's spans carry. */
  serviceName: string;
}

export const CANARY_DEFAULTS = {
  intervalMs: 10_000,
  lateAfterMs: 5_000,
  missingAfterMs: 120_000,
  requestTimeoutMs: 5_000,
  serviceName: 'tracehouse-canary',
} as const;

interface PendingTrace {
  traceId: string;
  spanIds: Set<string>;
  writtenAt: number;
}

export interface CanaryMetrics {
  written: Counter;
  found: Counter;
  late: Counter;
  missing: Counter;
  writeErrors: Counter<'status'>;
  readErrors: Counter<'status'>;
  readLatency: Histogram;
}

export function createCanaryMetrics(registry: Registry, pending: () => number): CanaryMetrics {
  const registers = [registry];
  new Gauge({
    name: 'tracehouse_canary_pending_traces',
    help: 'Traces written and not yet found or given up.',
    registers,
    collect() {
      this.set(pending());
    },
  });
  return {
    written: new Counter({
      name: 'tracehouse_canary_written_total',
      help: 'Canary traces acknowledged (200) by the OTLP endpoint.',
      registers,
    }),
    found: new Counter({
      name: 'tracehouse_canary_found_total',
      help: 'Canary traces read back complete through the query API.',
      registers,
    }),
    late: new Counter({
      name: 'tracehouse_canary_late_total',
      help: 'Canary traces found, but only after the late threshold.',
      registers,
    }),
    missing: new Counter({
      name: 'tracehouse_canary_missing_total',
      help: 'Canary traces not found complete before the missing threshold (given up).',
      registers,
    }),
    writeErrors: new Counter({
      name: 'tracehouse_canary_write_errors_total',
      help: 'Canary writes not acknowledged, by HTTP status (0: no answer).',
      labelNames: ['status'],
      registers,
    }),
    readErrors: new Counter({
      name: 'tracehouse_canary_read_errors_total',
      help: 'Canary reads answered with an error other than 404, by HTTP status (0: no answer).',
      labelNames: ['status'],
      registers,
    }),
    readLatency: new Histogram({
      name: 'tracehouse_canary_read_latency_seconds',
      help: 'From the write being acknowledged to the trace being read back complete.',
      buckets: [0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60, 120],
      registers,
    }),
  };
}

/** The OTLP/JSON body of one canary trace: frontend server span → its client span → backend server span. */
export function canaryTraceBody(
  serviceName: string,
  nowMs: number,
): { body: string; traceId: string; spanIds: string[] } {
  const traceId = randomBytes(16).toString('hex');
  const [root, call, backend] = [0, 1, 2].map(() => randomBytes(8).toString('hex'));
  const ns = (offsetMs: number) => String(BigInt(nowMs + offsetMs) * 1_000_000n);
  const resource = (name: string) => ({ attributes: [{ key: 'service.name', value: { stringValue: name } }] });
  const scope = { name: 'tracehouse-canary', version: '1' };
  const span = (spanId: string, parentSpanId: string, name: string, kind: number, start: number, end: number) => ({
    traceId,
    spanId,
    parentSpanId,
    name,
    kind,
    startTimeUnixNano: ns(start),
    endTimeUnixNano: ns(end),
    attributes: [{ key: 'tracehouse.canary', value: { boolValue: true } }],
    status: { code: 1 },
  });
  const body = JSON.stringify({
    resourceSpans: [
      {
        resource: resource(`${serviceName}-frontend`),
        scopeSpans: [
          {
            scope,
            spans: [span(root, '', 'GET /canary', 2, -30, 0), span(call, root, 'GET /canary/backend', 3, -25, -5)],
          },
        ],
      },
      {
        resource: resource(`${serviceName}-backend`),
        scopeSpans: [{ scope, spans: [span(backend, call, 'GET /canary/backend', 2, -22, -8)] }],
      },
    ],
  });
  return { body, traceId, spanIds: [root, call, backend] };
}

export class Canary {
  readonly #options: CanaryOptions;
  readonly #metrics: CanaryMetrics;
  readonly #now: () => number;
  readonly #pending = new Map<string, PendingTrace>();
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #stopped = false;

  constructor(options: CanaryOptions, registry: Registry, now: () => number = Date.now) {
    this.#options = options;
    this.#now = now;
    this.#metrics = createCanaryMetrics(registry, () => this.#pending.size);
  }

  get pending(): number {
    return this.#pending.size;
  }

  /** Runs a tick now and then every intervalMs, until stop(). */
  start(): void {
    const loop = (): void => {
      if (this.#stopped) return;
      this.#running = this.tick().finally(() => {
        this.#running = undefined;
        if (!this.#stopped) this.#timer = setTimeout(loop, this.#options.intervalMs);
      });
    };
    loop();
  }

  /** Waits for the tick in progress, then stops. Idempotent. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#running;
  }

  /** One round: write a trace, then try to read every pending one. Never throws. */
  async tick(): Promise<void> {
    await this.#write();
    await this.readBack();
  }

  /** Tries to read every pending trace once; counts found, late and (past the threshold) missing. */
  async readBack(): Promise<void> {
    await this.#readPending();
  }

  async #write(): Promise<void> {
    const { body, traceId, spanIds } = canaryTraceBody(this.#options.serviceName, this.#now());
    const status = await this.#request('POST', `${this.#options.endpoint}/v1/traces`, body);
    if (status !== 200) {
      this.#metrics.writeErrors.inc({ status: String(status) });
      return;
    }
    this.#metrics.written.inc();
    this.#pending.set(traceId, { traceId, spanIds: new Set(spanIds), writtenAt: this.#now() });
  }

  async #readPending(): Promise<void> {
    const base = this.#options.queryEndpoint ?? this.#options.endpoint;
    for (const trace of [...this.#pending.values()]) {
      if (this.#stopped) return;
      const found = await this.#readTrace(`${base}/api/traces/${trace.traceId}`, trace);
      const waitedMs = this.#now() - trace.writtenAt;
      if (found) {
        this.#pending.delete(trace.traceId);
        this.#metrics.found.inc();
        this.#metrics.readLatency.observe(waitedMs / 1000);
        if (waitedMs > this.#options.lateAfterMs) this.#metrics.late.inc();
      } else if (waitedMs > this.#options.missingAfterMs) {
        this.#pending.delete(trace.traceId);
        this.#metrics.missing.inc();
      }
    }
  }

  /** True when the query API returns every span of the trace. */
  async #readTrace(url: string, trace: PendingTrace): Promise<boolean> {
    let response: Response;
    try {
      response = await fetch(url, {
        headers: this.#headers(),
        signal: AbortSignal.timeout(this.#options.requestTimeoutMs),
      });
    } catch {
      this.#metrics.readErrors.inc({ status: '0' });
      return false;
    }
    if (response.status === 404) {
      await response.arrayBuffer().catch(() => undefined);
      return false;
    }
    if (response.status !== 200) {
      await response.arrayBuffer().catch(() => undefined);
      this.#metrics.readErrors.inc({ status: String(response.status) });
      return false;
    }
    try {
      const payload = (await response.json()) as { data?: { spans?: { spanID?: string }[] }[] };
      const seen = new Set((payload.data ?? []).flatMap((t) => (t.spans ?? []).map((s) => s.spanID)));
      return [...trace.spanIds].every((id) => seen.has(id));
    } catch {
      this.#metrics.readErrors.inc({ status: 'invalid_body' });
      return false;
    }
  }

  #headers(extra: Record<string, string> = {}): Record<string, string> {
    return this.#options.token ? { ...extra, authorization: `Bearer ${this.#options.token}` } : extra;
  }

  /** The HTTP status of a request (body drained), 0 when there was no answer. */
  async #request(method: string, url: string, body: string): Promise<number> {
    try {
      const response = await fetch(url, {
        method,
        body,
        headers: this.#headers({ 'content-type': 'application/json' }),
        signal: AbortSignal.timeout(this.#options.requestTimeoutMs),
      });
      await response.arrayBuffer().catch(() => undefined);
      return response.status;
    } catch {
      return 0;
    }
  }
}
