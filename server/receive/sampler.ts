/**
 * Server-side consistent probabilistic sampling by trace id, in the OpenTelemetry way: a trace's
 * randomness R is the lowest 56 bits of its trace id (or the `rv` of its tracestate `ot` member,
 * when the SDK set one), a rate p becomes the rejection threshold T = round((1 − p) · 2^56), and a
 * span is kept when R ≥ T. Every instance computes the same R and T, so all instances keep or drop
 * the same traces, and a trace is kept whole (every span has its trace's R).
 *
 * A kept span stands for 2^56 / (2^56 − T) spans. Consistent samplers compose by the larger
 * threshold: a span whose SDK already sampled it with threshold T_sdk (its decode-time weight) and
 * that passes ours was kept because R ≥ max(T_sdk, T), so its weight becomes the larger of the two
 * adjusted counts, not their product.
 *
 * With keepErrors, spans of status error are kept whatever their trace's decision, with their
 * weight unchanged (they were kept with probability 1 here): the error spans themselves, not their
 * whole trace (the server sees spans as they come; keeping a whole trace would need tail sampling).
 *
 * Stateless apart from the thresholds computed once from the configuration.
 */
import type { SamplingConfig } from '../config.js';
import { adjustedCountForThreshold, parseOtTraceState } from '../decode/ot-tracestate.js';
import type { SpanRow } from '../decode/types.js';

const TWO_POW_56 = 2n ** 56n;
const STATUS_ERROR = 2;

/** A rate as the threshold T, split into two 28-bit halves (exact comparisons without BigInt). */
export interface SamplingThreshold {
  rate: number;
  threshold: bigint;
  high: number; // T >> 28, up to 2^28 (for rate 0)
  low: number; // T & (2^28 − 1)
  /** Adjusted count of a span this threshold kept: 2^56 / (2^56 − T); Infinity for rate 0. */
  weight: number;
}

export function thresholdForRate(rate: number): SamplingThreshold {
  const clamped = Math.min(1, Math.max(0, rate));
  // (1 − p) · 2^56 is a double below or at 2^56: rounding it loses nothing a configured rate holds.
  const threshold = BigInt(Math.round((1 - clamped) * 2 ** 56));
  return {
    rate: clamped,
    threshold,
    high: Number(threshold >> 28n),
    low: Number(threshold & 0xfffffffn),
    weight: threshold >= TWO_POW_56 ? Number.POSITIVE_INFINITY : adjustedCountForThreshold(threshold),
  };
}

/** True when the trace id's randomness (its lowest 56 bits: bytes 9..15) is at or above the threshold. */
export function keepsTraceId(traceId: Uint8Array, t: SamplingThreshold): boolean {
  const high = traceId[9] * 0x100000 + traceId[10] * 0x1000 + traceId[11] * 0x10 + (traceId[12] >> 4);
  if (high !== t.high) return high > t.high;
  const low = (traceId[12] & 0x0f) * 0x1000000 + traceId[13] * 0x10000 + traceId[14] * 0x100 + traceId[15];
  return low >= t.low;
}

function keepsRow(row: SpanRow, t: SamplingThreshold): boolean {
  if (row.traceState !== '' && row.traceState.includes('rv:')) {
    const { randomness } = parseOtTraceState(row.traceState);
    if (randomness !== undefined) return randomness >= t.threshold;
  }
  return keepsTraceId(row.traceId, t);
}

export interface SamplingResult {
  kept: SpanRow[];
  sampledOut: number;
}

interface TenantPolicy {
  rate: SamplingThreshold;
  services: Map<string, SamplingThreshold>;
}

export class Sampler {
  readonly #global: SamplingThreshold;
  readonly #tenants = new Map<string, TenantPolicy>();
  readonly #keepErrors: boolean;
  /** False when every rate is 1: apply() is then never needed. */
  readonly enabled: boolean;

  constructor(config: SamplingConfig) {
    this.#global = thresholdForRate(config.rate);
    this.#keepErrors = config.keepErrors;
    let enabled = this.#global.rate < 1;
    for (const [tenant, override] of Object.entries(config.overrides ?? {})) {
      const rate = override.rate === undefined ? this.#global : thresholdForRate(override.rate);
      const services = new Map<string, SamplingThreshold>();
      for (const [service, serviceRate] of Object.entries(override.services ?? {})) {
        services.set(service, thresholdForRate(serviceRate));
        if (serviceRate < 1) enabled = true;
      }
      if (rate.rate < 1) enabled = true;
      this.#tenants.set(tenant, { rate, services });
    }
    this.enabled = enabled;
  }

  /** The threshold that applies to a tenant's service. */
  thresholdFor(tenant: string, service: string): SamplingThreshold {
    const policy = this.#tenants.get(tenant);
    if (policy === undefined) return this.#global;
    return policy.services.get(service) ?? policy.rate;
  }

  /**
   * Keeps or drops each row. Kept rows get their weight raised to the sampler's adjusted count when
   * it is larger (see the header); the rows given are owned by the caller's request and are mutated.
   */
  apply(tenant: string, rows: SpanRow[]): SamplingResult {
    if (!this.enabled) return { kept: rows, sampledOut: 0 };
    const kept: SpanRow[] = [];
    let lastService: string | undefined;
    let t = this.#global;
    for (const row of rows) {
      if (row.serviceName !== lastService) {
        lastService = row.serviceName;
        t = this.thresholdFor(tenant, row.serviceName);
      }
      if (t.rate >= 1) {
        kept.push(row);
      } else if (keepsRow(row, t)) {
        if (t.weight > row.samplingWeight) row.samplingWeight = t.weight;
        kept.push(row);
      } else if (this.#keepErrors && row.statusCode === STATUS_ERROR) {
        kept.push(row);
      }
    }
    return { kept, sampledOut: rows.length - kept.length };
  }
}
