/**
 * Reliability catalog rows 5 and 6: a client that sends its headers or its body a byte at a time
 * is answered 408 and closed once REQUEST_TIMEOUT_MS has passed. Node checks the timeouts in a sweep
 * of open connections and, left to its defaults, swaps a shorter requestTimeout with the 60 s
 * headersTimeout: a trickled body then lived up to 90 s (found by the fault suite's hostile-input).
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../helpers/db.js';
import { startTestServer, type TestServer } from '../../helpers/server.js';

const db = useTestDatabase();
const REQUEST_TIMEOUT_MS = 1500;
/** The sweep runs every second; the rest is room for a loaded machine. */
const CLOSED_WITHIN_MS = REQUEST_TIMEOUT_MS + 4000;
let server: TestServer;

beforeAll(async () => {
  server = await startTestServer(
    db.connectionString,
    { receive: { requestTimeoutMs: REQUEST_TIMEOUT_MS } },
    { listen: true },
  );
});
afterAll(async () => {
  await server?.close();
});

/** Sends `head`, then one byte of `drip` every 200 ms; resolves with the status line's code and when it closed. */
function slowClient(head: string, drip: string): Promise<{ status: number; closedAfterMs: number }> {
  const { port } = new URL(server.url);
  return new Promise((resolve) => {
    const started = Date.now();
    const socket = net.connect(Number(port), '127.0.0.1');
    let received = '';
    let at = 0;
    const dripper = setInterval(() => socket.writable && socket.write(drip[at++ % drip.length]), 200);
    const giveUp = setTimeout(() => socket.destroy(), 20_000);
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => (received += chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearInterval(dripper);
      clearTimeout(giveUp);
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(received)?.[1] ?? 0), closedAfterMs: Date.now() - started });
    });
    socket.write(head);
  });
}

describe('slow clients', () => {
  it('answers 408 to headers sent a byte at a time (slowloris) once REQUEST_TIMEOUT_MS has passed', async () => {
    const answer = await slowClient('POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\n', 'X-a: b\r\n');
    expect(answer.status).toBe(408);
    expect(answer.closedAfterMs).toBeGreaterThanOrEqual(REQUEST_TIMEOUT_MS - 100);
    expect(answer.closedAfterMs).toBeLessThan(CLOSED_WITHIN_MS);
  });

  it('answers 408 to a body trickled a byte at a time (slow POST) once REQUEST_TIMEOUT_MS has passed', async () => {
    const head =
      'POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-protobuf\r\nContent-Length: 100000\r\n\r\n';
    const answer = await slowClient(head, '\0');
    expect(answer.status).toBe(408);
    expect(answer.closedAfterMs).toBeLessThan(CLOSED_WITHIN_MS);
  });
});
