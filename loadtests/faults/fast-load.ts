/**
 * A ledger-keeping OTLP/HTTP load generator cheap enough to offer many times the server's capacity
 * from the same 2-core machine. It behaves like test/helpers/otlp-load.ts's OtlpLoad (same ledger
 * types, same retry rules: 429/502/503/504 and connection errors are resent, same body, after
 * Retry-After or `retryDelayMs`), but does not encode each request: it encodes a few realistic
 * requests once (the OpenTelemetry SDK's serializer) and, per request, copies one and overwrites
 * every trace id and span id with fresh random bytes (parent ids follow their span). Encoding 512
 * spans costs ~25 ms of CPU; patching a copy costs well under 1 ms.
 */
import { randomFillSync } from 'node:crypto';
import { OtlpLoad, type OtlpLoadOptions } from '../../test/helpers/otlp-load.js';
import { buildRequest, realisticResource, realisticSpans } from '../../test/helpers/otlp-fixtures.js';

/** OtlpLoad's options; every request is resent until acknowledged (no attempt cap). */
export type FastLoadOptions = Omit<OtlpLoadOptions, 'maxAttempts'>;

interface Template {
  body: Buffer;
  /** Each distinct id: its length and every offset where its bytes occur in the body. */
  ids: Array<{ length: number; offsets: number[] }>;
  /** Per span: index into ids of its trace id and of its span id. */
  spans: Array<{ trace: number; span: number }>;
  /** Bytes of all ids together. */
  idBytes: number;
}

function offsetsOf(body: Buffer, hex: string): number[] {
  const needle = Buffer.from(hex, 'hex');
  const offsets: number[] = [];
  for (let at = body.indexOf(needle); at >= 0; at = body.indexOf(needle, at + 1)) offsets.push(at);
  return offsets;
}

function buildTemplate(spansPerRequest: number, service: string): Template {
  for (;;) {
    const fixture = realisticSpans(spansPerRequest, { nowMs: Date.now(), resource: realisticResource(service) });
    const body = buildRequest({ spans: fixture }).protobuf;
    const index = new Map<string, number>();
    const ids: Template['ids'] = [];
    const idOf = (hex: string): number => {
      let i = index.get(hex);
      if (i === undefined) {
        i = ids.push({ length: hex.length / 2, offsets: offsetsOf(body, hex) }) - 1;
        index.set(hex, i);
      }
      return i;
    };
    const spans = fixture.map((s) => ({ trace: idOf(s.traceId), span: idOf(s.spanId) }));
    // Each span id occurs as its own id plus once per child naming it as parent; each trace id once
    // per span. Any other count means random bytes collided with other content: draw again.
    const expected = new Map<number, number>();
    for (const [n, s] of fixture.entries()) {
      expected.set(spans[n].trace, (expected.get(spans[n].trace) ?? 0) + 1);
      expected.set(spans[n].span, (expected.get(spans[n].span) ?? 0) + 1);
      if (s.parentSpanId !== undefined) {
        expected.set(idOf(s.parentSpanId), (expected.get(idOf(s.parentSpanId)) ?? 0) + 1);
      }
    }
    if ([...expected].every(([i, n]) => ids[i].offsets.length === n)) {
      return { body, ids, spans, idBytes: ids.reduce((sum, id) => sum + id.length, 0) };
    }
  }
}

export class FastLoad extends OtlpLoad {
  readonly #templates: Template[];
  #next = 0;

  constructor(options: FastLoadOptions) {
    // No attempt cap: a request is resent until acknowledged or the load is stopped.
    super({ retryDelayMs: 1000, attemptTimeoutMs: 15_000, maxAttempts: Number.MAX_SAFE_INTEGER, ...options });
    this.#templates = ['checkout', 'cart', 'catalog', 'payments'].map((service) =>
      buildTemplate(options.spansPerRequest, service),
    );
  }

  /** A template copy with new ids, and its span keys as otlp-load.ts spells them. */
  protected override nextRequest(): { spanKeys: string[]; body: Uint8Array<ArrayBuffer> } {
    const template = this.#templates[this.#next++ % this.#templates.length];
    const body = new Uint8Array(template.body.length);
    body.set(template.body);
    // One draw for all ids of the request: a randomFillSync per 8-byte id cost more than the rest.
    const random = randomFillSync(Buffer.allocUnsafe(template.idBytes));
    let at = 0;
    const fresh = template.ids.map(({ length, offsets }) => {
      const id = random.subarray(at, (at += length));
      for (const offset of offsets) body.set(id, offset);
      return id.toString('hex');
    });
    return { spanKeys: template.spans.map((s) => `${fresh[s.trace]}:${fresh[s.span]}`), body };
  }
}
