/**
 * `tracehouse canary`: runs ops/canary.ts against a tracehouse endpoint and serves its counters on
 * its own /metrics (for Prometheus; deploy/prometheus/rules/alerts.yml alerts on them). Runs until
 * SIGTERM / SIGINT (exit 0), or for --iterations rounds, then exits 0 only when every trace it
 * wrote was found (a deploy smoke test).
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import type { Logger } from 'pino';
import { Registry } from 'prom-client';
import { ConfigError } from './config.js';
import { CANARY_DEFAULTS, Canary, type CanaryOptions } from './ops/canary.js';

export const CANARY_USAGE = `  canary --endpoint URL [--token T | --token-file F] [--interval-ms N] [--metrics-port N]
            write a small trace every interval and read it back; written/found/missing/late on /metrics`;

const HELP = `usage: tracehouse canary --endpoint URL [options]

Writes a small trace (3 spans, 2 services) through OTLP/HTTP (POST URL/v1/traces) every interval
and reads each one back through the query API (GET URL/api/traces/{id}) until all its spans are
there. Serves tracehouse_canary_{written,found,missing,late}_total and friends on its own /metrics.

options:
  --endpoint URL          tracehouse base URL, e.g. http://tracehouse:4318 (required)
  --query-endpoint URL    query API base URL (default: --endpoint)
  --token T               bearer token with scopes traces:write and traces:read
  --token-file FILE       read the token from FILE (e.g. a Docker secret)
  --interval-ms N         one trace per N ms (default ${CANARY_DEFAULTS.intervalMs})
  --late-after-ms N       a trace found later than this counts as late (default ${CANARY_DEFAULTS.lateAfterMs})
  --missing-after-ms N    a trace not found by then counts as missing (default ${CANARY_DEFAULTS.missingAfterMs})
  --service-name NAME     service name prefix of the canary spans (default ${CANARY_DEFAULTS.serviceName})
  --metrics-host HOST     listen address of /metrics (default 0.0.0.0)
  --metrics-port N        port of /metrics (default 9464; 0: any free port)
  --iterations N          stop after N rounds; exit 1 unless every trace written was found
  --help                  this text
exit status: 0 (stopped by a signal, or --iterations and nothing missing), 1 traces missing, 2 usage`;

function positiveInt(name: string, raw: string | undefined, fallback: number, min = 1): number {
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < min) {
    throw new ConfigError(`${name} must be an integer >= ${min}`);
  }
  return value;
}

function baseUrl(name: string, raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(`${name} is not a URL: '${raw}'`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ConfigError(`${name} must be http(s)`);
  return url.toString().replace(/\/+$/, '');
}

export async function runCanaryCommand(args: string[], log: Logger): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  const { values } = parseArgs({
    args,
    options: {
      endpoint: { type: 'string' },
      'query-endpoint': { type: 'string' },
      token: { type: 'string' },
      'token-file': { type: 'string' },
      'interval-ms': { type: 'string' },
      'late-after-ms': { type: 'string' },
      'missing-after-ms': { type: 'string' },
      'service-name': { type: 'string' },
      'metrics-host': { type: 'string' },
      'metrics-port': { type: 'string' },
      iterations: { type: 'string' },
    },
    strict: true,
  });
  if (values.endpoint === undefined) throw new ConfigError('--endpoint is required');
  if (values.token !== undefined && values['token-file'] !== undefined) {
    throw new ConfigError('give --token or --token-file, not both');
  }
  const options: CanaryOptions = {
    endpoint: baseUrl('--endpoint', values.endpoint),
    queryEndpoint: values['query-endpoint'] && baseUrl('--query-endpoint', values['query-endpoint']),
    token: values['token-file'] ? readFileSync(values['token-file'], 'utf8').trim() : values.token,
    intervalMs: positiveInt('--interval-ms', values['interval-ms'], CANARY_DEFAULTS.intervalMs, 10),
    lateAfterMs: positiveInt('--late-after-ms', values['late-after-ms'], CANARY_DEFAULTS.lateAfterMs, 0),
    missingAfterMs: positiveInt('--missing-after-ms', values['missing-after-ms'], CANARY_DEFAULTS.missingAfterMs),
    requestTimeoutMs: CANARY_DEFAULTS.requestTimeoutMs,
    serviceName: values['service-name'] ?? CANARY_DEFAULTS.serviceName,
  };
  const iterations = values.iterations === undefined ? undefined : positiveInt('--iterations', values.iterations, 1);
  const port = positiveInt('--metrics-port', values['metrics-port'], 9464, 0);

  const registry = new Registry();
  const canary = new Canary(options, registry);
  const server = await serveMetrics(registry, values['metrics-host'] ?? '0.0.0.0', port);
  const address = server.address() as AddressInfo;
  log.info(
    { metrics: `http://${address.address}:${address.port}/metrics`, endpoint: options.endpoint },
    'canary running',
  );
  try {
    if (iterations !== undefined) return await runRounds(canary, iterations, options, registry);
    canary.start();
    const signal = await new Promise<NodeJS.Signals>((resolve) => {
      process.once('SIGTERM', resolve);
      process.once('SIGINT', resolve);
    });
    log.info({ signal }, 'canary stopping');
    await canary.stop();
    return 0;
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/** --iterations: N rounds, then reads until nothing is pending (or the missing threshold passes). */
async function runRounds(canary: Canary, rounds: number, options: CanaryOptions, registry: Registry): Promise<number> {
  for (let i = 0; i < rounds; i++) {
    if (i > 0) await new Promise((resolve) => setTimeout(resolve, options.intervalMs));
    await canary.tick();
  }
  const deadline = Date.now() + options.missingAfterMs + options.intervalMs;
  while (canary.pending > 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, Math.min(options.intervalMs, 1000)));
    await canary.readBack();
  }
  const value = async (name: string) => (await registry.getSingleMetric(name)!.get()).values[0]?.value ?? 0;
  const [written, found] = [
    await value('tracehouse_canary_written_total'),
    await value('tracehouse_canary_found_total'),
  ];
  process.stdout.write(`canary: ${written} written, ${found} found, ${written - found} missing or late\n`);
  return written > 0 && written === found ? 0 : 1;
}

function serveMetrics(registry: Registry, host: string, port: number): Promise<Server> {
  const server = createServer((request, response) => {
    if (request.method === 'GET' && request.url === '/metrics') {
      registry.metrics().then(
        (text) => response.writeHead(200, { 'content-type': registry.contentType }).end(text),
        () => response.writeHead(500).end(),
      );
    } else if (request.method === 'GET' && request.url === '/health') {
      response.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
    } else {
      response.writeHead(404).end();
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}
