/**
 * HTTP clients that misbehave on purpose: bodies streamed without a length, gzip bombs inflated
 * on the fly (the 1 GiB is never held by the client), and connections that send headers or a body
 * one byte at a time. Each resolves with what the server answered and when, never rejects.
 */
import net from 'node:net';
import { Readable } from 'node:stream';
import { constants, createGzip } from 'node:zlib';

export interface RawAnswer {
  /** HTTP status, or 0 when the connection ended without one. */
  status: number;
  /** ms from the first byte sent to the answer (or to the connection's end). */
  ms: number;
  body: string;
  /** Request body bytes written before the answer (after compression, for gzip). */
  bytesSent: number;
  error?: string;
}

export interface PostOptions {
  contentType?: string;
  headers?: Record<string, string>;
  /** Stream chunked (the default for a stream) or send Content-Length (the default for a Buffer). */
  chunked?: boolean;
  timeoutMs?: number;
  /**
   * Wait this long after the headers before sending the body, as a client using
   * `Expect: 100-continue` does: a server that refuses on the headers alone then closes a socket
   * with nothing unread, instead of resetting one the body is still arriving on (and the reset can
   * lose its answer before the client reads it).
   */
  pauseBeforeBodyMs?: number;
}

/**
 * POSTs `source` to `<baseUrl>/v1/traces` over a raw socket and resolves on the answer. The upload
 * stops as soon as the status line arrives, and a server that answers early and closes while the
 * body is still being sent (413) is read correctly: the answer is parsed from what arrived, not
 * lost to the EPIPE of the next write, as it would be with node:http.
 */
export function postRaw(baseUrl: string, source: Buffer | Readable, options: PostOptions = {}): Promise<RawAnswer> {
  const { hostname, port } = new URL(baseUrl);
  const chunked = options.chunked ?? !Buffer.isBuffer(source);
  const headers: Record<string, string> = {
    host: `${hostname}:${port}`,
    'content-type': options.contentType ?? 'application/x-protobuf',
    ...(chunked ? { 'transfer-encoding': 'chunked' } : {}),
    ...(Buffer.isBuffer(source) && !chunked ? { 'content-length': String(source.length) } : {}),
    ...options.headers,
  };
  const head = `POST /v1/traces HTTP/1.1\r\n${Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('')}\r\n`;
  const stream = Buffer.isBuffer(source) ? Readable.from(chunksOf(source, 64 * 1024)) : source;
  const started = performance.now();
  return new Promise((resolve) => {
    const socket = net.connect(Number(port), hostname);
    let received = Buffer.alloc(0);
    let bytesSent = 0;
    let settled = false;
    let writeError: string | undefined;
    const finish = (): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      stream.destroy();
      socket.destroy();
      const text = received.toString('latin1');
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(text);
      const body = text.slice(text.indexOf('\r\n\r\n') + 4);
      const error = status ? undefined : (writeError ?? 'closed without an answer');
      resolve({
        status: status ? Number(status[1]) : 0,
        ms: Math.round(performance.now() - started),
        body,
        bytesSent,
        error,
      });
    };
    const timer = setTimeout(() => {
      writeError = 'client timeout';
      finish();
    }, options.timeoutMs ?? 60_000);
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (responseComplete(received)) finish();
    });
    socket.on('error', (err: NodeJS.ErrnoException) => (writeError ??= err.code ?? err.message));
    socket.on('close', finish);
    socket.write(head);
    void (async () => {
      if (options.pauseBeforeBodyMs) await new Promise((resolve) => setTimeout(resolve, options.pauseBeforeBodyMs));
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        if (settled || received.length > 0) return; // answered: stop uploading
        const framed = chunked
          ? [Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n')]
          : [chunk];
        bytesSent += chunk.length;
        if (!socket.write(Buffer.concat(framed))) await drained(socket);
      }
      if (chunked && !settled) socket.write('0\r\n\r\n');
    })().catch(() => undefined);
  });
}

/** Resolves when the socket can take more, or has closed. */
function drained(socket: net.Socket): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      socket.off('drain', done).off('close', done);
      resolve();
    };
    socket.on('drain', done).on('close', done);
  });
}

/** True once the header block and its Content-Length body have arrived (others end with the connection). */
function responseComplete(received: Buffer): boolean {
  const end = received.indexOf('\r\n\r\n');
  if (end < 0) return false;
  const length = /\r\ncontent-length:\s*(\d+)/i.exec(received.subarray(0, end).toString('latin1'));
  return length !== null && received.length >= end + 4 + Number(length[1]);
}

function* chunksOf(buffer: Buffer, size: number): Generator<Buffer> {
  for (let at = 0; at < buffer.length; at += size) yield buffer.subarray(at, at + size);
}

/** `total` zero bytes produced lazily, `chunk` at a time (never held whole). */
export function zeros(total: number, chunk = 1024 * 1024): Readable {
  const block = Buffer.alloc(chunk);
  let left = total;
  return new Readable({
    read() {
      if (left <= 0) {
        this.push(null);
        return;
      }
      const size = Math.min(chunk, left);
      left -= size;
      this.push(size === chunk ? block : block.subarray(0, size));
    },
  });
}

/** A gzip stream of `inflatedBytes` zero bytes, compressed as it is read (back-pressured). */
export function gzipBomb(inflatedBytes: number): Readable {
  return zeros(inflatedBytes).pipe(createGzip({ level: constants.Z_BEST_SPEED }));
}

/** Compresses `inflatedBytes` zeros into memory: the bomb as a sender with a Content-Length has it. */
export async function gzipBombBuffer(inflatedBytes: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of zeros(inflatedBytes).pipe(createGzip({ level: constants.Z_BEST_COMPRESSION }))) {
    parts.push(part as Buffer);
  }
  return Buffer.concat(parts);
}

export interface SlowAnswer {
  /** The status line's code, or 0 when the server closed without answering. */
  status: number;
  /** ms from the connection to its close by the server. */
  closedAfterMs: number;
  /** Bytes the client managed to trickle before the close. */
  bytesSent: number;
}

/**
 * One slow client on a raw socket: `head` is sent at once, then `drip` one byte every `everyMs`
 * (slowloris: an unfinished header; slow POST: a body behind a complete header). Resolves when the
 * server closes the connection, or with closedAfterMs = -1 when it is still open after `giveUpMs`.
 */
export function slowClient(
  baseUrl: string,
  head: string,
  drip: string,
  everyMs: number,
  giveUpMs: number,
): Promise<SlowAnswer> {
  const { hostname, port } = new URL(baseUrl);
  return new Promise((resolve) => {
    const started = performance.now();
    const socket = net.connect(Number(port), hostname);
    let received = '';
    let bytesSent = 0;
    let at = 0;
    const dripper = setInterval(() => {
      if (socket.writable) socket.write(drip[at++ % drip.length], () => (bytesSent += 1));
    }, everyMs);
    const giveUp = setTimeout(() => done(-1), giveUpMs);
    const done = (closedAfterMs: number): void => {
      clearInterval(dripper);
      clearTimeout(giveUp);
      socket.destroy();
      const match = /^HTTP\/1\.[01] (\d{3})/.exec(received);
      resolve({ status: match ? Number(match[1]) : 0, closedAfterMs, bytesSent });
    };
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => (received += chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => done(Math.round(performance.now() - started)));
    socket.write(head, () => (bytesSent += head.length));
  });
}

/** A request line and the start of a header block that never ends. */
export const SLOWLORIS_HEAD = 'POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-protobuf\r\n';
export const SLOWLORIS_DRIP = 'X-a: b\r\n';

/** A complete header block announcing a body that then arrives a byte at a time. */
export function slowPostHead(contentLength: number): string {
  return (
    'POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-protobuf\r\n' +
    `Content-Length: ${contentLength}\r\n\r\n`
  );
}
