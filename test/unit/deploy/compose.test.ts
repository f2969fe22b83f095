/**
 * docker-compose.prod.yml parses and references only what exists: services and their health
 * conditions, variables tracehouse reads (server/config.ts), secrets that are defined and made by
 * deploy/make-secrets.sh, files and folders of this repository, and the Prometheus and Grafana
 * configuration it mounts. It agrees with the server's drain times. The backup loop is run for
 * real with a stand-in `tracehouse`. (No Docker engine here: this is the check instead of
 * `docker compose config`.)
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile, chmod } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../server/config.js';
import {
  DEFAULT_PORT,
  configuredNumber,
  durationMs,
  environmentProblems,
  exists,
  read,
  readYaml,
  type Yaml,
} from './deploy-files.js';

const compose = readYaml('docker-compose.prod.yml');
const services = compose.services as Record<string, Yaml>;
const TRACEHOUSE_IMAGE = /^(\$\{TRACEHOUSE_IMAGE:-)?([\w.-]+\/)*tracehouse:[\w.-]+\}?$/;
const tracehouseServices = Object.entries(services).filter(([, s]) => TRACEHOUSE_IMAGE.test(s.image));
const replicas = Object.keys(services).filter((name) => /^tracehouse-\d+$/.test(name));

function environment(service: Yaml): Record<string, string> {
  return Object.fromEntries(Object.entries(service.environment ?? {}).map(([k, v]) => [k, String(v)]));
}

describe('docker-compose.prod.yml', () => {
  it('has nginx, three tracehouse replicas, PostgreSQL, Redis, Prometheus, Grafana, the backup and the canary', () => {
    expect(Object.keys(services).sort()).toEqual(
      [
        'backup',
        'canary',
        'grafana',
        'nginx',
        'postgres',
        'prometheus',
        'redis',
        'tracehouse-1',
        'tracehouse-2',
        'tracehouse-3',
      ].sort(),
    );
    expect(tracehouseServices.map(([name]) => name).sort()).toEqual(['backup', 'canary', ...replicas].sort());
    expect(services['tracehouse-1'].build).toEqual({ context: '.', dockerfile: 'deploy/Dockerfile' });
  });

  it('gives the tracehouse image only variables it reads, with values its configuration accepts', () => {
    for (const [name, service] of tracehouseServices) {
      const env = environment(service);
      expect(environmentProblems(Object.keys(env)), name).toEqual([]);
      // The *_FILE secrets become their variables at start: stand in for them, then validate.
      const resolved = Object.fromEntries(
        Object.entries(env).map(([key, value]) =>
          key.endsWith('_FILE') && key !== 'JWT_PUBLIC_KEY_FILE' ? [key.slice(0, -5), 'redis://x'] : [key, value],
        ),
      );
      if (resolved.DATABASE_URL) resolved.DATABASE_URL = 'postgres://x@db/x';
      expect(() => loadConfig(resolved), name).not.toThrow();
    }
  });

  it('lets every replica drain: stop_grace_period above SHUTDOWN_DELAY_MS + DRAIN_TIMEOUT_MS + 5 s', () => {
    for (const name of replicas) {
      const env = environment(services[name]);
      const needed = configuredNumber('SHUTDOWN_DELAY_MS', env) + configuredNumber('DRAIN_TIMEOUT_MS', env) + 5000;
      expect(durationMs(services[name].stop_grace_period), name).toBeGreaterThan(needed);
    }
  });

  it('has a healthcheck on every long-running service and waits on health wherever it depends', () => {
    for (const [name, service] of Object.entries(services)) {
      if (name === 'backup') {
        expect(service.healthcheck).toEqual({ disable: true }); // no server in it
      } else {
        expect(service.healthcheck?.test, name).toBeDefined();
      }
      for (const [target, condition] of Object.entries((service.depends_on ?? {}) as Record<string, Yaml>)) {
        expect(services[target], `${name} depends on ${target}`).toBeDefined();
        expect(condition.condition, `${name} → ${target}`).toBe('service_healthy');
      }
    }
    expect(Object.keys(services.nginx.depends_on).sort()).toEqual(replicas.sort());
    for (const name of replicas) expect(Object.keys(services[name].depends_on).sort()).toEqual(['postgres', 'redis']);
  });

  it('keeps every password in a secret file: none in the file, each secret defined, granted and made by make-secrets.sh', () => {
    const text = read('docker-compose.prod.yml');
    expect(text).not.toMatch(/:\/\/[^/\s:@]*:[^@\s]+@/); // no credentials in URLs
    const defined = compose.secrets as Record<string, { file: string }>;
    const script = read('deploy/make-secrets.sh');
    for (const [name, secret] of Object.entries(defined)) {
      expect(secret.file, name).toMatch(/^\.\/deploy\/secrets\/[\w.]+$/);
      expect(script, `make-secrets.sh creates ${secret.file}`).toContain(path.basename(secret.file));
    }
    for (const [name, service] of Object.entries(services)) {
      for (const [key, value] of Object.entries(environment(service))) {
        if (/PASSWORD|SECRET|TOKEN|_URL$/.test(key) && !key.endsWith('_FILE')) {
          throw new Error(`${name}: ${key} is set in the file; use ${key}_FILE and a secret`);
        }
        const secret = /^\/run\/secrets\/([\w.]+)$/.exec(value)?.[1];
        if (secret) {
          expect(defined[secret], `${name}: ${key}`).toBeDefined();
          expect(service.secrets, `${name} is granted ${secret}`).toContain(secret);
        }
      }
    }
    for (const secret of Object.values(services).flatMap((s) => (s.secrets ?? []) as string[])) {
      expect(defined[secret], secret).toBeDefined();
    }
  });

  it('mounts only files and folders of this repository, and named volumes it declares', () => {
    for (const [name, service] of Object.entries(services)) {
      for (const volume of (service.volumes ?? []) as string[]) {
        const [source] = volume.split(':');
        if (source.startsWith('./')) expect(exists(source), `${name}: ${source}`).toBe(true);
        else expect(compose.volumes, `${name}: volume ${source}`).toHaveProperty(source);
      }
    }
    expect(services.postgres.volumes).toContain('pgdata:/var/lib/postgresql/data');
  });

  it('runs PostgreSQL tuned, with synchronous_commit on, its init script executable', () => {
    const settings = (services.postgres.command as string[]).filter((arg) => arg.includes('='));
    expect(settings).toContain('synchronous_commit=on');
    expect(settings.some((s) => s.startsWith('shared_buffers='))).toBe(true);
    const maxConnections = Number(settings.find((s) => s.startsWith('max_connections='))!.split('=')[1]);
    const poolSize = configuredNumber('PG_POOL_SIZE', environment(services['tracehouse-1']));
    expect(maxConnections).toBeGreaterThan(replicas.length * poolSize + 20);
  });

  it('points Prometheus at every replica /metrics and loads rules from the mounted folder', () => {
    const prometheus = readYaml('deploy/prometheus/prometheus.yml');
    const job = (prometheus.scrape_configs as Yaml[]).find((j) => j.job_name === 'tracehouse')!;
    expect(job.metrics_path).toBe('/metrics');
    expect(job.static_configs[0].targets).toEqual(replicas.map((name) => `${name}:${DEFAULT_PORT}`));
    expect(services.prometheus.volumes).toContain('./deploy/prometheus:/etc/prometheus:ro');
    for (const rule of prometheus.rule_files as string[]) expect(rule).toMatch(/^\/etc\/prometheus\/rules\/\*\.ya?ml$/);
    expect(exists('deploy/prometheus/rules')).toBe(true);
  });

  it('provisions Grafana datasources with fixed uids that reach the compose services with their secrets', () => {
    expect(services.grafana.volumes).toEqual(
      expect.arrayContaining([
        './deploy/grafana/provisioning:/etc/grafana/provisioning:ro',
        './deploy/grafana/dashboards:/etc/grafana/dashboards:ro',
      ]),
    );
    const text = read('deploy/grafana/provisioning/datasources/datasources.yml');
    const datasources = readYaml('deploy/grafana/provisioning/datasources/datasources.yml').datasources as Yaml[];
    const byUid = new Map(datasources.map((d) => [d.uid, d]));
    expect([...byUid.keys()].sort()).toEqual([
      'tracehouse-jaeger',
      'tracehouse-postgres',
      'tracehouse-prometheus',
      'tracehouse-tempo',
    ]);
    expect(byUid.get('tracehouse-tempo')!.url).toBe(`http://tracehouse:${DEFAULT_PORT}`);
    expect(byUid.get('tracehouse-tempo')!.jsonData.serviceMap.datasourceUid).toBe('tracehouse-prometheus');
    expect(byUid.get('tracehouse-postgres')).toMatchObject({ url: 'postgres:5432', user: 'grafana_reader' });
    expect(byUid.get('tracehouse-postgres')!.jsonData.database).toBe(services.postgres.environment.POSTGRES_DB);
    expect(read('deploy/postgres/initdb/10-grafana-reader.sh')).toContain('${GRAFANA_DB_USER:-grafana_reader}');
    expect(byUid.get('tracehouse-jaeger')!.url).toBe(`http://tracehouse:${DEFAULT_PORT}`);
    for (const name of replicas) expect(services[name].networks.backend.aliases).toContain('tracehouse');
    expect(byUid.get('tracehouse-prometheus')!.url).toBe('http://prometheus:9090');
    for (const [, file] of text.matchAll(/\$__file\{\/run\/secrets\/([\w.]+)\}/g)) {
      expect(services.grafana.secrets, file).toContain(file);
    }
    const provider = readYaml('deploy/grafana/provisioning/dashboards/tracehouse.yml').providers[0];
    expect(provider.options.path).toBe('/etc/grafana/dashboards');
  });

  it('runs the canary against the replicas with a write and read token, scraped by Prometheus', () => {
    const command = services.canary.command as string[];
    expect(command.slice(0, 2)).toEqual(['tracehouse', 'canary']);
    const arg = (flag: string) => command[command.indexOf(flag) + 1];
    expect(arg('--endpoint')).toBe(`http://tracehouse:${DEFAULT_PORT}`);
    expect(arg('--token-file')).toBe('/run/secrets/canary_token');
    expect(services.canary.secrets).toContain('canary_token');
    expect(read('deploy/make-secrets.sh')).toContain('--scope "traces:write traces:read"');
    const prometheus = readYaml('deploy/prometheus/prometheus.yml');
    const job = (prometheus.scrape_configs as Yaml[]).find((j) => j.job_name === 'tracehouse-canary')!;
    expect(job.static_configs[0].targets).toEqual([`canary:${arg('--metrics-port')}`]);
  });

  it('runs the scheduled backup loop for real: backs up, sleeps, and stops promptly on SIGTERM', async () => {
    const service = services.backup;
    expect(service.volumes).toContain('backups:/backups');
    const [shell, flag, script] = service.command as string[];
    expect([shell, flag]).toEqual(['sh', '-c']);
    expect(script).toContain('tracehouse backup --out /backups --rotate --keep');
    const dir = await mkdtemp(path.join(os.tmpdir(), 'th-backup-loop-'));
    try {
      // A stand-in `tracehouse` that records its arguments.
      await writeFile(path.join(dir, 'tracehouse'), `#!/bin/sh\necho "$@" >> "${dir}/calls"\n`);
      await chmod(path.join(dir, 'tracehouse'), 0o755);
      const child = execFile(shell, [flag, script.replaceAll('$$', '$')], {
        env: { PATH: `${dir}:${process.env.PATH}`, BACKUP_KEEP: '3', BACKUP_INTERVAL_S: '1' },
      });
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      await new Promise((resolve) => setTimeout(resolve, 2500));
      const stoppedAt = Date.now();
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(Date.now() - stoppedAt).toBeLessThan(1000);
      const calls = (await readFile(path.join(dir, 'calls'), 'utf8')).trim().split('\n');
      expect(calls.length).toBeGreaterThanOrEqual(2);
      expect(calls[0]).toBe('backup --out /backups --rotate --keep 3');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
