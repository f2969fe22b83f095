/**
 * The times of a load run's spans. A template's spans start in the minute before it was built
 * (realisticSpans); request r moves every time in its body (span starts and ends, event times) by
 * r × REQUEST_TIME_STEP_NS, durations kept. Without it every request of a template would repeat the
 * template's 512 start times, and the stored rows would not be real traffic's: an index keyed on a
 * start time (tenant, service_name, start_time) would deduplicate equal keys into a fraction of its
 * real size, flattering the disk bytes per span, and PostgreSQL would do less work per row.
 *
 * 10 ms per request is about real time at the rates this machine reaches (~100 requests/s), and the
 * odd 37 ns makes the sub-microsecond digits differ between requests as well.
 *
 * Where the times are, per body format (found once per template by value, like the ids):
 * - protobuf: fixed64, little-endian unix nanoseconds;
 * - OTLP/JSON: decimal unix nanoseconds in a JSON string;
 * - COPY binary rows (the limit): start_time as big-endian int64 microseconds since 2000-01-01,
 *   start_time_unix_nano as big-endian int64, event times as decimal strings inside the events jsonb.
 */

export const REQUEST_TIME_STEP_NS = 10_000_037n;
/** Unix epoch → PostgreSQL epoch (2000-01-01), in microseconds. */
const PG_EPOCH_US = 946_684_800_000_000n;
const PG_EPOCH_S = 946_684_800;
const NS_PER_S = 1_000_000_000;
const TWO_16 = 65_536;
const TWO_32 = 4_294_967_296;

export type BodyFormat = 'protobuf' | 'json' | 'copy-binary';

type TimeKind = 'le-ns' | 'be-ns' | 'be-us2000' | 'decimal-ns';

/** How each format writes a time; every kind listed must be found for every span start. */
const KINDS: Record<BodyFormat, { all: TimeKind[]; everyStart: TimeKind[] }> = {
  protobuf: { all: ['le-ns'], everyStart: ['le-ns'] },
  json: { all: ['decimal-ns'], everyStart: ['decimal-ns'] },
  'copy-binary': { all: ['be-ns', 'be-us2000', 'decimal-ns'], everyStart: ['be-ns', 'be-us2000'] },
};

export interface TimeSite {
  offset: number;
  kind: TimeKind;
  /** The template's unix time: whole seconds and nanoseconds, as numbers (no BigInt per request). */
  seconds: number;
  nanos: number;
  digits: number; // of the decimal nanoseconds
}

/** The shift of request r's times. */
export function requestShiftNs(r: number): bigint {
  return BigInt(r) * REQUEST_TIME_STEP_NS;
}

function needle(kind: TimeKind, ns: bigint): Buffer {
  const b = Buffer.allocUnsafe(8);
  switch (kind) {
    case 'le-ns':
      b.writeBigUInt64LE(ns);
      return b;
    case 'be-ns':
      b.writeBigInt64BE(ns);
      return b;
    case 'be-us2000':
      b.writeBigInt64BE(ns / 1000n - PG_EPOCH_US);
      return b;
    case 'decimal-ns':
      return Buffer.from(`"${ns}"`, 'latin1');
  }
}

/**
 * Every site of the given times (unix ns, ≥ 1 µs after 2000) in `body`. Times are random to the
 * nanosecond, so an 8-byte or 19-digit match is the time, never a coincidence. Throws when a span
 * start is missing in one of the forms its format must hold.
 */
export function findTimeSites(
  body: Buffer,
  format: BodyFormat,
  times: readonly bigint[],
  starts: readonly bigint[],
): TimeSite[] {
  const sites: TimeSite[] = [];
  const found = new Set<string>();
  for (const value of new Set(times)) {
    for (const kind of KINDS[format].all) {
      const n = needle(kind, value);
      const quote = kind === 'decimal-ns' ? 1 : 0;
      for (let at = body.indexOf(n); at !== -1; at = body.indexOf(n, at + n.length)) {
        sites.push({
          offset: at + quote,
          kind,
          seconds: Number(value / 1_000_000_000n),
          nanos: Number(value % 1_000_000_000n),
          digits: String(value).length,
        });
        found.add(`${kind}:${value}`);
      }
    }
  }
  for (const start of starts) {
    for (const kind of KINDS[format].everyStart) {
      if (!found.has(`${kind}:${start}`)) throw new Error(`template: start time ${start} not found as ${kind}`);
    }
  }
  return sites;
}

/**
 * Writes every site's time moved by `shiftNs` into `target` (a copy of the body); lengths never
 * change. Seconds and nanoseconds are added apart, as numbers: this runs for every request the load
 * generator sends, on the cores it measures.
 */
export function patchTimes(target: Buffer, sites: readonly TimeSite[], shiftNs: bigint): void {
  const shiftSeconds = Number(shiftNs / 1_000_000_000n);
  const shiftNanos = Number(shiftNs % 1_000_000_000n);
  for (const s of sites) {
    let seconds = s.seconds + shiftSeconds;
    let nanos = s.nanos + shiftNanos;
    if (nanos >= NS_PER_S) {
      nanos -= NS_PER_S;
      seconds += 1;
    }
    switch (s.kind) {
      case 'le-ns':
        writeNanos(target, s.offset, seconds, nanos, true);
        break;
      case 'be-ns':
        writeNanos(target, s.offset, seconds, nanos, false);
        break;
      case 'be-us2000': {
        const us = (seconds - PG_EPOCH_S) * 1_000_000 + Math.floor(nanos / 1000); // < 2^53
        const high = Math.floor(us / TWO_32);
        target.writeUInt32BE(high, s.offset);
        target.writeUInt32BE(us - high * TWO_32, s.offset + 4);
        break;
      }
      case 'decimal-ns': {
        const text = String(seconds) + String(nanos).padStart(9, '0');
        if (text.length !== s.digits) throw new Error(`time ${text} changed its number of digits`);
        target.write(text, s.offset, 'latin1');
        break;
      }
    }
  }
}

/**
 * Writes seconds × 10^9 + nanos as an unsigned 64-bit integer. The product passes 2^53, so it is
 * built from 16-bit pieces of the seconds, each product staying exact.
 */
function writeNanos(target: Buffer, offset: number, seconds: number, nanos: number, littleEndian: boolean): void {
  const secondsHigh = Math.floor(seconds / TWO_16);
  const a = secondsHigh * NS_PER_S; // × 2^16 below; < 2^47
  const b = (seconds - secondsHigh * TWO_16) * NS_PER_S + nanos; // < 2^46
  const aHigh = Math.floor(a / TWO_16);
  const low = (a - aHigh * TWO_16) * TWO_16 + b; // < 2^47
  const carry = Math.floor(low / TWO_32);
  const high = aHigh + carry;
  const lowWord = low - carry * TWO_32;
  if (littleEndian) {
    target.writeUInt32LE(lowWord, offset);
    target.writeUInt32LE(high, offset + 4);
  } else {
    target.writeUInt32BE(high, offset);
    target.writeUInt32BE(lowWord, offset + 4);
  }
}
