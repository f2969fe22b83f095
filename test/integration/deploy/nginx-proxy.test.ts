/**
 * Issue #8: the production deploy/nginx/nginx.conf, run by the real nginx in front of three real
 * `tracehouse serve` processes on one test database (test/helpers/nginx.ts renders it: local ports,
 * a test certificate, temporary paths; nothing else changes). OTLP from the real protobuf exporter is
 * spread over all three instances, the WebSocket stream works through the proxy (and stays open past
 * proxy_read_timeout because the server pings), the body limit answers 413, /metrics stays inside,
 * and TLS / redirects / access logs are what the file says.
 */
import { gzipSync } from 'node:zlib';
import tls from 'node:tls';
import { ExportResultCode } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket, { type ClientOptions } from 'ws';
import { WsSpanExporter } from '../../../client/ws-span-exporter.js';
import { WS_SUBPROTOCOL } from '../../../server/receive/ws-envelope.js';
import { ensureDistBuilt } from '../../helpers/build-dist.js';
import { useTestDatabase } from '../../helpers/db.js';
import { request } from '../../helpers/https-request.js';
import { checkNginxConfig, renderNginxConfig, startNginx, type RunningNginx } from '../../helpers/nginx.js';
import { buildRequest, realisticSpans, toReadableSpans } from '../../helpers/otlp-fixtures.js';
import { waitUntil } from '../../helpers/otlp-load.js';
import { ExportLedger, RecordingExporter } from '../../helpers/recording-exporter.js';
import { compareAcknowledged, readStoredSpans } from '../../helpers/stored-spans.js';
import { spawnTracehouse, type TracehouseProcess } from '../../helpers/tracehouse-process.js';
import { binaryFrame } from '../../helpers/ws-client.js';
import { ExportLoad } from '../../helpers/ws-export-load.js';

const MAX_BODY_BYTES = 16 * 1024 * 1024; // the server's default, = client_max_body_size 16m
const PING_MS = 1000; // WS_PING_INTERVAL_MS of these instances, so the keepalive test is short

const db = useTestDatabase();
const instances: TracehouseProcess[] = [];
const started: RunningNginx[] = [];
let nginx: RunningNginx;
let ca: string;

async function startInstance(env: Record<string, string> = {}): Promise<TracehouseProcess> {
  const instance = await spawnTracehouse({ DATABASE_URL: db.connectionString, LOG_LEVEL: 'warn', ...env });
  instances.push(instance);
  await instance.waitReady(30_000);
  return instance;
}

async function startProxy(ports: number[], extra: Array<[string, string]> = []): Promise<RunningNginx> {
  const proxy = await startNginx(await renderNginxConfig(ports, extra));
  started.push(proxy);
  return proxy;
}

beforeAll(async () => {
  await ensureDistBuilt();
  const three = await Promise.all([0, 1, 2].map(() => startInstance({ WS_PING_INTERVAL_MS: String(PING_MS) })));
  nginx = await startProxy(three.map((instance) => instance.port));
  ca = nginx.rendered.caCert;
});

afterAll(async () => {
  await Promise.all(started.map((proxy) => proxy.stop()));
  await Promise.all(instances.map((instance) => instance.stop()));
});

/** A `ws` WebSocket that trusts the test CA, in the (url, protocols) shape WsSpanExporter calls. */
function trustingWebSocket(trusted: string): typeof WebSocket {
  return class extends WebSocket {
    constructor(url: string, protocols?: string | string[], options: ClientOptions = {}) {
      super(url, protocols, { ca: trusted, perMessageDeflate: false, ...options });
    }
  } as typeof WebSocket;
}

async function acceptedSpans(instance: TracehouseProcess): Promise<number> {
  const res = await request(`${instance.url}/metrics`);
  return res.body
    .toString('utf8')
    .split('\n')
    .filter((line) => line.startsWith('tracehouse_spans_accepted_total{'))
    .reduce((sum, line) => sum + Number(line.split(' ').pop()), 0);
}

async function expectStoredOnce(acknowledged: Iterable<string>): Promise<void> {
  const stored = await readStoredSpans((text) => db.query(text));
  const diff = compareAcknowledged(acknowledged, stored);
  expect(diff.missing).toEqual([]);
  expect(diff.duplicated).toEqual([]);
  expect(stored.summaryMismatches).toEqual([]);
}

describe('deploy/nginx/nginx.conf with the real nginx', () => {
  it('passes nginx -t with a test certificate and the upstreams pointed at local instances, without warnings', async () => {
    const result = await checkNginxConfig(nginx.rendered.confPath);
    expect(result).toEqual({ code: 0, output: '' });
  });

  it('spreads OTLP from the real protobuf exporter over all three instances; every span stored once', async () => {
    const before = await Promise.all(instances.slice(0, 3).map(acceptedSpans));
    const ledger = new ExportLedger();
    const exporter = new RecordingExporter(
      new OTLPTraceExporter({ url: `${nginx.url()}/v1/traces`, httpAgentOptions: { ca, keepAlive: true } }),
      ledger,
    );
    // Four concurrent streams of exports, like four BatchSpanProcessors of one application.
    const exportOnce = () =>
      new Promise<number>((resolve) =>
        exporter.export(toReadableSpans({ spans: realisticSpans(50, { nowMs: Date.now() }) }), (r) => resolve(r.code)),
      );
    const codes: number[] = [];
    await Promise.all(
      [0, 1, 2, 3].map(async () => {
        for (let i = 0; i < 15; i++) codes.push(await exportOnce());
      }),
    );
    await exporter.shutdown();

    expect(codes.filter((code) => code !== ExportResultCode.SUCCESS)).toEqual([]);
    const after = await Promise.all(instances.slice(0, 3).map(acceptedSpans));
    const perInstance = after.map((n, i) => n - before[i]);
    console.info(`spans accepted per instance through nginx: ${perInstance.join(' / ')}`);
    expect(perInstance.every((n) => n > 0)).toBe(true);
    expect(perInstance.reduce((a, b) => a + b, 0)).toBe(60 * 50);

    const upstreams = new Set(
      (await nginx.accessLog()).filter((line) => line.uri === '/v1/traces').map((line) => line.upstream),
    );
    expect([...upstreams].sort()).toEqual(
      instances
        .slice(0, 3)
        .map((i) => `127.0.0.1:${i.port}`)
        .sort(),
    );
    await expectStoredOnce(ledger.acknowledged.keys());
  });

  it('carries a WebSocket stream through the proxy: every export acked after commit, every span stored once', async () => {
    const exporter = new WsSpanExporter({
      url: `${nginx.url().replace('https', 'wss')}/v1/traces/ws`,
      WebSocket: trustingWebSocket(ca),
    });
    const load = new ExportLoad(exporter, { exports: 400, spansPerExport: 5, concurrency: 16 });
    try {
      await load.run();
    } finally {
      await exporter.shutdown();
    }
    expect({ succeeded: load.succeeded, failed: load.failed, errors: load.errors }).toEqual({
      succeeded: 400,
      failed: 0,
      errors: [],
    });
    expect({
      sent: exporter.stats.framesSent,
      acks: exporter.stats.acks,
      connections: exporter.stats.connections,
    }).toEqual({
      sent: 400,
      acks: 400,
      connections: 1,
    });
    await expectStoredOnce(load.acknowledged);
    // The upgrade went through nginx (logged with 101 when the connection ended).
    await waitUntil(
      async () => (await nginx.accessLog()).some((line) => line.uri === '/v1/traces/ws' && line.status === 101),
      5000,
      'the WebSocket access log line',
    );
  });

  it('keeps an idle WebSocket open past proxy_read_timeout because the server pings, and cuts one without pings', async () => {
    // The same file with the WebSocket location's 75 s scaled to 3 s; the instances ping every 1 s.
    const scaled: Array<[string, string]> = [
      ['proxy_read_timeout 75s;', 'proxy_read_timeout 3s;'],
      ['proxy_send_timeout 75s;', 'proxy_send_timeout 3s;'],
    ];
    const pinging = await startProxy(
      instances.slice(0, 3).map((i) => i.port),
      scaled,
    );
    const silent = await startInstance({ WS_PING_INTERVAL_MS: '60000' });
    const quiet = await startProxy([silent.port, silent.port, silent.port], scaled);

    const open = async (proxy: RunningNginx) => {
      const socket = new WebSocket(`${proxy.url().replace('https', 'wss')}/v1/traces/ws`, [WS_SUBPROTOCOL], {
        ca: proxy.rendered.caCert,
        perMessageDeflate: false,
      });
      let pings = 0;
      socket.on('ping', () => (pings += 1));
      const closed = new Promise<{ code: number; at: number }>((resolve) =>
        socket.once('close', (code) => resolve({ code, at: Date.now() })),
      );
      await new Promise<void>((resolve, reject) => {
        socket.once('open', () => resolve());
        socket.once('error', reject);
      });
      return { socket, closed, pings: () => pings, openedAt: Date.now() };
    };
    const [kept, cut] = await Promise.all([open(pinging), open(quiet)]);

    // Idle for more than twice the proxy timeout.
    await new Promise((resolve) => setTimeout(resolve, 7000));
    expect(kept.socket.readyState).toBe(WebSocket.OPEN);
    expect(kept.pings()).toBeGreaterThanOrEqual(5);
    const spans = realisticSpans(3, { nowMs: Date.now() });
    const ack = new Promise<{ seq: number; status: number }>((resolve) =>
      kept.socket.once('message', (data) => resolve(JSON.parse(String(data)) as { seq: number; status: number })),
    );
    kept.socket.send(binaryFrame(1, buildRequest({ spans }).protobuf));
    expect(await ack).toMatchObject({ seq: 1, status: 200 });
    kept.socket.close(1000);

    // Control: without pings nginx ends the idle connection after its read timeout (1006: no close frame).
    const ended = await cut.closed;
    expect(ended.code).toBe(1006);
    expect(ended.at - cut.openedAt).toBeGreaterThanOrEqual(2500);
    expect(ended.at - cut.openedAt).toBeLessThan(6500);
    await kept.closed;
  });

  it('answers 413 itself for a body one byte over client_max_body_size, before any instance sees it', async () => {
    const before = (await nginx.accessLog()).length;
    const over = await request(`${nginx.url()}/v1/traces`, {
      ca,
      headers: { 'content-type': 'application/x-protobuf' },
      announceLength: MAX_BODY_BYTES + 1,
    });
    expect(over.status).toBe(413);
    const chunkedOver = await request(`${nginx.url()}/v1/traces`, {
      ca,
      headers: { 'content-type': 'application/x-protobuf' },
      chunks: Array.from({ length: 17 }, () => ({ data: Buffer.alloc(1024 * 1024, 1) })).concat([
        { data: Buffer.alloc(1, 1) },
      ]),
    });
    expect(chunkedOver.status).toBe(413);
    const lines = (await nginx.accessLog()).slice(before);
    expect(lines.filter((line) => line.status === 413).map((line) => line.upstream)).toContain('');

    // Exactly the limit passes nginx and reaches tracehouse (which reads it: not a protobuf, 400).
    const atLimit = await request(`${nginx.url()}/v1/traces`, {
      ca,
      headers: { 'content-type': 'application/x-protobuf' },
      body: Buffer.alloc(MAX_BODY_BYTES, 0xff),
    });
    expect(atLimit.status).toBe(400);
    expect(atLimit.headers['content-type']).toMatch(/application\/x-protobuf/);
  });

  it('lets a small gzip body through; tracehouse answers 413 when it inflates past MAX_BODY_BYTES', async () => {
    const bomb = gzipSync(Buffer.alloc(MAX_BODY_BYTES + 1024 * 1024));
    expect(bomb.length).toBeLessThan(1024 * 1024);
    const res = await request(`${nginx.url()}/v1/traces`, {
      ca,
      headers: { 'content-type': 'application/x-protobuf', 'content-encoding': 'gzip' },
      body: bomb,
    });
    expect(res.status).toBe(413);
    // tracehouse's own answer (google.rpc.Status in protobuf), not nginx's HTML page.
    expect(res.headers['content-type']).toMatch(/application\/x-protobuf/);
  });

  it('does not expose /metrics through nginx, under any spelling; each instance still serves it', async () => {
    for (const path of ['/metrics', '/metrics/', '//metrics', '/%6detrics', '/metrics?format=text', '/./metrics']) {
      const res = await request(`${nginx.url()}${path}`, { ca });
      expect(res.status, path).toBe(404);
      expect(res.body.toString('utf8'), path).not.toContain('tracehouse_');
    }
    const direct = await request(`${instances[0].url}/metrics`);
    expect(direct.status).toBe(200);
    expect(direct.body.toString('utf8')).toContain('tracehouse_spans_accepted_total');
  });

  it('serves probes and the query API through the proxy', async () => {
    expect((await request(`${nginx.url()}/health`, { ca })).status).toBe(200);
    expect((await request(`${nginx.url()}/ready`, { ca })).status).toBe(200);
    expect((await request(`${nginx.url(4318)}/health`, { ca })).status).toBe(200);
  });

  it('redirects plain HTTP with 308 (method and body kept) to https', async () => {
    const res = await request(`${nginx.url(80)}/v1/traces`, { body: Buffer.from('x') });
    expect(res.status).toBe(308);
    expect(res.headers.location).toMatch(/^https:\/\/127\.0\.0\.1(:\d+)?\/v1\/traces$/);
  });

  it('speaks TLS 1.3, and TLS 1.2 only with forward-secret AEAD suites', async () => {
    const handshake = (options: tls.ConnectionOptions) =>
      new Promise<{ protocol: string | null; cipher: string }>((resolve, reject) => {
        const socket = tls.connect(
          { host: '127.0.0.1', port: nginx.rendered.ports.get(443)!, servername: 'localhost', ca, ...options },
          () => {
            resolve({ protocol: socket.getProtocol(), cipher: socket.getCipher().name });
            socket.end();
          },
        );
        socket.on('error', reject);
      });
    expect((await handshake({})).protocol).toBe('TLSv1.3');
    const v12 = await handshake({ maxVersion: 'TLSv1.2' });
    expect(v12.protocol).toBe('TLSv1.2');
    expect(v12.cipher).toMatch(/^ECDHE-(ECDSA|RSA)-(AES\d+-GCM|CHACHA20-POLY1305)/);
    await expect(handshake({ maxVersion: 'TLSv1.2', ciphers: 'AES128-SHA256' })).rejects.toThrow();
  });
});
