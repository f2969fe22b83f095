/**
 * OTLP/HTTP ingest load through autocannon's API (closed loop: `connections` requests in flight,
 * each connection sends its next request when the previous one is answered). Bodies come from a
 * BodySource: every request gets a new request number r and a body carrying r's ids. The ledger
 * records per r what was sent and what came back (autocannon's onResponse runs in order per
 * connection, so the connection's context knows which r an answer belongs to).
 */
import { gzip } from 'node:zlib';
import { promisify } from 'node:util';
import autocannon from 'autocannon';
import type { Ledger } from './ledger.js';
import { templateOf, type Template } from './templates.js';

const gzipAsync = promisify(gzip);

export type IngestEncoding = 'protobuf' | 'json' | 'protobuf-gzip';

export interface Body {
  r: number;
  body: Buffer;
}

/** Where request bodies come from; next() is undefined when a finite source is used up. */
export interface BodySource {
  readonly encoding: IngestEncoding;
  readonly headers: Record<string, string>;
  /** How many more bodies it can give; Infinity for sources that patch on demand. */
  readonly remaining: number;
  next(): Body | undefined;
}

const CONTENT_TYPE = { protobuf: 'application/x-protobuf', json: 'application/json' } as const;

/** Patches a template per request: protobuf or OTLP/JSON, uncompressed. */
export function patchingSource(templates: Template[], ledger: Ledger, encoding: 'protobuf' | 'json'): BodySource {
  return {
    encoding,
    headers: { 'content-type': CONTENT_TYPE[encoding] },
    remaining: Infinity,
    next() {
      const r = ledger.take();
      return { r, body: templateOf(templates, r)[encoding].patched(ledger.tag, r) };
    },
  };
}

/**
 * gzip cannot be patched in place (every byte after a change differs), and compressing in the load
 * generator would take CPU from the server it measures. So `count` distinct bodies are compressed
 * before the run (zlib level 6, the default, what the OpenTelemetry exporters use), each with its
 * own request number; the run ends early when they are used up.
 */
export async function gzipPoolSource(templates: Template[], ledger: Ledger, count: number): Promise<BodySource> {
  const bodies: Body[] = new Array(count);
  let made = 0;
  const worker = async (): Promise<void> => {
    while (made < count) {
      const k = made++;
      const r = ledger.take();
      bodies[k] = { r, body: await gzipAsync(templateOf(templates, r).protobuf.patched(ledger.tag, r), { level: 6 }) };
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  let next = 0;
  return {
    encoding: 'protobuf-gzip',
    headers: { 'content-type': CONTENT_TYPE.protobuf, 'content-encoding': 'gzip' },
    get remaining() {
      return bodies.length - next;
    },
    next: () => (next < bodies.length ? bodies[next++] : undefined),
  };
}

export interface HttpLoadOptions {
  url: string; // http(s)://host:port
  connections: number;
  seconds: number; // whole run, warm-up included
  timeoutS?: number;
}

export interface HttpLoadRun {
  startedAt: number; // performance.now() at start
  endedAt: number; // when the load stopped (duration over, or bodies used up)
  exhausted: boolean;
}

/** Runs the load until `seconds` pass (or the source is used up); answers go to the ledger. */
export async function runHttpLoad(source: BodySource, ledger: Ledger, options: HttpLoadOptions): Promise<HttpLoadRun> {
  const finite = Number.isFinite(source.remaining);
  const startedAt = performance.now();
  let timer: NodeJS.Timeout | undefined;
  await new Promise<void>((resolve, reject) => {
    const instance = autocannon(
      {
        url: options.url,
        connections: options.connections,
        timeout: options.timeoutS ?? 30,
        // With a finite source, `amount` stops each connection before it would run dry.
        ...(finite ? { amount: Math.max(options.connections, source.remaining) } : { duration: options.seconds }),
        requests: [
          {
            method: 'POST',
            path: '/v1/traces',
            headers: source.headers,
            setupRequest(req, context) {
              const item = source.next();
              if (item === undefined) throw new Error('the body source ran dry before autocannon stopped');
              context.r = item.r;
              ledger.sent(item.r, item.body.length);
              return { ...req, body: item.body };
            },
            onResponse(status, body, context) {
              const partial =
                status === 200 && body.length > 0 && (source.encoding !== 'json' || body.includes('rejected'));
              ledger.answered(context.r as number, status, partial);
            },
          },
        ],
      },
      (err) => (err ? reject(err) : resolve()),
    );
    if (finite) timer = setTimeout(() => instance.stop(), options.seconds * 1000);
  }).finally(() => clearTimeout(timer));
  const deadline = startedAt + options.seconds * 1000;
  const endedAt = Math.min(performance.now(), deadline);
  return { startedAt, endedAt, exhausted: finite && endedAt < deadline - 1500 };
}
