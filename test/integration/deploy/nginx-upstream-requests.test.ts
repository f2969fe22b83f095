/**
 * What the production deploy/nginx/nginx.conf sends upstream, seen by three recording HTTP servers
 * in place of the replicas: inbound tenant headers removed (ingest, WebSocket upgrade and query
 * locations alike), forwarding headers set by nginx (not copied from the client), HTTP/1.1 on
 * kept-alive connections, request bodies streamed while the client is still sending, and an
 * access log that carries no query string (a browser's ?access_token=…).
 */
import http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from '../../helpers/https-request.js';
import { renderNginxConfig, startNginx, type RunningNginx } from '../../helpers/nginx.js';

interface Seen {
  method: string;
  url: string;
  httpVersion: string;
  headers: http.IncomingHttpHeaders;
  socket: string;
  firstBodyByteAt?: number;
  bodyBytes: number;
}

const seen: Seen[] = [];
const upstreams: http.Server[] = [];
let nginx: RunningNginx;
let ca: string;

function recordingServer(): http.Server {
  const server = http.createServer((req, res) => {
    const entry: Seen = {
      method: req.method ?? '',
      url: req.url ?? '',
      httpVersion: req.httpVersion,
      headers: req.headers,
      socket: `${req.socket.remotePort}`,
      bodyBytes: 0,
    };
    seen.push(entry);
    req.on('data', (chunk: Buffer) => {
      entry.firstBodyByteAt ??= Date.now();
      entry.bodyBytes += chunk.length;
    });
    req.on('end', () => res.end('ok'));
  });
  // A WebSocket upgrade: record it, switch protocols, then end the connection.
  server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket) => {
    seen.push({
      method: req.method ?? '',
      url: req.url ?? '',
      httpVersion: req.httpVersion,
      headers: req.headers,
      socket: `${socket.remotePort}`,
      bodyBytes: 0,
    });
    socket.end('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
  });
  return server;
}

beforeAll(async () => {
  for (let i = 0; i < 3; i++) {
    const server = recordingServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    upstreams.push(server);
  }
  nginx = await startNginx(await renderNginxConfig(upstreams.map((s) => (s.address() as net.AddressInfo).port)));
  ca = nginx.rendered.caCert;
});

afterAll(async () => {
  await nginx?.stop();
  for (const server of upstreams) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

const SPOOFED = {
  'x-scope-orgid': 'victim',
  'x-tenant': 'victim',
  'x-tenant-id': 'victim',
  'x-forwarded-for': '203.0.113.9',
  'x-forwarded-proto': 'http',
  'x-request-id': 'chosen-by-client',
};

function expectForwardedByNginx(entry: Seen | undefined): void {
  expect(entry, 'the request reached an upstream').toBeDefined();
  for (const name of ['x-scope-orgid', 'x-tenant', 'x-tenant-id']) expect(entry!.headers[name], name).toBeUndefined();
  expect(entry!.headers['x-forwarded-for']).toBe('127.0.0.1');
  expect(entry!.headers['x-forwarded-proto']).toBe('https');
  expect(entry!.headers['x-request-id']).toMatch(/^[0-9a-f]{32}$/);
  expect(entry!.httpVersion).toBe('1.1');
}

/** A WebSocket handshake through nginx over TLS; resolves with the status line nginx relayed. */
function upgrade(path: string, headers: Record<string, string>): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect(
      { host: '127.0.0.1', port: nginx.rendered.ports.get(443)!, servername: 'localhost', ca },
      () => {
        const lines = [
          `GET ${path} HTTP/1.1`,
          'Host: localhost',
          'Upgrade: websocket',
          'Connection: Upgrade',
          'Sec-WebSocket-Version: 13',
          'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
          ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
        ];
        socket.write(`${lines.join('\r\n')}\r\n\r\n`);
      },
    );
    let answer = '';
    socket.on('data', (chunk: Buffer) => {
      answer += chunk.toString('latin1');
      if (!answer.includes('\r\n\r\n')) return;
      resolve(answer.split('\r\n')[0]);
      socket.destroy();
    });
    socket.on('error', reject);
  });
}

describe('what nginx sends to the replicas', () => {
  it('removes inbound tenant headers and sets its own forwarding headers on ingest and query requests', async () => {
    for (const path of ['/v1/traces', '/api/traces/0123456789abcdef0123456789abcdef']) {
      const before = seen.length;
      const res = await request(`${nginx.url()}${path}`, {
        ca,
        method: path === '/v1/traces' ? 'POST' : 'GET',
        headers: SPOOFED,
        body: path === '/v1/traces' ? Buffer.from('body') : undefined,
      });
      expect(res.status, path).toBe(200);
      const entry = seen.slice(before).find((e) => e.url === path);
      expectForwardedByNginx(entry);
      expect(entry!.headers.connection ?? 'keep-alive').toBe('keep-alive'); // never "close": kept alive
    }
  });

  it('removes them on the WebSocket upgrade too, and passes Upgrade and Connection there only', async () => {
    const before = seen.length;
    const status = await upgrade('/v1/traces/ws?access_token=secret-token-value', SPOOFED);
    expect(status).toBe('HTTP/1.1 101 Switching Protocols');
    const entry = seen.slice(before).find((e) => e.url.startsWith('/v1/traces/ws'));
    expectForwardedByNginx(entry);
    expect(entry!.headers.upgrade).toBe('websocket');
    expect(entry!.headers.connection).toBe('upgrade');

    // Elsewhere an Upgrade header is not passed on.
    const other = seen.length;
    await upgrade('/v1/traces', {});
    const plain = seen.slice(other).find((e) => e.url === '/v1/traces');
    expect(plain?.headers.upgrade).toBeUndefined();
  });

  it('reuses upstream connections (HTTP/1.1 keepalive) across requests', async () => {
    // One client connection, so one nginx worker serves every request: it needs at most one
    // upstream connection per replica when it keeps them alive.
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca });
    const before = seen.length;
    try {
      for (let i = 0; i < 30; i++) {
        const res = await request(`${nginx.url()}/v1/traces`, { agent, ca, body: Buffer.from(`n${i}`) });
        expect(res.status).toBe(200);
      }
    } finally {
      agent.destroy();
    }
    const sockets = new Set(seen.slice(before).map((e) => e.socket));
    expect(sockets.size).toBeLessThanOrEqual(upstreams.length);
  });

  it('streams a chunked request body upstream while the client is still sending it', async () => {
    const before = seen.length;
    const lastChunkAt = { value: 0 };
    const sending = request(`${nginx.url()}/v1/traces`, {
      ca,
      headers: { 'content-type': 'application/x-protobuf' },
      chunks: [{ data: Buffer.alloc(64 * 1024, 1) }, { data: Buffer.alloc(64 * 1024, 2), pauseMs: 1500 }],
    });
    setTimeout(() => (lastChunkAt.value = Date.now()), 1500);
    expect((await sending).status).toBe(200);
    const entry = seen.slice(before).find((e) => e.url === '/v1/traces');
    expect(entry?.headers['transfer-encoding']).toBe('chunked');
    expect(entry?.bodyBytes).toBe(128 * 1024);
    // The first part arrived upstream well before the client sent the last one.
    expect(lastChunkAt.value - entry!.firstBodyByteAt!).toBeGreaterThan(1000);
  });

  it('logs one JSON object per request, with the path only: no query string, no token', async () => {
    const lines = await nginx.accessLog();
    expect(lines.length).toBeGreaterThan(30);
    const ws = lines.find((line) => line.uri === '/v1/traces/ws');
    expect(ws).toMatchObject({ method: 'GET', status: 101, tls: expect.stringMatching(/^TLSv1\.[23]$/) });
    expect(JSON.stringify(lines)).not.toContain('secret-token-value');
    expect(JSON.stringify(lines)).not.toContain('access_token');
    for (const line of lines) {
      expect(Object.keys(line)).toEqual(
        expect.arrayContaining(['time', 'request_id', 'status', 'request_time', 'upstream', 'upstream_status']),
      );
    }
  });
});
