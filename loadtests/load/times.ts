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
  value: bigint; // the template's unix nanoseconds
  bytes: number; // the length of its form
}

/** The shift of request r's times. */
export function requestShiftNs(r: number): bigint {
  return BigInt(r) * REQUEST_TIME_STEP_NS;
}

/** Writes `ns` in the form `kind` at `offset` of `buf`; returns the bytes written. */
function writeTime(buf: Buffer, offset: number, kind: TimeKind, ns: bigint): number {
  switch (kind) {
    case 'le-ns':
      return buf.writeBigUInt64LE(ns, offset) - offset;
    case 'be-ns':
      return buf.writeBigInt64BE(ns, offset) - offset;
    case 'be-us2000':
      return buf.writeBigInt64BE(ns / 1000n - PG_EPOCH_US, offset) - offset;
    case 'decimal-ns':
      return buf.write(String(ns), offset, 'latin1');
  }
}

/** The bytes to look for: the form itself, or a decimal with its JSON quotes. */
function needle(kind: TimeKind, ns: bigint): Buffer {
  if (kind === 'decimal-ns') return Buffer.from(`"${ns}"`, 'latin1');
  const b = Buffer.allocUnsafe(8);
  writeTime(b, 0, kind, ns);
  return b;
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
      const quotes = kind === 'decimal-ns' ? 2 : 0;
      for (let at = body.indexOf(n); at !== -1; at = body.indexOf(n, at + n.length)) {
        sites.push({ offset: at + quotes / 2, kind, value, bytes: n.length - quotes });
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

/** Writes every site's time moved by `shiftNs` into `target` (a copy of the body); lengths never change. */
export function patchTimes(target: Buffer, sites: readonly TimeSite[], shiftNs: bigint): void {
  for (const s of sites) {
    if (writeTime(target, s.offset, s.kind, s.value + shiftNs) !== s.bytes) {
      throw new Error(`time ${s.value + shiftNs} changed the length of its ${s.kind} form`);
    }
  }
}
