import { JsonTraceSerializer, ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { describe, expect, it } from 'vitest';
import { ERRORS, TracehouseError } from '../../../server/errors.js';
import type { RefusalCode } from '../../../server/batch/batcher.js';
import {
  decideForError,
  decideForRefusal,
  replyForError,
  replyForOutcome,
  replyForRefusal,
  toTracehouseError,
} from '../../../server/receive/otlp-status.js';

const committed = { accepted: 5, rejected: 0, rejectMessage: '', duplicates: 0 };

describe('OTLP status mapping', () => {
  it('answers a committed protobuf request with 200 and an empty ExportTraceServiceResponse', () => {
    const reply = replyForOutcome(committed, 'protobuf');
    expect(reply.statusCode).toBe(200);
    expect(reply.contentType).toBe('application/x-protobuf');
    expect(ProtobufTraceSerializer.deserializeResponse(reply.body as Buffer)).toEqual({});
  });

  it('encodes partial success so the OpenTelemetry JS deserializer reads rejectedSpans and errorMessage', () => {
    const outcome = { accepted: 3, rejected: 2, rejectMessage: '2 spans rejected: 2 invalid_span_id', duplicates: 0 };
    const proto = ProtobufTraceSerializer.deserializeResponse(replyForOutcome(outcome, 'protobuf').body as Buffer);
    expect(Number(proto.partialSuccess?.rejectedSpans)).toBe(2);
    expect(proto.partialSuccess?.errorMessage).toBe(outcome.rejectMessage);
    const json = replyForOutcome(outcome, 'json');
    expect(json.contentType).toBe('application/json');
    const parsed = JsonTraceSerializer.deserializeResponse(new TextEncoder().encode(json.body as string));
    expect(parsed.partialSuccess).toEqual({ rejectedSpans: '2', errorMessage: outcome.rejectMessage });
  });

  it('answers a transient refusal with 503, Retry-After and gRPC UNAVAILABLE', () => {
    const reply = replyForError(new TracehouseError('TH_ERR_BATCH_QUEUE_FULL'), 'json', 1);
    expect(reply.statusCode).toBe(503);
    expect(reply.retryAfterS).toBe(1);
    expect(JSON.parse(reply.body as string)).toMatchObject({ code: 14 });
  });

  it('answers a refusal before reading exactly as its error, from the same object each time', () => {
    const codes: RefusalCode[] = [
      'TH_ERR_BATCH_QUEUE_FULL',
      'TH_ERR_BATCH_SHUTTING_DOWN',
      'TH_ERR_STORAGE_UNAVAILABLE',
    ];
    for (const code of codes) {
      for (const retryAfterS of [1, 2]) {
        expect(decideForRefusal(code, retryAfterS)).toEqual(decideForError(new TracehouseError(code), retryAfterS));
        expect(decideForRefusal(code, retryAfterS)).toBe(decideForRefusal(code, retryAfterS));
        for (const format of ['protobuf', 'json'] as const) {
          const reply = replyForRefusal(code, format, retryAfterS);
          expect(reply).toEqual(replyForError(new TracehouseError(code), format, retryAfterS));
          expect(replyForRefusal(code, format, retryAfterS)).toBe(reply);
        }
      }
    }
  });

  it('answers a permanent problem without Retry-After, with a google.rpc.Status in protobuf', () => {
    const reply = replyForError(new TracehouseError('TH_ERR_DECODE_BAD_PROTOBUF', 'truncated varint'), 'protobuf', 1);
    expect(reply.statusCode).toBe(400);
    expect(reply.retryAfterS).toBeUndefined();
    const body = reply.body as Buffer;
    expect(body[0]).toBe(0x08); // field 1 (code), varint
    expect(body[1]).toBe(3); // INVALID_ARGUMENT
    expect(body.subarray(4).toString()).toBe('TH_ERR_DECODE_BAD_PROTOBUF: truncated varint');
  });

  it('maps fastify and zlib errors to our codes', () => {
    expect(toTracehouseError({ code: 'FST_ERR_CTP_INVALID_MEDIA_TYPE' }).httpStatus).toBe(415);
    expect(toTracehouseError({ code: 'FST_ERR_CTP_BODY_TOO_LARGE' }).httpStatus).toBe(413);
    expect(toTracehouseError({ code: 'Z_DATA_ERROR', message: 'incorrect header check' }).code).toBe(
      'TH_ERR_RECEIVE_BAD_GZIP',
    );
    expect(toTracehouseError(new Error('boom')).code).toBe('TH_ERR_INTERNAL');
  });

  it('never answers 500 for a retryable code: every retryable code is a 503 or 429', () => {
    for (const [code, spec] of Object.entries(ERRORS)) {
      if (spec.retryable) expect([429, 503], code).toContain(spec.httpStatus);
      else expect([429, 502, 503, 504], code).not.toContain(spec.httpStatus);
    }
  });
});
