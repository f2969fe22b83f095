/**
 * OTLP/HTTP transport: POST /v1/traces with protobuf or JSON bodies, gzip or identity, chunked or
 * with Content-Length. Only moves bytes: decoding, admission and commit are the IngestPipeline's,
 * and the answer is otlp-status's.
 */
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { createGunzip } from 'node:zlib';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { WireFormat } from '../decode/types.js';
import { TracehouseError } from '../errors.js';
import type { IngestPipeline } from './ingest.js';
import { SUPPORTED_ENCODINGS, replyForError, replyForOutcome, replyForRefusal, type OtlpReply } from './otlp-status.js';

export interface OtlpHttpOptions {
  pipeline: IngestPipeline;
  maxBodyBytes: number;
  retryAfterS: number;
}

/** The request's encoding; anything but protobuf is answered in JSON, the readable one. */
export function formatOf(request: FastifyRequest): WireFormat {
  const type = (request.headers['content-type'] ?? '').trimStart().toLowerCase();
  return type.startsWith('application/x-protobuf') ? 'protobuf' : 'json';
}

export function sendOtlpReply(reply: FastifyReply, otlp: OtlpReply): FastifyReply {
  reply.code(otlp.statusCode).header('content-type', otlp.contentType);
  if (otlp.retryAfterS !== undefined) reply.header('retry-after', String(otlp.retryAfterS));
  return reply.send(otlp.body);
}

export async function registerOtlpHttp(app: FastifyInstance, options: OtlpHttpOptions): Promise<void> {
  const { pipeline, maxBodyBytes, retryAfterS } = options;
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(
    ['application/x-protobuf', 'application/json'],
    { parseAs: 'buffer', bodyLimit: maxBodyBytes },
    (_request, body, done) => done(null, body),
  );

  app.setErrorHandler((err, request, reply) => {
    const otlp = replyForError(err, formatOf(request), retryAfterS);
    if (otlp.statusCode >= 500) request.log.error({ err, code: otlp.code }, 'ingest request failed');
    else request.log.info({ code: otlp.code, status: otlp.statusCode }, 'ingest request refused');
    return sendOtlpReply(reply, otlp);
  });

  // Refuse before reading the body when the request would be refused anyway: under overload the
  // event loop must not spend its time receiving and decoding what it cannot admit.
  app.addHook('onRequest', async (request, reply) => {
    const refusal = pipeline.refusalBeforeRead('http');
    if (refusal !== undefined) return sendOtlpReply(reply, replyForRefusal(refusal, formatOf(request), retryAfterS));
    const limited = pipeline.rateLimitBeforeRead(request.tenant, 'http');
    if (limited !== undefined) return sendOtlpReply(reply, replyForError(limited, formatOf(request), retryAfterS));
  });

  app.addHook('preParsing', async (request, _reply, payload) => {
    const encoding = (request.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
    if (encoding === 'identity' || encoding === '') return payload;
    if (encoding !== 'gzip' && encoding !== 'x-gzip') {
      throw new TracehouseError(
        'TH_ERR_RECEIVE_UNSUPPORTED_ENCODING',
        `unsupported Content-Encoding '${encoding.slice(0, 40)}'; supported: ${SUPPORTED_ENCODINGS}`,
      );
    }
    return inflateWithLimit(payload, maxBodyBytes);
  });

  app.post('/v1/traces', { config: { access: 'traces:write' } }, async (request, reply) => {
    const format = formatOf(request);
    const body = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
    const outcome = await pipeline.ingest(body, format, request.tenant, 'http');
    return sendOtlpReply(reply, replyForOutcome(outcome, format));
  });
}

/**
 * gunzip that fails with 413 as soon as the inflated size crosses the limit, and stops inflating:
 * a 1 GiB bomb costs at most `limit` bytes of output, not a gigabyte of CPU work.
 */
function inflateWithLimit(source: Readable, limit: number): Readable {
  const gunzip = createGunzip();
  let inflated = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
      inflated += chunk.length;
      if (inflated > limit) {
        source.unpipe(gunzip);
        gunzip.destroy();
        source.resume(); // discard the rest of the request body
        callback(Object.assign(new TracehouseError('TH_ERR_RECEIVE_BODY_TOO_LARGE'), { statusCode: 413 }) as Error);
        return;
      }
      callback(null, chunk);
    },
  }) as Transform & { receivedEncodedLength: number };
  counter.receivedEncodedLength = 0;
  source.on('data', (chunk: Buffer) => (counter.receivedEncodedLength += chunk.length));
  gunzip.on('error', (err) => {
    source.unpipe(gunzip);
    source.resume();
    counter.destroy(Object.assign(err, { statusCode: 400 }));
  });
  source.pipe(gunzip).pipe(counter);
  return counter;
}
