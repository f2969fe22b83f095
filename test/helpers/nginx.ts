/**
 * Runs the real nginx with a test rendering of the production deploy/nginx/nginx.conf. The
 * rendering changes only what cannot be the same on a test machine, each by an exact rule that
 * must match (so the test breaks if the production file drifts):
 *   - every `listen [addr:]PORT …` becomes `listen 127.0.0.1:<free port> …` (same flags);
 *   - the upstream's `server tracehouse-N:4318 …` lines point at the given local ports, in order;
 *   - /run/secrets/ (certificate and key), /var/log/nginx/, /var/cache/nginx/ and
 *     /var/run/nginx.pid move into a temporary directory.
 * `extra` substitutions (exact strings, each must occur) let a test scale a timeout.
 * nginx runs in the foreground (`-g 'daemon off;'`) as a child process; stop() ends it with
 * SIGQUIT (graceful) and SIGKILL after a grace period.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT } from './build-dist.js';
import { freePort } from './private-postgres.js';

export const NGINX_CONF = path.join(REPO_ROOT, 'deploy', 'nginx', 'nginx.conf');
const UPSTREAM_SERVER = /^(\s*server\s+)tracehouse-(\d+):4318(\s[^;]*)?;/gm;
const LISTEN = /^(\s*listen\s+)(?:[\d.]+:)?(\d+)((?:\s[^;]*)?);/gm;

/** The nginx binary: NGINX_BIN, else Debian's path, else PATH. Missing nginx is a failure, not a skip. */
export function nginxBinary(): string {
  if (process.env.NGINX_BIN) return process.env.NGINX_BIN;
  for (const candidate of ['/usr/sbin/nginx', '/usr/local/sbin/nginx', '/usr/bin/nginx']) {
    if (existsSync(candidate)) return candidate;
  }
  return 'nginx';
}

export interface RenderedNginx {
  dir: string;
  confPath: string;
  text: string;
  /** Production listen port → the local port it became. */
  ports: Map<number, number>;
  caCert: string;
  accessLog: string;
  errorLog: string;
}

function replaceExact(text: string, from: string, to: string): string {
  if (!text.includes(from)) throw new Error(`nginx.conf no longer contains '${from}': update test/helpers/nginx.ts`);
  return text.split(from).join(to);
}

/** A self-signed certificate for localhost / 127.0.0.1, written as tls_cert and tls_key in `dir`. */
export async function makeTestCertificate(dir: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    execFile(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-days',
        '2',
        '-subj',
        '/CN=localhost',
        '-addext',
        'subjectAltName=DNS:localhost,IP:127.0.0.1',
        '-keyout',
        path.join(dir, 'tls_key'),
        '-out',
        path.join(dir, 'tls_cert'),
      ],
      { timeout: 20_000 },
      (err, _stdout, stderr) => (err ? reject(new Error(`openssl failed: ${stderr || err.message}`)) : resolve()),
    );
  });
}

export async function renderNginxConfig(
  upstreamPorts: number[],
  extra: Array<[string, string]> = [],
): Promise<RenderedNginx> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'th-nginx-'));
  // Workers drop root privileges (to `nobody`) when the master runs as root: let them in.
  await chmod(dir, 0o755);
  for (const sub of ['secrets', 'logs', 'cache']) {
    await mkdir(path.join(dir, sub));
    await chmod(path.join(dir, sub), 0o755);
  }
  await makeTestCertificate(path.join(dir, 'secrets'));

  let text = await readFile(NGINX_CONF, 'utf8');
  const upstreamLines = [...text.matchAll(UPSTREAM_SERVER)];
  if (upstreamLines.length !== upstreamPorts.length) {
    throw new Error(`nginx.conf has ${upstreamLines.length} upstream servers, the test gave ${upstreamPorts.length}`);
  }
  text = text.replace(UPSTREAM_SERVER, (_m, head: string, n: string, flags = '') => {
    return `${head}127.0.0.1:${upstreamPorts[Number(n) - 1]}${flags};`;
  });

  const ports = new Map<number, number>();
  for (const match of text.matchAll(LISTEN)) {
    const port = Number(match[2]);
    if (!ports.has(port)) ports.set(port, await freePort());
  }
  text = text.replace(LISTEN, (_m, head: string, port: string, flags: string) => {
    return `${head}127.0.0.1:${ports.get(Number(port))}${flags};`;
  });

  text = replaceExact(text, '/run/secrets/', `${dir}/secrets/`);
  text = replaceExact(text, '/var/log/nginx/', `${dir}/logs/`);
  text = replaceExact(text, '/var/cache/nginx/', `${dir}/cache/`);
  text = replaceExact(text, '/var/run/nginx.pid', `${dir}/nginx.pid`);
  for (const [from, to] of extra) text = replaceExact(text, from, to);

  const confPath = path.join(dir, 'nginx.conf');
  await writeFile(confPath, text);
  return {
    dir,
    confPath,
    text,
    ports,
    caCert: await readFile(path.join(dir, 'secrets', 'tls_cert'), 'utf8'),
    accessLog: path.join(dir, 'logs', 'access.log'),
    errorLog: path.join(dir, 'logs', 'error.log'),
  };
}

/** `nginx -t -c <conf>`: exit code and what it printed. */
export function checkNginxConfig(confPath: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(
      nginxBinary(),
      ['-t', '-q', '-e', 'stderr', '-c', confPath],
      { timeout: 20_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, output: `${stdout}${stderr}`.trim() });
      },
    );
  });
}

export interface RunningNginx {
  rendered: RenderedNginx;
  child: ChildProcess;
  /** https://127.0.0.1:<port> for a production listen port (443 by default). */
  url(productionPort?: number, scheme?: string): string;
  /** The access log, one parsed JSON object per line. */
  accessLog(): Promise<Array<Record<string, unknown>>>;
  output(): string;
  stop(): Promise<void>;
}

async function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
  });
}

export async function startNginx(rendered: RenderedNginx): Promise<RunningNginx> {
  const child = spawn(nginxBinary(), ['-e', 'stderr', '-c', rendered.confPath, '-g', 'daemon off;'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const collect = (chunk: Buffer): void => {
    if (output.length < 200_000) output += chunk.toString('utf8');
  };
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  let exited = false;
  const exit = new Promise<void>((resolve) => child.once('exit', () => ((exited = true), resolve())));

  const deadline = Date.now() + 10_000;
  for (const port of rendered.ports.values()) {
    while (!(await canConnect(port))) {
      if (exited || Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`nginx did not start listening on ${port}:\n${output}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  return {
    rendered,
    child,
    url(productionPort = 443, scheme = productionPort === 80 ? 'http' : 'https') {
      const port = rendered.ports.get(productionPort);
      if (port === undefined) throw new Error(`nginx.conf does not listen on ${productionPort}`);
      return `${scheme}://127.0.0.1:${port}`;
    },
    async accessLog() {
      const text = await readFile(rendered.accessLog, 'utf8').catch(() => '');
      return text
        .split('\n')
        .filter((line) => line.trim() !== '')
        .map((line) => JSON.parse(line) as Record<string, unknown>);
    },
    output: () => output,
    async stop() {
      if (!exited) {
        child.kill('SIGQUIT');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exit;
        clearTimeout(timer);
      }
      await rm(rendered.dir, { recursive: true, force: true });
    },
  };
}
