/**
 * The one ingest path shared by every transport: decode → sample → admit → wait for commit, with
 * every span counted exactly once as accepted, rejected, refused or sampled out. Committed spans
 * then feed the span-derived metrics. Transports only move bytes in and turn the IngestOutcome (or
 * the thrown TracehouseError) into their own answer via otlp-status.
 */
import { BatchFailure, type Batcher, type RefusalCode } from '../batch/batcher.js';
import type { RateDecision, RateLimiter } from '../cache/rate-limiter.js';
import type { Config } from '../config.js';
import { AttributeSharing, decodeExportRequest } from '../decode/index.js';
import type { DecodedRequest, TimeWindow, WireFormat } from '../decode/types.js';
import { TracehouseError } from '../errors.js';
import type { Metrics } from '../ops/metrics.js';
import type { SpanMetrics } from '../ops/span-metrics.js';
import type { QueryCacheUpdates } from '../query/query-cache.js';
import type { Sampler } from './sampler.js';

export type Transport = 'http' | 'websocket';

/**
 * A committed request: what the client is told in a 200 (partial success when rejected > 0).
 * Sampled-out spans are in neither count: they were handled, not rejected.
 */
export interface IngestOutcome {
  accepted: number;
  rejected: number;
  rejectMessage: string;
  duplicates: number;
}

export interface IngestDeps {
  config: Config;
  batcher: Batcher;
  metrics: Metrics;
  isDraining: () => boolean;
  /** Per-tenant rate limits; without one, nothing is limited. */
  limiter?: RateLimiter;
  /** Server-side sampling; without one, every span is kept. */
  sampler?: Sampler;
  /** Span-derived metrics, fed with committed spans; without one, none. */
  spanMetrics?: SpanMetrics;
  /** Told what committed, before the request is answered, so cached traces and catalogs stay current. */
  queryCache?: QueryCacheUpdates;
  now?: () => number; // ms since epoch; tests move the clock
}

const NS_PER_MS = 1_000_000n;
const MS_PER_DAY = 86_400_000;

/** The accepted start-time window: [now − retention, now + grace]. */
export function computeTimeWindow(config: Config, nowMs: number): TimeWindow {
  const min = nowMs - config.storage.retentionDays * MS_PER_DAY;
  const max = nowMs + config.storage.futureGraceMs;
  return { minStartUnixNano: BigInt(min) * NS_PER_MS, maxStartUnixNano: BigInt(max) * NS_PER_MS };
}

export class IngestPipeline {
  readonly #deps: IngestDeps;
  /** Learns which span attribute keys repeat few values, to store those once per set. */
  readonly #sharing = new AttributeSharing();

  constructor(deps: IngestDeps) {
    this.#deps = deps;
  }

  /**
   * Why a request arriving now would be refused anyway, or undefined when it may come in.
   * Transports check this before reading the body, so overload costs no decoding; such a request
   * is counted in tracehouse_requests_refused_total (its spans were never read).
   */
  refusalBeforeRead(transport: Transport): RefusalCode | undefined {
    const { batcher, metrics, isDraining } = this.#deps;
    let code: RefusalCode | undefined;
    if (isDraining()) code = 'TH_ERR_BATCH_SHUTTING_DOWN';
    else if (batcher.storageBackingOff) code = 'TH_ERR_STORAGE_UNAVAILABLE';
    else if (batcher.saturated) code = 'TH_ERR_BATCH_QUEUE_FULL';
    if (code) metrics.requestsRefused.inc({ transport, reason: refuseReason(code) });
    return code;
  }

  /**
   * A 429 known before the body is read: the tenant's rate-limit bucket is in debt, so any request
   * of it would be refused now (this instance's knowledge, no Redis round trip). Counted in
   * tracehouse_requests_refused_total{reason="rate_limited"}.
   */
  rateLimitBeforeRead(tenant: string, transport: Transport): TracehouseError | undefined {
    const blockedMs = this.#deps.limiter?.blockedForMs(tenant) ?? 0;
    if (blockedMs <= 0) return undefined;
    this.#deps.metrics.requestsRefused.inc({ transport, reason: 'rate_limited' });
    return new TracehouseError('TH_ERR_AUTH_RATE_LIMITED', `tenant ${tenant} is over its ingest rate limit`, {
      retryAfterS: this.#retryAfterS(blockedMs),
    });
  }

  /**
   * Decodes and stores one export request. Resolves only after its spans are committed. Throws a
   * TracehouseError for a bad request (400, nothing stored) or a refusal (503 / 429, nothing stored).
   * Rate limits are charged twice: the body bytes before decoding (a refusal costs no decode), the
   * spans after it; a refused request charges nothing.
   */
  async ingest(body: Buffer, format: WireFormat, tenant: string, transport: Transport): Promise<IngestOutcome> {
    const { config, batcher, metrics, limiter } = this.#deps;
    const nowMs = (this.#deps.now ?? Date.now)();
    if (limiter) {
      const decision = await limiter.take(tenant, { spans: 0, bytes: body.length });
      if (!decision.allowed) {
        metrics.requestsRefused.inc({ transport, reason: 'rate_limited' });
        throw this.#rateLimited(tenant, decision);
      }
    }
    let decoded: DecodedRequest;
    try {
      decoded = decodeExportRequest(body, format, {
        limits: config.decode,
        window: computeTimeWindow(config, nowMs),
        sharing: this.#sharing,
      });
    } catch (err) {
      if (err instanceof TracehouseError) metrics.requestsRejected.inc({ transport, code: err.code });
      throw err;
    }
    this.#countDecoded(decoded, tenant, transport);
    const rejected = decoded.spanCount - decoded.rows.length;
    const rows = this.#sample(tenant, transport, decoded.rows);
    const outcome = { accepted: rows.length, rejected, rejectMessage: decoded.rejectMessage, duplicates: 0 };
    if (rows.length === 0) return outcome;
    if (limiter) {
      const decision = await limiter.take(tenant, { spans: rows.length, bytes: 0 });
      if (!decision.allowed) {
        metrics.spansRefused.inc({ tenant, transport, reason: 'rate_limited' }, rows.length);
        throw this.#rateLimited(tenant, decision);
      }
    }

    const admission = batcher.offer({ tenant, rows });
    if (!admission.accepted) {
      metrics.spansRefused.inc({ tenant, transport, reason: refuseReason(admission.code) }, rows.length);
      throw new TracehouseError(admission.code);
    }
    try {
      const result = await admission.committed;
      this.#deps.queryCache?.noteWritten(tenant, rows);
      metrics.spansAccepted.inc({ tenant, transport }, rows.length);
      if (result.duplicates > 0) metrics.spansDuplicate.inc({ tenant }, result.duplicates);
      this.#deps.spanMetrics?.record(tenant, rows);
      return { ...outcome, duplicates: result.duplicates };
    } catch (err) {
      if (!(err instanceof BatchFailure)) throw err;
      // A failed commit may still have happened (the connection broke after COMMIT was sent).
      if (err.code === 'TH_ERR_STORAGE_UNAVAILABLE') this.#deps.queryCache?.noteWritten(tenant, rows);
      if (err.code === 'TH_ERR_STORAGE_REJECTED_DATA') {
        metrics.spansRejected.inc({ tenant, transport, reason: 'storage_rejected_data' }, rows.length);
      } else {
        metrics.spansRefused.inc({ tenant, transport, reason: refuseReason(err.code) }, rows.length);
      }
      throw new TracehouseError(err.code, err.message);
    }
  }

  /** The rows the sampler keeps (all of them without one); the others counted as sampled out. */
  #sample(tenant: string, transport: Transport, rows: DecodedRequest['rows']): DecodedRequest['rows'] {
    const sampler = this.#deps.sampler;
    if (sampler === undefined || !sampler.enabled || rows.length === 0) return rows;
    const { kept, sampledOut } = sampler.apply(tenant, rows);
    if (sampledOut > 0) this.#deps.metrics.spansSampledOut.inc({ tenant, transport }, sampledOut);
    return kept;
  }

  #rateLimited(tenant: string, decision: Exclude<RateDecision, { allowed: true }>): TracehouseError {
    const unit = decision.exceeded === 'spans' ? 'spans' : 'bytes';
    return new TracehouseError(
      'TH_ERR_AUTH_RATE_LIMITED',
      `tenant ${tenant} is over its ${unit} rate limit (${decision.ratePerS} ${unit}/s, burst ${decision.burst})`,
      { retryAfterS: this.#retryAfterS(decision.retryAfterMs) },
    );
  }

  /** Whole seconds, at least 1 and at most max(2, RETRY_AFTER_S): OTLP exporters give up on long waits. */
  #retryAfterS(waitMs: number): number {
    const max = Math.max(2, this.#deps.config.receive.retryAfterS);
    return Math.min(max, Math.max(1, Math.ceil(waitMs / 1000)));
  }

  #countDecoded(decoded: DecodedRequest, tenant: string, transport: Transport): void {
    const { metrics } = this.#deps;
    metrics.spansReceived.inc({ tenant, transport }, decoded.spanCount);
    for (const [reason, count] of Object.entries(decoded.rejected)) {
      if (count) metrics.spansRejected.inc({ tenant, transport, reason }, count);
    }
    for (const [kind, count] of Object.entries(decoded.sanitized)) {
      if (count) metrics.valuesSanitized.inc({ kind }, count);
    }
  }
}

function refuseReason(code: string): string {
  if (code === 'TH_ERR_BATCH_QUEUE_FULL') return 'queue_full';
  if (code === 'TH_ERR_BATCH_SHUTTING_DOWN') return 'shutting_down';
  return 'storage_unavailable';
}
