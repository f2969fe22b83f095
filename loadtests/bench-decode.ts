/**
 * Benchmark of the decode stage (reference/performance.md §2.2): one realistic 512-span request,
 * full decode → SpanRow[] three ways, interleaved in one process so ratios are same-run:
 *
 *   walker     decodeExportRequest(protobuf) — the hand-written wire walker we ship
 *   protobufjs protobufjs decode (schema from test/helpers/otlp-protobufjs.ts) + conversion to the
 *              same SpanRows through the same validation, sanitizing and JSON writers
 *   json       decodeExportRequest(OTLP/JSON) — JSON.parse + walk
 *   walker-unique  the walker on a request whose string values are all unique (span names, values):
 *              the short-string memo (server/decode/string-cache.ts) then only helps for keys
 *
 * Run: node --import tsx loadtests/bench-decode.ts [--spans 512] [--rounds 7] [--ms 600]
 */
import { isDeepStrictEqual } from 'node:util';
import type { Message } from 'protobufjs';
import type { AttributeList } from '../server/decode/any-value.js';
import { formatDouble, writeEventJson, writeLinkJson } from '../server/decode/any-value.js';
import { DecodeContext } from '../server/decode/decode-context.js';
import { AttributeSharing, decodeExportRequest } from '../server/decode/index.js';
import { sanitizeJsonString, sanitizeJsonValueString, writeBytesJson } from '../server/decode/sanitize.js';
import {
  acceptSpan,
  addDropped,
  isAllZero,
  normalizeSpanKind,
  normalizeStatusCode,
  resetSpanDraft,
} from '../server/decode/span-rows.js';
import type { DecodeOptions, SpanRow } from '../server/decode/types.js';
import { buildRequest, realisticSpans } from '../test/helpers/otlp-fixtures.js';
import { createOtlpRoot, exportRequestType } from '../test/helpers/otlp-protobufjs.js';

function argValue(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
}

const SPANS = argValue('spans', 512);
const ROUNDS = argValue('rounds', 7);
const ROUND_MS = argValue('ms', 600);
const NOW_MS = Date.now();
const NOW_NS = BigInt(NOW_MS) * 1_000_000n;
const OPTIONS: DecodeOptions = {
  limits: {
    maxAnyValueDepth: 32,
    maxAttributeValueBytes: 4096,
    maxAttributesPerSpan: 128,
    maxEventsPerSpan: 128,
    maxLinksPerSpan: 128,
  },
  window: { minStartUnixNano: NOW_NS - 7n * 86_400_000_000_000n, maxStartUnixNano: NOW_NS + 600_000_000_000n },
};
/** As the server decodes: attribute pairs split between the span's set and its row (one learner per run). */
const SHARING: DecodeOptions = { ...OPTIONS, sharing: new AttributeSharing() };

// --- protobufjs message → SpanRow (the comparison decoder; plain objects as protobufjs returns them) ---

interface LongLike {
  low: number;
  high: number;
  unsigned: boolean;
}
type Pb = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

function toBigInt(v: number | LongLike | undefined): bigint {
  if (v === undefined) return 0n;
  if (typeof v === 'number') return BigInt(v);
  return BigInt.asUintN(64, (BigInt(v.high >>> 0) << 32n) | BigInt(v.low >>> 0));
}

function toInt64Decimal(v: number | LongLike): string {
  if (typeof v === 'number') return String(v);
  return BigInt.asIntN(64, (BigInt(v.high >>> 0) << 32n) | BigInt(v.low >>> 0)).toString();
}

function anyValueJson(ctx: DecodeContext, v: Pb | undefined, depth: number): string {
  ctx.lastStringJson = null;
  if (v == null) return 'null';
  switch (v.value) {
    case 'stringValue':
      return (ctx.lastStringJson = JSON.stringify(sanitizeJsonValueString(ctx, v.stringValue)));
    case 'boolValue':
      return v.boolValue ? 'true' : 'false';
    case 'intValue':
      return toInt64Decimal(v.intValue);
    case 'doubleValue':
      return formatDouble(v.doubleValue);
    case 'bytesValue':
      return writeBytesJson(ctx, v.bytesValue, 0, v.bytesValue.length);
    case 'arrayValue': {
      if (depth + 1 > ctx.limits.maxAnyValueDepth) throw new Error('too deep');
      const items = (v.arrayValue.values as Pb[]).map((item) => anyValueJson(ctx, item, depth + 1));
      ctx.lastStringJson = null;
      return `[${items.join(',')}]`;
    }
    case 'kvlistValue': {
      if (depth + 1 > ctx.limits.maxAnyValueDepth) throw new Error('too deep');
      const list = ctx.kvlistAt(depth + 1);
      for (const kv of v.kvlistValue.values as Pb[]) {
        list.push(JSON.stringify(sanitizeJsonString(ctx, kv.key)), anyValueJson(ctx, kv.value, depth + 1));
      }
      ctx.lastStringJson = null;
      return list.toJson();
    }
    default:
      return 'null';
  }
}

function attributesJson(ctx: DecodeContext, kvs: Pb[], list: AttributeList, watchKey?: string): string | null {
  list.reset();
  let watched: string | null = null;
  for (const kv of kvs) {
    if (!list.admitNext()) continue;
    list.push(JSON.stringify(sanitizeJsonString(ctx, kv.key)), anyValueJson(ctx, kv.value, 0));
    if (watchKey !== undefined && list.lastKey() === watchKey) watched = ctx.lastStringJson;
  }
  if (list.dropped > 0) ctx.countSanitized('attributes_dropped', list.dropped);
  return watched;
}

function idOrNull(bytes: Uint8Array, length: number): Buffer | null {
  return bytes.length === length && !isAllZero(bytes) ? Buffer.from(bytes) : null;
}

function protobufjsToRows(message: Pb, options: DecodeOptions): SpanRow[] {
  const ctx = new DecodeContext(options);
  const d = ctx.draft;
  for (const rs of message.resourceSpans as Pb[]) {
    ctx.resetResource();
    const serviceName = attributesJson(ctx, rs.resource?.attributes ?? [], ctx.resourceAttributeList, '"service.name"');
    ctx.serviceName = serviceName === null ? '' : JSON.parse(serviceName);
    ctx.resourceAttributes = ctx.resourceAttributeList.toJson();
    for (const ss of rs.scopeSpans as Pb[]) {
      ctx.resetScope();
      ctx.scopeName = sanitizeJsonString(ctx, ss.scope?.name ?? '');
      ctx.scopeVersion = sanitizeJsonString(ctx, ss.scope?.version ?? '');
      attributesJson(ctx, ss.scope?.attributes ?? [], ctx.scopeAttributeList);
      ctx.scopeAttributes = ctx.scopeAttributeList.toJson();
      ctx.updateSharedSize();
      for (const s of ss.spans as Pb[]) {
        resetSpanDraft(d);
        d.traceId = idOrNull(s.traceId, 16);
        d.spanId = idOrNull(s.spanId, 8);
        if (s.parentSpanId.length > 0) {
          d.parentSpanId = idOrNull(s.parentSpanId, 8);
          d.parentSpanIdInvalid = d.parentSpanId === null;
        }
        d.traceState = sanitizeJsonString(ctx, s.traceState);
        d.flags = s.flags;
        d.name = sanitizeJsonString(ctx, s.name);
        d.kind = normalizeSpanKind(s.kind);
        d.startTimeUnixNano = toBigInt(s.startTimeUnixNano);
        d.endTimeUnixNano = toBigInt(s.endTimeUnixNano);
        attributesJson(ctx, s.attributes, ctx.spanAttributes);
        d.attributes = ctx.spanAttributes.toJson();
        d.droppedAttributesCount = addDropped(s.droppedAttributesCount, ctx.spanAttributes.dropped);
        const events = (s.events as Pb[]).slice(0, options.limits.maxEventsPerSpan).map((e) => {
          attributesJson(ctx, e.attributes, ctx.eventAttributes);
          const dropped = addDropped(e.droppedAttributesCount, ctx.eventAttributes.dropped);
          return writeEventJson(
            toBigInt(e.timeUnixNano),
            sanitizeJsonString(ctx, e.name),
            ctx.eventAttributes.toJson(),
            dropped,
          );
        });
        if (events.length > 0) d.events = `[${events.join(',')}]`;
        d.droppedEventsCount = addDropped(s.droppedEventsCount, s.events.length - events.length);
        const links = (s.links as Pb[]).slice(0, options.limits.maxLinksPerSpan).map((l) => {
          attributesJson(ctx, l.attributes, ctx.linkAttributes);
          const dropped = addDropped(l.droppedAttributesCount, ctx.linkAttributes.dropped);
          const hex = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.length).toString('hex');
          return writeLinkJson(
            hex(l.traceId),
            hex(l.spanId),
            sanitizeJsonString(ctx, l.traceState),
            l.flags,
            ctx.linkAttributes.toJson(),
            dropped,
          );
        });
        if (links.length > 0) d.links = `[${links.join(',')}]`;
        d.droppedLinksCount = addDropped(s.droppedLinksCount, s.links.length - links.length);
        d.statusMessage = sanitizeJsonString(ctx, s.status?.message ?? '');
        d.statusCode = normalizeStatusCode(s.status?.code ?? 0);
        acceptSpan(ctx, d);
      }
    }
  }
  return ctx.rows;
}

// --- the benchmark ---

const requestType = exportRequestType(createOtlpRoot());
const spans = realisticSpans(SPANS, { nowMs: NOW_MS, seed: 2026 });
const { protobuf, json } = buildRequest({ spans });
const jsonBody = Buffer.from(json);
const uniqueSpans = realisticSpans(SPANS, { nowMs: NOW_MS, seed: 2027 }).map((span) => ({
  ...span,
  name: `${span.name} ${span.spanId}`,
  attributes: Object.fromEntries(
    Object.entries(span.attributes ?? {}).map(([k, v]) => [
      k,
      typeof v === 'string' ? `${v.slice(0, 24)} ${span.spanId}` : v,
    ]),
  ),
}));
const uniqueProtobuf = buildRequest({ spans: uniqueSpans }).protobuf;

const variants: { name: string; bytes: number; run: () => SpanRow[] }[] = [
  { name: 'walker', bytes: protobuf.length, run: () => decodeExportRequest(protobuf, 'protobuf', OPTIONS).rows },
  {
    name: 'protobufjs',
    bytes: protobuf.length,
    run: () => protobufjsToRows(requestType.decode(protobuf) as Message as Pb, OPTIONS),
  },
  { name: 'json', bytes: jsonBody.length, run: () => decodeExportRequest(jsonBody, 'json', OPTIONS).rows },
  {
    name: 'walker-unique',
    bytes: uniqueProtobuf.length,
    run: () => decodeExportRequest(uniqueProtobuf, 'protobuf', OPTIONS).rows,
  },
  {
    name: 'walker-sharing',
    bytes: protobuf.length,
    run: () => decodeExportRequest(protobuf, 'protobuf', SHARING).rows,
  },
  { name: 'json-sharing', bytes: jsonBody.length, run: () => decodeExportRequest(jsonBody, 'json', SHARING).rows },
];

function comparable(rows: SpanRow[]) {
  return rows.map((r) => ({
    ...r,
    traceId: r.traceId.toString('hex'),
    spanId: r.spanId.toString('hex'),
    parentSpanId: r.parentSpanId?.toString('hex'),
  }));
}

const reference = comparable(variants[0].run());
for (const v of variants.slice(1, 3)) {
  if (!isDeepStrictEqual(comparable(v.run()), reference)) throw new Error(`${v.name} rows differ from the walker's`);
}
if (reference.length !== SPANS) throw new Error(`expected ${SPANS} rows, got ${reference.length}`);

function measure(run: () => unknown, ms: number): number {
  let requests = 0;
  const started = performance.now();
  let elapsed = 0;
  while (elapsed < ms) {
    run();
    requests++;
    elapsed = performance.now() - started;
  }
  return (requests * SPANS) / (elapsed / 1000);
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

console.log(
  `node ${process.version}, ${SPANS} spans/request: protobuf ${protobuf.length} B (${Math.round(protobuf.length / SPANS)} B/span), OTLP/JSON ${jsonBody.length} B`,
);
console.log('walker, protobufjs and json rows are identical');
for (const v of variants) measure(v.run, 400); // warm-up

const results = new Map<string, number[]>(variants.map((v) => [v.name, []]));
const ratios = { walkerVsProtobufjs: [] as number[], jsonVsProtobufjs: [] as number[] };
for (let round = 0; round < ROUNDS; round++) {
  const perRound = new Map<string, number>();
  for (let i = 0; i < variants.length; i++) {
    const v = variants[(round + i) % variants.length]; // rotate the order between rounds
    perRound.set(v.name, measure(v.run, ROUND_MS));
  }
  for (const [name, rate] of perRound) results.get(name)!.push(rate);
  ratios.walkerVsProtobufjs.push(perRound.get('walker')! / perRound.get('protobufjs')!);
  ratios.jsonVsProtobufjs.push(perRound.get('json')! / perRound.get('protobufjs')!);
}

const pad = (s: string, n: number) => s.padStart(n);
console.log(`\n${ROUNDS} rounds × ${ROUND_MS} ms per decoder, interleaved`);
console.log(
  `${'decoder'.padEnd(12)}${pad('spans/s median', 16)}${pad('min', 10)}${pad('max', 10)}${pad('µs/span', 10)}${pad('MB/s in', 10)}`,
);
for (const v of variants) {
  const rates = results.get(v.name)!;
  const m = median(rates);
  console.log(
    `${v.name.padEnd(14)}${pad(Math.round(m).toLocaleString('en'), 16)}${pad(Math.round(Math.min(...rates)).toLocaleString('en'), 10)}` +
      `${pad(Math.round(Math.max(...rates)).toLocaleString('en'), 10)}${pad((1e6 / m).toFixed(1), 10)}${pad(((m * v.bytes) / SPANS / 1e6).toFixed(1), 10)}`,
  );
}
console.log(
  `\nsame-run ratio walker / protobufjs: median ${median(ratios.walkerVsProtobufjs).toFixed(2)} (${ratios.walkerVsProtobufjs.map((r) => r.toFixed(2)).join(', ')})`,
);
console.log(
  `same-run ratio json / protobufjs:   median ${median(ratios.jsonVsProtobufjs).toFixed(2)} (${ratios.jsonVsProtobufjs.map((r) => r.toFixed(2)).join(', ')})`,
);
