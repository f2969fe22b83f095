import { describe, expect, it } from 'vitest';
import { encodeBinaryFrame, encodeTextFrame, parseAck } from '../../../client/ws-protocol.js';
import { TracehouseError } from '../../../server/errors.js';
import {
  decideForError,
  decideForOutcome,
  encodeWebSocketAck,
  replyForError,
} from '../../../server/receive/otlp-status.js';
import { CloseCode, parseFrame } from '../../../server/receive/ws-envelope.js';

const body = Buffer.from([0x0a, 0x02, 0x0a, 0x00]);

describe('WebSocket envelope parsing', () => {
  it('reads the 8-byte big-endian sequence id of a binary frame and leaves the protobuf body as a view', () => {
    const frame = Buffer.concat([Buffer.from([0, 0, 0, 1, 0, 0, 0, 2]), body]);
    const parsed = parseFrame(frame, true);
    expect(parsed).toEqual({ ok: true, seq: 2 ** 32 + 2, format: 'protobuf', body });
    if (parsed.ok) expect(parsed.body.buffer).toBe(frame.buffer);
  });

  it('reads the decimal sequence id and newline of a text frame, leaving the OTLP/JSON body', () => {
    expect(parseFrame(Buffer.from('42\n{"resourceSpans":[]}'), false)).toEqual({
      ok: true,
      seq: 42,
      format: 'json',
      body: Buffer.from('{"resourceSpans":[]}'),
    });
    expect(parseFrame(Buffer.from('9007199254740991\n{}'), false)).toMatchObject({
      ok: true,
      seq: Number.MAX_SAFE_INTEGER,
    });
    expect(parseFrame(Buffer.from('0\n'), false)).toMatchObject({ ok: true, seq: 0, body: Buffer.alloc(0) });
  });

  it.each([
    ['a binary frame of 7 bytes', Buffer.alloc(7), true],
    ['a binary id of 2^53', Buffer.from([0, 0x20, 0, 0, 0, 0, 0, 0]), true],
    ['a binary id of 2^64 - 1', Buffer.alloc(8, 0xff), true],
    ['a text frame without a newline', Buffer.from('{"resourceSpans":[]}'), false],
    ['a text frame with an empty id', Buffer.from('\n{}'), false],
    ['a text id with a sign', Buffer.from('-1\n{}'), false],
    ['a text id with spaces', Buffer.from(' 1\n{}'), false],
    ['a text id of 17 digits', Buffer.from('12345678901234567\n{}'), false],
    ['a text id of 2^53', Buffer.from('9007199254740992\n{}'), false],
  ])('refuses %s with close code 1007 and a reason', (_what, frame, isBinary) => {
    const parsed = parseFrame(frame, isBinary);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) {
      expect(parsed.closeCode).toBe(CloseCode.INVALID_PAYLOAD);
      expect(Buffer.byteLength(parsed.reason)).toBeLessThanOrEqual(123); // the close frame's limit
    }
  });

  it('parses what the browser-safe client encodes, up to the largest sequence id', () => {
    for (const seq of [0, 1, 255, 2 ** 32 - 1, 2 ** 32, Number.MAX_SAFE_INTEGER]) {
      expect(parseFrame(Buffer.from(encodeBinaryFrame(seq, body)), true)).toEqual({
        ok: true,
        seq,
        format: 'protobuf',
        body,
      });
      expect(parseFrame(Buffer.from(encodeTextFrame(seq, '{}')), false)).toMatchObject({
        ok: true,
        seq,
        format: 'json',
      });
    }
    expect(() => encodeBinaryFrame(2 ** 53, body)).toThrow(RangeError);
    expect(() => encodeBinaryFrame(-1, body)).toThrow(RangeError);
  });
});

describe('WebSocket acks from the one status decision', () => {
  it('acks a committed frame with 200 and the accepted count, adding errorMessage only for rejected spans', () => {
    const full = encodeWebSocketAck(
      7,
      decideForOutcome({ accepted: 5, rejected: 0, rejectMessage: '', duplicates: 1 }),
    );
    expect(JSON.parse(full)).toEqual({ seq: 7, status: 200, accepted: 5, rejectedSpans: 0 });
    const partial = decideForOutcome({
      accepted: 3,
      rejected: 2,
      rejectMessage: '2 spans rejected: 2 invalid_span_id',
      duplicates: 0,
    });
    expect(parseAck(encodeWebSocketAck(8, partial))).toEqual({
      seq: 8,
      status: 200,
      accepted: 3,
      rejectedSpans: 2,
      errorMessage: '2 spans rejected: 2 invalid_span_id',
    });
  });

  it('acks a refusal with the status, code, message and Retry-After that HTTP would send', () => {
    const error = new TracehouseError('TH_ERR_BATCH_QUEUE_FULL');
    const ack = parseAck(encodeWebSocketAck(9, decideForError(error, 2)));
    const http = replyForError(error, 'json', 2);
    expect(ack).toEqual({
      seq: 9,
      status: http.statusCode,
      code: 'TH_ERR_BATCH_QUEUE_FULL',
      message: error.message,
      retryable: true,
      retryAfterS: http.retryAfterS,
    });
    expect(JSON.parse(http.body as string).message).toBe(`${ack!.code}: ${ack!.message}`);
  });

  it('acks a permanent problem without retryAfterS, and hides the details of an internal error', () => {
    const bad = parseAck(
      encodeWebSocketAck(1, decideForError(new TracehouseError('TH_ERR_DECODE_BAD_JSON', 'line 1'), 1)),
    );
    expect(bad).toEqual({ seq: 1, status: 400, code: 'TH_ERR_DECODE_BAD_JSON', message: 'line 1', retryable: false });
    const internal = parseAck(encodeWebSocketAck(2, decideForError(new Error('secret stack detail'), 1)));
    expect(internal).toMatchObject({ status: 500, code: 'TH_ERR_INTERNAL', retryable: false });
    expect(internal!.message).not.toMatch(/secret/);
  });

  it('the client ignores text that is not an ack', () => {
    expect(parseAck('not json')).toBeUndefined();
    expect(parseAck('{"seq":"1","status":200}')).toBeUndefined();
    expect(parseAck('null')).toBeUndefined();
  });
});
