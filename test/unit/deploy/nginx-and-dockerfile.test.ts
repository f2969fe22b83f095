/**
 * deploy/nginx/nginx.conf and deploy/Dockerfile agree with the server's configuration and with the
 * repository: the body limit, timeouts against the WebSocket ping and the request timeout, the
 * upstream replicas and port, headers, and what the image copies, runs and checks. (The real nginx
 * runs the same file in test/integration/deploy/.)
 */
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { DEFAULTS } from '../../../server/config.js';
import {
  DEFAULT_MAX_BODY_BYTES,
  DEFAULT_PORT,
  children,
  durationMs,
  exists,
  nginxSizeBytes,
  only,
  parseDockerfile,
  parseNginx,
  proxyHeaders,
  read,
  readYaml,
  type DockerStage,
} from './deploy-files.js';

const conf = parseNginx(read('deploy/nginx/nginx.conf'));
const http = only(conf, 'http').block!;
const servers = children(http, 'server');
const publicServer = servers.find((s) => children(s.block, 'listen').some((l) => l.args.includes('ssl')))!;
const locations = children(publicServer.block, 'location');
const wsLocation = locations.find((l) => l.args.join(' ') === '= /v1/traces/ws')!;
const rootLocation = locations.find((l) => l.args.join(' ') === '/')!;
const FASTIFY_KEEP_ALIVE_TIMEOUT_MS = 72_000; // Fastify's default; server/app.ts does not change it

describe('deploy/nginx/nginx.conf', () => {
  it('limits bodies to exactly MAX_BODY_BYTES and streams them (no request buffering)', () => {
    expect(nginxSizeBytes(only(http, 'client_max_body_size').args[0])).toBe(DEFAULT_MAX_BODY_BYTES);
    expect(only(publicServer.block, 'proxy_request_buffering').args).toEqual(['off']);
    expect(only(publicServer.block, 'proxy_http_version').args).toEqual(['1.1']);
  });

  it('balances over the three compose replicas on the server port, least_conn, kept-alive shorter than the server keeps them', () => {
    const upstream = only(http, 'upstream');
    expect(upstream.args).toEqual(['tracehouse']);
    expect(children(upstream.block, 'least_conn')).toHaveLength(1);
    const targets = children(upstream.block, 'server').map((s) => s.args[0]);
    const compose = readYaml('docker-compose.prod.yml');
    const replicas = Object.keys(compose.services).filter((name) => /^tracehouse-\d+$/.test(name));
    expect(targets).toEqual(replicas.map((name) => `${name}:${DEFAULT_PORT}`));
    expect(Number(only(upstream.block, 'keepalive').args[0])).toBeGreaterThan(0);
    expect(durationMs(only(upstream.block, 'keepalive_timeout').args[0])).toBeLessThan(FASTIFY_KEEP_ALIVE_TIMEOUT_MS);
    for (const location of [wsLocation, rootLocation]) {
      expect(only(location.block, 'proxy_pass').args).toEqual(['http://tracehouse']);
    }
  });

  it('keeps WebSocket read timeouts above the ping interval (with one missed ping to spare) and others above the request timeout', () => {
    const ping = DEFAULTS.websocket.pingIntervalMs;
    expect(durationMs(only(wsLocation.block, 'proxy_read_timeout').args[0])).toBeGreaterThan(2 * ping);
    expect(durationMs(only(wsLocation.block, 'proxy_send_timeout').args[0])).toBeGreaterThan(2 * ping);
    expect(durationMs(only(publicServer.block, 'proxy_read_timeout').args[0])).toBeGreaterThan(
      DEFAULTS.receive.requestTimeoutMs,
    );
  });

  it('upgrades only on the WebSocket path and sends the same headers from every proxying location, tenant headers emptied', () => {
    const common = proxyHeaders(publicServer.block);
    for (const name of ['x-scope-orgid', 'x-tenant', 'x-tenant-id']) expect(common.get(name), name).toBe('');
    expect(common.get('connection')).toBe('');
    expect(rootLocation.block!.some((d) => d.name === 'proxy_set_header')).toBe(false); // inherits the common set
    const ws = proxyHeaders(wsLocation.block);
    expect(ws.get('upgrade')).toBe('$http_upgrade');
    expect(ws.get('connection')).toBe('$connection_upgrade');
    for (const [name, value] of common) if (name !== 'connection') expect(ws.get(name), name).toBe(value);
    const map = only(http, 'map');
    expect(map.args).toEqual(['$http_upgrade', '$connection_upgrade']);
  });

  it('never replays a request that reached a replica: no non_idempotent, no retry on 503', () => {
    const next = only(publicServer.block, 'proxy_next_upstream').args;
    expect(next).not.toContain('non_idempotent');
    expect(next).not.toContain('http_503');
    expect(next).toEqual(expect.arrayContaining(['error', 'timeout']));
  });

  it('keeps /metrics inside and logs JSON without query strings', () => {
    const metrics = locations.find((l) => l.args.join(' ') === '^~ /metrics');
    expect(metrics?.block).toEqual([{ name: 'return', args: ['404'] }]);
    const format = children(http, 'log_format').find((f) => f.args[0] === 'tracehouse')!;
    expect(format.args[1]).toBe('escape=json');
    const pattern = format.args.slice(2).join('');
    expect(pattern).toContain('"uri":"$uri"');
    expect(pattern).not.toContain('$request_uri');
    expect(pattern).not.toContain('$args');
    expect(pattern).not.toMatch(/authorization/i);
    expect(only(http, 'access_log').args).toEqual(['/var/log/nginx/access.log', 'tracehouse']);
  });

  it('serves TLS 1.2/1.3 only, from the compose secrets, on the ports compose publishes', () => {
    expect(only(publicServer.block, 'ssl_protocols').args).toEqual(['TLSv1.2', 'TLSv1.3']);
    expect(
      only(publicServer.block, 'ssl_ciphers')
        .args[0].split(':')
        .every((c) => /^ECDHE-.*(GCM|POLY1305)/.test(c)),
    ).toBe(true);
    const compose = readYaml('docker-compose.prod.yml');
    const nginx = compose.services.nginx;
    for (const directive of ['ssl_certificate', 'ssl_certificate_key']) {
      const file = only(publicServer.block, directive).args[0];
      expect(file, directive).toMatch(/^\/run\/secrets\//);
      expect(nginx.secrets).toContain(file.replace('/run/secrets/', ''));
    }
    const listened = servers
      .flatMap((s) => children(s.block, 'listen'))
      .map((l) => l.args[0])
      .filter((a) => !a.startsWith('127.0.0.1:'));
    const published = (nginx.ports as string[]).map((p) => p.split(':').at(-1));
    expect(listened.sort()).toEqual(published.sort());
    expect(nginx.volumes).toContain('./deploy/nginx/nginx.conf:/etc/nginx/nginx.conf:ro');
    const health = servers.find((s) => children(s.block, 'listen').some((l) => l.args[0].startsWith('127.0.0.1:')))!;
    const healthUrl = `http://${only(health.block, 'listen').args[0]}${only(health.block, 'location').args.at(-1)}`;
    expect(nginx.healthcheck.test).toContain(healthUrl);
  });
});

describe('deploy/Dockerfile', () => {
  const { args, stages } = parseDockerfile(read('deploy/Dockerfile'));
  const stage = (name: string): DockerStage => stages.find((s) => s.name === name)!;
  const runtime = stages.at(-1)!;
  const of = (s: DockerStage, keyword: string) => s.instructions.filter((i) => i.keyword === keyword);

  it('is multi-stage: builds dist/ with every dependency, ships production dependencies only', () => {
    expect(stages.map((s) => s.name)).toEqual(['build', 'deps', 'runtime']);
    expect(args.get('NODE_IMAGE')).toMatch(/^node:20-bookworm-slim$/);
    expect(of(stage('build'), 'RUN').map((i) => i.args)).toContain('npm run build');
    expect(of(stage('deps'), 'RUN').some((i) => /npm ci .*--omit=dev/.test(i.args))).toBe(true);
    const copies = of(runtime, 'COPY').map((i) => i.args);
    expect(copies).toContain('--from=deps /app/node_modules ./node_modules');
    expect(copies).toContain('--from=build /app/dist ./dist');
    // tsconfig.build.json compiles server/ into dist/, where bin/tracehouse.js imports it from.
    expect(JSON.parse(read('tsconfig.build.json')).compilerOptions.outDir).toBe('dist');
    expect(read('bin/tracehouse.js')).toContain("from '../dist/cli.js'");
  });

  it('copies only paths that exist in the repository and that .dockerignore lets through', () => {
    const ignored = read('.dockerignore')
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line && !line.startsWith('#'));
    const sources = stages
      .flatMap((s) => of(s, 'COPY'))
      .filter((i) => !i.args.startsWith('--from='))
      .flatMap((i) => i.args.split(' ').slice(0, -1));
    expect(sources).toEqual(
      expect.arrayContaining(['package.json', 'package-lock.json', 'bin', 'migrations', 'server', 'client']),
    );
    for (const source of sources) {
      expect(exists(source), source).toBe(true);
      expect(
        ignored.some((pattern) => source === pattern || source.startsWith(`${pattern}/`)),
        source,
      ).toBe(false);
    }
  });

  it('runs `tracehouse serve` as a numeric non-root user under tini, with the CLI on PATH', () => {
    const user = of(runtime, 'USER').at(-1)!.args;
    expect(user).toMatch(/^\d+:\d+$/);
    expect(Number(user.split(':')[0])).toBeGreaterThan(0);
    expect(JSON.parse(of(runtime, 'ENTRYPOINT')[0].args)).toEqual(['/usr/bin/tini', '--', 'docker-entrypoint.sh']);
    expect(JSON.parse(of(runtime, 'CMD')[0].args)).toEqual(['tracehouse', 'serve']);
    const runs = of(runtime, 'RUN')
      .map((i) => i.args)
      .join(' ');
    expect(runs).toMatch(/apt-get install .*\btini\b/);
    expect(runs).toContain('ln -s /app/bin/tracehouse.js /usr/local/bin/tracehouse');
    expect(of(runtime, 'EXPOSE')[0].args).toBe(String(DEFAULT_PORT));
  });

  it('checks health with node against /health: no curl, no wget', () => {
    const healthcheck = of(runtime, 'HEALTHCHECK')[0].args;
    const command = JSON.parse(healthcheck.slice(healthcheck.indexOf('CMD ') + 4)) as string[];
    expect(command.slice(0, 2)).toEqual(['node', '-e']);
    expect(command[2]).toContain('/health');
    expect(command[2]).toContain('4318');
    expect(healthcheck).not.toMatch(/curl|wget/);
    // The compose file runs the same check.
    const compose = readYaml('docker-compose.prod.yml');
    expect(compose.services['tracehouse-1'].healthcheck.test).toEqual(['CMD', ...command]);
  });

  it('ships pg_dump of the major version the compose PostgreSQL runs (Debian bookworm: 15)', () => {
    const runs = of(runtime, 'RUN')
      .map((i) => i.args)
      .join(' ');
    expect(runs).toMatch(/apt-get install .*\bpostgresql-client\b/);
    const postgres = readYaml('docker-compose.prod.yml').services.postgres.image as string;
    expect(postgres).toMatch(/^postgres:15(-bookworm)?$/);
  });

  it('has an entrypoint that turns VAR_FILE into VAR for the secret variables (run with sh)', () => {
    const output = execFileSync(
      'sh',
      ['deploy/docker-entrypoint.sh', 'sh', '-c', 'printf "%s|%s" "$DATABASE_URL" "${DATABASE_URL_FILE:-unset}"'],
      {
        cwd: new URL('../../../', import.meta.url),
        env: { PATH: process.env.PATH, DATABASE_URL_FILE: 'package.json' },
      },
    ).toString();
    expect(output).toBe(`${read('package.json').replace(/\n+$/, '')}|unset`);
  });
});
