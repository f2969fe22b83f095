/**
 * Pre-encoded request bodies whose ids are patched in place per request (ids.ts), so every span of
 * every request is unique without re-encoding a body.
 *
 * A template is encoded once (by the OpenTelemetry SDK's serializers, otlp-fixtures.ts) from spans
 * with random ids; then every place where one of those ids occurs is found and remembered: raw
 * bytes in protobuf and in the limit's COPY binary rows, lowercase hex in OTLP/JSON. Ids are 16 / 8
 * random bytes, so an occurrence is an id field (or a parent id, or an attribute quoting the span
 * id, which is then patched along and stays consistent), never a coincidence. Patching request r writes
 * r's ids over every site of a copy of the body, and moves every time in it (times.ts): the body's
 * length never changes.
 */
import { buildRequest, realisticResource, realisticSpans, type FixtureSpan } from '../../test/helpers/otlp-fixtures.js';
import { requestIds } from './ids.js';
import { findTimeSites, patchTimes, requestShiftNs, type BodyFormat, type TimeSite } from './times.js';

export const SPANS_PER_REQUEST = 512;
export const SPANS_PER_TRACE = 16;
export const TEMPLATE_SERVICES = ['checkout', 'cart', 'payment', 'frontend'] as const;

interface Site {
  offset: number;
  trace: boolean; // a trace id (index = t) or a span id (index = i)
  index: number;
}

/** The shape of a template's spans: which trace each span belongs to. */
export interface SpanLayout {
  traceIds: string[]; // template trace ids (hex), by trace index
  spanIds: string[]; // template span ids (hex), by span index
  parentOf: Array<string | undefined>; // template parent span id (hex) by span index
  starts: bigint[]; // span start times (unix ns) by span index
  times: bigint[]; // every time of the spans: starts, ends, event times
}

export class PatchableBody {
  readonly body: Buffer;
  /** Ids are raw bytes in protobuf and COPY binary, lowercase hex in OTLP/JSON. */
  readonly hexIds: boolean;
  readonly traces: number;
  readonly spans: number;
  readonly #sites: Site[];
  readonly #times: TimeSite[];

  /** Finds every site of the layout's ids and times in `body`; throws when one is missing or too rare. */
  constructor(body: Buffer, format: BodyFormat, layout: SpanLayout) {
    this.body = body;
    this.hexIds = format === 'json';
    this.traces = layout.traceIds.length;
    this.spans = layout.spanIds.length;
    const sites: Site[] = [];
    const children = new Map<string, number>();
    for (const parent of layout.parentOf) if (parent) children.set(parent, (children.get(parent) ?? 0) + 1);
    const spansOfTrace = new Map<number, number>();
    layout.spanIds.forEach((_, i) => {
      const t = Math.floor(i / SPANS_PER_TRACE);
      spansOfTrace.set(t, (spansOfTrace.get(t) ?? 0) + 1);
    });
    layout.traceIds.forEach((id, t) => {
      const found = this.#find(id, true, t, sites);
      if (found < (spansOfTrace.get(t) ?? 0)) throw new Error(`template: trace ${t} found ${found} times`);
    });
    layout.spanIds.forEach((id, i) => {
      const found = this.#find(id, false, i, sites);
      const expected = 1 + (children.get(id) ?? 0);
      if (found < expected || (!this.hexIds && found !== expected)) {
        throw new Error(`template: span ${i} found ${found} times, expected ${expected}`);
      }
    });
    this.#sites = sites.sort((a, b) => a.offset - b.offset);
    this.#times = findTimeSites(body, format, layout.times, layout.starts);
  }

  #find(idHex: string, trace: boolean, index: number, sites: Site[]): number {
    const needle = this.hexIds ? Buffer.from(idHex, 'latin1') : Buffer.from(idHex, 'hex');
    let count = 0;
    for (let at = this.body.indexOf(needle); at !== -1; at = this.body.indexOf(needle, at + needle.length)) {
      sites.push({ offset: at, trace, index });
      count++;
    }
    return count;
  }

  get siteCount(): number {
    return this.#sites.length;
  }

  /** Writes request r's ids and times into `target`, a copy of body. */
  patchInto(target: Buffer, tag: number, r: number): void {
    const ids = requestIds(tag, r, this.traces, this.spans);
    if (!this.hexIds) {
      for (const s of this.#sites) {
        if (s.trace) ids.traceIds.copy(target, s.offset, s.index * 16, s.index * 16 + 16);
        else ids.spanIds.copy(target, s.offset, s.index * 8, s.index * 8 + 8);
      }
    } else {
      for (const s of this.#sites) {
        if (s.trace) target.write(ids.traceHex.substring(s.index * 32, s.index * 32 + 32), s.offset, 'latin1');
        else target.write(ids.spanHex.substring(s.index * 16, s.index * 16 + 16), s.offset, 'latin1');
      }
    }
    patchTimes(target, this.#times, requestShiftNs(r));
  }

  /** A new body with request r's ids. */
  patched(tag: number, r: number): Buffer {
    const copy = Buffer.from(this.body);
    this.patchInto(copy, tag, r);
    return copy;
  }
}

export function layoutOf(spans: FixtureSpan[]): SpanLayout {
  const traceIds: string[] = [];
  for (const [i, span] of spans.entries()) {
    const t = Math.floor(i / SPANS_PER_TRACE);
    if (traceIds[t] === undefined) traceIds[t] = span.traceId;
    if (traceIds[t] !== span.traceId) throw new Error('template spans are not grouped 16 per trace');
  }
  const starts = spans.map((s) => s.startTimeUnixNano);
  const times = spans.flatMap((s) => [
    s.startTimeUnixNano,
    s.endTimeUnixNano,
    ...(s.events ?? []).map((e) => e.timeUnixNano),
  ]);
  return { traceIds, spanIds: spans.map((s) => s.spanId), parentOf: spans.map((s) => s.parentSpanId), starts, times };
}

/** One request's worth of realistic spans, encoded both ways, with its layout. */
export interface Template {
  service: string;
  spans: FixtureSpan[];
  layout: SpanLayout;
  protobuf: PatchableBody;
  json: PatchableBody;
}

/**
 * `count` templates, one per service (cycling over TEMPLATE_SERVICES), 512 spans each, start times
 * in the minute before nowMs. Spans: 10 attributes, a resource of 8, an event on ~30 %, a link on
 * ~10 %, ~5 % errors (realisticSpans).
 */
export function buildTemplates(count: number, nowMs = Date.now()): Template[] {
  return Array.from({ length: count }, (_, k) => {
    const service = TEMPLATE_SERVICES[k % TEMPLATE_SERVICES.length];
    const spans = realisticSpans(SPANS_PER_REQUEST, {
      nowMs,
      seed: 1000 + k,
      spansPerTrace: SPANS_PER_TRACE,
      resource: realisticResource(service),
    });
    // Seeded: the same bodies every run. Every id site is overwritten per request anyway.
    const layout = layoutOf(spans);
    const { protobuf, json } = buildRequest({ spans });
    return {
      service,
      spans,
      layout,
      protobuf: new PatchableBody(protobuf, 'protobuf', layout),
      json: new PatchableBody(Buffer.from(json, 'utf8'), 'json', layout),
    };
  });
}

/** Which template request r uses. */
export function templateOf<T>(templates: readonly T[], r: number): T {
  return templates[r % templates.length];
}
