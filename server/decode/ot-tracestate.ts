/**
 * The OpenTelemetry `ot` member of a W3C tracestate, for consistent probability sampling: `th`, the
 * rejection threshold T (1 to 14 lowercase hex digits, implicitly padded with trailing zeros to 56
 * bits), and `rv`, an explicit 56-bit randomness value (exactly 14 lowercase hex digits) that replaces
 * the trace id's lowest 56 bits. A span was kept with probability (2^56 − T) / 2^56, so it stands for
 * 2^56 / (2^56 − T) spans (its adjusted count). Pure, and cheap for the common tracestate without `ot`.
 */

const TWO_POW_56 = 2n ** 56n;
const THRESHOLD = /^[0-9a-f]{1,14}$/;
const RANDOMNESS = /^[0-9a-f]{14}$/;

export interface OtTraceState {
  /** Rejection threshold, 0 ≤ T < 2^56; undefined when absent or invalid. */
  threshold?: bigint;
  /** Explicit randomness, 0 ≤ R < 2^56; undefined when absent or invalid. */
  randomness?: bigint;
}

/** The `ot` member's value (`th:…;rv:…`), or undefined. Members are `key=value`, comma-separated. */
function otValue(traceState: string): string | undefined {
  if (!traceState.includes('ot=')) return undefined;
  for (const member of traceState.split(',')) {
    const item = member.trim();
    if (item.startsWith('ot=')) return item.slice(3);
  }
  return undefined;
}

/** Parses `th` and `rv` of the `ot` member; invalid values are ignored, as the specification asks. */
export function parseOtTraceState(traceState: string): OtTraceState {
  const value = otValue(traceState);
  const parsed: OtTraceState = {};
  if (value === undefined) return parsed;
  for (const field of value.split(';')) {
    const colon = field.indexOf(':');
    if (colon < 0) continue;
    const key = field.slice(0, colon);
    const hex = field.slice(colon + 1);
    if (key === 'th' && parsed.threshold === undefined && THRESHOLD.test(hex)) {
      parsed.threshold = BigInt(`0x${hex.padEnd(14, '0')}`);
    } else if (key === 'rv' && parsed.randomness === undefined && RANDOMNESS.test(hex)) {
      parsed.randomness = BigInt(`0x${hex}`);
    }
  }
  return parsed;
}

/** 2^56 / (2^56 − T): how many spans one kept with threshold T stands for. */
export function adjustedCountForThreshold(threshold: bigint): number {
  return Number(TWO_POW_56) / Number(TWO_POW_56 - threshold);
}

/** The adjusted count the SDK's sampler recorded in tracestate (`ot=th:…`), 1 when there is none. */
export function sdkSamplingWeight(traceState: string): number {
  if (traceState === '' || !traceState.includes('th:')) return 1;
  const { threshold } = parseOtTraceState(traceState);
  return threshold === undefined ? 1 : adjustedCountForThreshold(threshold);
}
