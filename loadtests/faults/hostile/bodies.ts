/**
 * The hostile request bodies of reliability catalog rows 23, 25, 26 and 27, built byte by byte
 * (otlp-wire.ts) so they carry what no SDK encoder writes.
 */
import { randomBytes } from 'node:crypto';
import {
  anyArray,
  anyInt,
  anyKvlist,
  anyString,
  encodeRequest,
  keyValue,
  ld,
  tag,
  varint,
  WIRE,
  type WireResourceSpans,
  type WireSpan,
} from '../fuzz/otlp-wire.js';

/** The year-2554 instant: the largest fixed64 nanosecond timestamp. */
export const MAX_FIXED64 = 2n ** 64n - 1n;

export const newTraceId = (): Buffer => randomBytes(16);
export const newSpanId = (): Buffer => randomBytes(8);
const nowNs = (): bigint => BigInt(Date.now()) * 1_000_000n;

/** A valid span starting a second ago, for mixing good spans into hostile requests. */
export function goodWireSpan(traceId: Buffer, extra: Partial<WireSpan> = {}): WireSpan {
  const start = nowNs() - 1_000_000_000n;
  return {
    traceId,
    spanId: newSpanId(),
    name: 'good',
    kind: 2,
    startTimeUnixNano: start,
    endTimeUnixNano: start + 5_000_000n,
    ...extra,
  };
}

/**
 * A request with one AnyValue attribute nested `levels` deep (array_value or kvlist_value).
 * Every level is a prefix of the leaf, so the prefixes are built inside out from the sizes and
 * concatenated once: 10,000 levels cost no quadratic copying.
 */
export function deepProtobufRequest(levels: number, kind: 'array' | 'kvlist'): Buffer {
  const leaf = anyString('leaf');
  const prefixes: Buffer[] = [];
  let size = leaf.length;
  for (let i = 0; i < levels; i++) {
    let prefix: Buffer;
    if (kind === 'array') {
      const values = Buffer.concat([tag(1, WIRE.LEN), varint(size)]); // ArrayValue.values
      prefix = Buffer.concat([tag(5, WIRE.LEN), varint(values.length + size), values]);
    } else {
      const pair = Buffer.concat([ld(1, 'k'), tag(2, WIRE.LEN), varint(size)]); // KeyValue{key, value}
      const values = Buffer.concat([tag(1, WIRE.LEN), varint(pair.length + size)]); // KeyValueList.values
      prefix = Buffer.concat([tag(6, WIRE.LEN), varint(values.length + pair.length + size), values, pair]);
    }
    prefixes.push(prefix);
    size += prefix.length;
  }
  const deepValue = Buffer.concat([...prefixes.reverse(), leaf]);
  const span = goodWireSpan(newTraceId(), { attributes: [keyValue('deep', deepValue)] });
  return encodeRequest([{ spans: [span] }]);
}

/** The same nesting in OTLP/JSON. */
export function deepJsonRequest(levels: number, kind: 'array' | 'kvlist'): string {
  const open = kind === 'array' ? '{"arrayValue":{"values":[' : '{"kvlistValue":{"values":[{"key":"k","value":';
  const close = kind === 'array' ? ']}}' : '}]}}';
  const value = open.repeat(levels) + '{"stringValue":"leaf"}' + close.repeat(levels);
  const start = nowNs() - 1_000_000_000n;
  const span = {
    traceId: newTraceId().toString('hex'),
    spanId: newSpanId().toString('hex'),
    name: 'deep',
    startTimeUnixNano: String(start),
    endTimeUnixNano: String(start + 1000n),
  };
  const spanJson = JSON.stringify(span).slice(0, -1) + `,"attributes":[{"key":"deep","value":${value}}]}`;
  return `{"resourceSpans":[{"scopeSpans":[{"spans":[${spanJson}]}]}]}`;
}

/** What each hostile string variant is and the sanitize counter it must move. */
export const BAD_STRINGS: Array<{ name: string; bytes: Buffer; counter: 'nul_byte' | 'invalid_utf8' }> = [
  { name: 'nul', bytes: Buffer.from('a\0b'), counter: 'nul_byte' },
  { name: 'invalid-byte', bytes: Buffer.from([0x61, 0xff, 0x62]), counter: 'invalid_utf8' },
  { name: 'truncated-sequence', bytes: Buffer.from([0x61, 0xe2, 0x82]), counter: 'invalid_utf8' },
  { name: 'overlong', bytes: Buffer.from([0xc0, 0xaf, 0x61]), counter: 'invalid_utf8' },
  { name: 'encoded-surrogate', bytes: Buffer.from([0xed, 0xa0, 0x80, 0x61]), counter: 'invalid_utf8' },
];

/**
 * One span per bad string, with that string in every string field a span can reach: resource
 * attribute key and value, scope name / version / attribute, span name, trace state, attribute
 * keys and values (also inside an array and a kvlist), event name and attribute, link trace state
 * and attribute, status message. Plus one good span. All ids and timestamps are valid, so every
 * span must be stored (sanitized) and the batch must commit.
 */
export function badStringsProtobufRequest(): { body: Buffer; traceId: Buffer; spans: number } {
  const traceId = newTraceId();
  const groups: WireResourceSpans[] = BAD_STRINGS.map(({ name, bytes }) => {
    const s = (prefix: string): Buffer => Buffer.concat([Buffer.from(`${prefix}-${name}-`), bytes]);
    const attrs = [
      keyValue(s('key'), anyString(s('value'))),
      keyValue('in-array', anyArray([anyString(s('element')), anyInt(1)])),
      keyValue('in-kvlist', anyKvlist([keyValue(s('inner-key'), anyString(s('inner-value')))])),
    ];
    const span = goodWireSpan(traceId, {
      name: s('span'),
      traceState: Buffer.concat([Buffer.from('vendor='), bytes]),
      attributes: attrs,
      events: [
        { timeUnixNano: nowNs() - 500_000_000n, name: s('event'), attributes: [keyValue(s('ek'), anyString(s('ev')))] },
      ],
      links: [
        {
          traceId: newTraceId(),
          spanId: newSpanId(),
          traceState: s('ts'),
          attributes: [keyValue(s('lk'), anyString(s('lv')))],
        },
      ],
      status: { code: 2, message: s('status') },
    });
    return {
      resourceAttributes: [keyValue('service.name', anyString(s('svc'))), keyValue(s('rk'), anyString(s('rv')))],
      scopeName: s('scope'),
      scopeVersion: s('v'),
      scopeAttributes: [keyValue(s('sk'), anyString(s('sv')))],
      spans: [span],
    };
  });
  groups.push({ resourceAttributes: [keyValue('service.name', anyString('clean'))], spans: [goodWireSpan(traceId)] });
  return { body: encodeRequest(groups), traceId, spans: groups.length };
}

/** The JSON counterpart: NUL and lone surrogates (high, low, reversed pair) in every string field. */
export function badStringsJsonRequest(): { body: string; traceId: string; spans: number } {
  const traceId = newTraceId().toString('hex');
  const variants = ['\\u0000', '\\ud800', '\\udfff', '\\udc00\\ud800'];
  const start = nowNs() - 1_000_000_000n;
  const resourceSpans = variants.map((bad) => {
    const s = (prefix: string): string => `"${prefix}-${bad}-x"`;
    const kv = (key: string, value: string): string => `{"key":${key},"value":{"stringValue":${value}}}`;
    const span =
      `{"traceId":"${traceId}","spanId":"${newSpanId().toString('hex')}","name":${s('span')},` +
      `"traceState":${s('ts')},"startTimeUnixNano":"${start}","endTimeUnixNano":"${start + 1000n}",` +
      `"attributes":[${kv(s('k'), s('v'))},{"key":"arr","value":{"arrayValue":{"values":[{"stringValue":${s('e')}}]}}}],` +
      `"events":[{"timeUnixNano":"${start + 10n}","name":${s('event')},"attributes":[${kv(s('ek'), s('ev'))}]}],` +
      `"links":[{"traceId":"${newTraceId().toString('hex')}","spanId":"${newSpanId().toString('hex')}","traceState":${s('lts')},"attributes":[${kv(s('lk'), s('lv'))}]}],` +
      `"status":{"code":2,"message":${s('status')}}}`;
    return (
      `{"resource":{"attributes":[${kv('"service.name"', s('svc'))},${kv(s('rk'), s('rv'))}]},` +
      `"scopeSpans":[{"scope":{"name":${s('scope')},"version":${s('v')},"attributes":[${kv(s('sk'), s('sv'))}]},"spans":[${span}]}]}`
    );
  });
  return { body: `{"resourceSpans":[${resourceSpans.join(',')}]}`, traceId, spans: variants.length };
}

/** One span with `count` distinct int attributes (the server keeps its configured maximum). */
export function manyAttributesRequest(count: number): { body: Buffer; traceId: Buffer } {
  const traceId = newTraceId();
  const attributes: Buffer[] = [];
  for (let i = 0; i < count; i++) attributes.push(keyValue(`attr.${i}`, anyInt(i)));
  return { body: encodeRequest([{ spans: [goodWireSpan(traceId, { attributes })] }]), traceId };
}

/** Three spans: start at 0 (1970), start at the fixed64 maximum (year 2554), and a good one. */
export function extremeTimestampsRequest(): { body: Buffer; traceId: Buffer } {
  const traceId = newTraceId();
  const spans = [
    goodWireSpan(traceId, { name: 'epoch', startTimeUnixNano: 0n, endTimeUnixNano: 1n }),
    goodWireSpan(traceId, { name: 'year-2554', startTimeUnixNano: MAX_FIXED64 - 1n, endTimeUnixNano: MAX_FIXED64 }),
    goodWireSpan(traceId, { name: 'good' }),
  ];
  return { body: encodeRequest([{ spans }]), traceId };
}
