/**
 * deploy/k8s/*.yaml (the backup CronJob included) parse and reference only what exists: the
 * tracehouse image's commands and variables (server/config.ts), ConfigMaps and Secrets with the keys
 * used, the container port and probe paths the server serves, labels that select the pods, and
 * drain times that fit in the termination grace period. (No cluster here: this is the check
 * instead of `kubectl apply --dry-run=server`.)
 */
import { describe, expect, it } from 'vitest';
import { DEFAULTS } from '../../../server/config.js';
import {
  DEFAULT_MAX_BODY_BYTES,
  DEFAULT_PORT,
  configuredNumber,
  environmentProblems,
  nginxSizeBytes,
  parseDockerfile,
  read,
  readManifests,
  type Yaml,
} from './deploy-files.js';

const manifests = readManifests();
const byKind = (kind: string): Yaml[] => manifests.filter((m) => m.doc.kind === kind).map((m) => m.doc);
const named = (kind: string, name: string): Yaml | undefined => byKind(kind).find((d) => d.metadata.name === name);
const deployment = named('Deployment', 'tracehouse')!;
const podTemplate = deployment.spec.template;
const server = podTemplate.spec.containers.find((c: Yaml) => c.name === 'tracehouse');
const TRACEHOUSE_IMAGE = /^([\w.-]+(:\d+)?\/)*tracehouse:[\w.-]+$/;
const CLI_COMMANDS = [
  ...read('server/cli.ts').matchAll(/'([a-z-]+)'/g),
  ...read('server/cli-ops.ts').matchAll(/'([a-z-]+)'/g),
].map((m) => m[1]);

function podSpecs(): Array<{ where: string; spec: Yaml; labels: Record<string, string> }> {
  const found: Array<{ where: string; spec: Yaml; labels: Record<string, string> }> = [];
  for (const { file, doc } of manifests) {
    const template =
      doc.kind === 'CronJob'
        ? doc.spec.jobTemplate.spec.template
        : ['Deployment', 'Job'].includes(doc.kind)
          ? doc.spec.template
          : undefined;
    if (template) {
      found.push({
        where: `${file} ${doc.kind}/${doc.metadata.name}`,
        spec: template.spec,
        labels: template.metadata?.labels ?? {},
      });
    }
  }
  return found;
}

function tracehouseContainers(): Array<{ where: string; container: Yaml; spec: Yaml }> {
  return podSpecs().flatMap(({ where, spec }) =>
    (spec.containers as Yaml[])
      .filter((c) => TRACEHOUSE_IMAGE.test(c.image.split(/\s/)[0]))
      .map((container) => ({ where, container, spec })),
  );
}

function matches(selector: Record<string, string>, labels: Record<string, string>): boolean {
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

describe('deploy/k8s', () => {
  it('parses, every object with apiVersion, kind and name; includes what the issue lists', () => {
    for (const { file, doc } of manifests) {
      expect(doc.apiVersion, file).toBeTruthy();
      expect(doc.metadata?.name, file).toBeTruthy();
    }
    const kinds = new Set(manifests.map((m) => m.doc.kind));
    for (const kind of [
      'Namespace',
      'Deployment',
      'Service',
      'Ingress',
      'HorizontalPodAutoscaler',
      'PodDisruptionBudget',
      'NetworkPolicy',
      'ConfigMap',
      'Secret',
      'Job',
      'ServiceMonitor',
    ]) {
      expect(kinds.has(kind), kind).toBe(true);
    }
  });

  it('runs the tracehouse image with CLI commands that exist, as the image user, read-only root', () => {
    const dockerUser = parseDockerfile(read('deploy/Dockerfile'))
      .stages.at(-1)!
      .instructions.filter((i) => i.keyword === 'USER')
      .at(-1)!.args;
    const containers = tracehouseContainers();
    expect(containers.map((c) => c.container.args?.[1])).toEqual(expect.arrayContaining(['serve', 'migrate']));
    for (const { where, container, spec } of containers) {
      expect(container.command, `${where}: keep the image's entrypoint (tini)`).toBeUndefined();
      expect(container.args[0], where).toBe('tracehouse');
      expect(CLI_COMMANDS, where).toContain(container.args[1]);
      expect(`${spec.securityContext.runAsUser}:${spec.securityContext.runAsGroup}`, where).toBe(dockerUser);
      expect(spec.securityContext.runAsNonRoot, where).toBe(true);
      expect(container.securityContext.readOnlyRootFilesystem, where).toBe(true);
      expect(container.resources?.requests, where).toBeDefined();
      expect(container.resources?.limits?.memory, where).toBeDefined();
    }
  });

  it('gives tracehouse containers only variables it reads, from ConfigMaps and Secret keys that are defined', () => {
    for (const { where, container } of tracehouseContainers()) {
      const names = (container.env ?? []).map((e: Yaml) => e.name as string);
      for (const source of container.envFrom ?? []) {
        const configMap = named('ConfigMap', source.configMapRef?.name);
        expect(configMap, `${where}: ConfigMap ${source.configMapRef?.name}`).toBeDefined();
        names.push(...Object.keys(configMap!.data));
      }
      expect(environmentProblems(names), where).toEqual([]);
      for (const variable of container.env ?? []) {
        const ref = variable.valueFrom?.secretKeyRef;
        if (!ref) continue;
        const secret = named('Secret', ref.name);
        expect(secret, `${where}: Secret ${ref.name}`).toBeDefined();
        expect(Object.keys(secret!.stringData ?? secret!.data), `${where}: ${ref.name}.${ref.key}`).toContain(ref.key);
      }
    }
  });

  it('probes /ready for readiness and /health for liveness on the server port', () => {
    const port = server.ports.find((p: Yaml) => p.name === 'http');
    expect(port.containerPort).toBe(DEFAULT_PORT);
    expect(server.readinessProbe.httpGet).toEqual({ path: '/ready', port: 'http' });
    expect(server.livenessProbe.httpGet).toEqual({ path: '/health', port: 'http' });
    expect(server.startupProbe.httpGet).toEqual({ path: '/health', port: 'http' });
  });

  it('fits preStop, SHUTDOWN_DELAY_MS and DRAIN_TIMEOUT_MS (plus 10 s) in terminationGracePeriodSeconds', () => {
    const env = named('ConfigMap', 'tracehouse-config')!.data as Record<string, string>;
    const preStop = server.lifecycle.preStop.exec.command as string[];
    expect(preStop[0]).toBe('sleep');
    const needed =
      Number(preStop[1]) * 1000 +
      configuredNumber('SHUTDOWN_DELAY_MS', env) +
      configuredNumber('DRAIN_TIMEOUT_MS', env) +
      10_000;
    expect(configuredNumber('SHUTDOWN_DELAY_MS', env)).toBeGreaterThan(0);
    expect(podTemplate.spec.terminationGracePeriodSeconds * 1000).toBeGreaterThan(needed);
  });

  it('mounts the JWT public key where JWT_PUBLIC_KEY_FILE points', () => {
    const file = named('ConfigMap', 'tracehouse-config')!.data.JWT_PUBLIC_KEY_FILE as string;
    const mount = server.volumeMounts.find((m: Yaml) => file.startsWith(`${m.mountPath}/`));
    const volume = podTemplate.spec.volumes.find((v: Yaml) => v.name === mount.name);
    const item = volume.secret.items.find((i: Yaml) => `${mount.mountPath}/${i.path}` === file);
    expect(item).toBeDefined();
    expect(Object.keys(named('Secret', volume.secret.secretName)!.stringData)).toContain(item.key);
  });

  it('selects the server pods from the Service, PDB, NetworkPolicy and ServiceMonitor; HPA scales the Deployment', () => {
    const labels = podTemplate.metadata.labels;
    expect(matches(deployment.spec.selector.matchLabels, labels)).toBe(true);
    const service = named('Service', 'tracehouse')!;
    expect(matches(service.spec.selector, labels)).toBe(true);
    expect(service.spec.ports).toEqual([
      expect.objectContaining({ name: 'http', port: DEFAULT_PORT, targetPort: 'http' }),
    ]);
    expect(matches(named('PodDisruptionBudget', 'tracehouse')!.spec.selector.matchLabels, labels)).toBe(true);
    const policy = named('NetworkPolicy', 'tracehouse')!;
    expect(matches(policy.spec.podSelector.matchLabels, labels)).toBe(true);
    expect(policy.spec.ingress.flatMap((rule: Yaml) => rule.ports.map((p: Yaml) => p.port))).toEqual([DEFAULT_PORT]);
    const monitor = named('ServiceMonitor', 'tracehouse')!;
    expect(matches(monitor.spec.selector.matchLabels, service.metadata.labels)).toBe(true);
    expect(monitor.spec.endpoints).toEqual([expect.objectContaining({ port: 'http', path: '/metrics' })]);
    const hpa = named('HorizontalPodAutoscaler', 'tracehouse')!;
    expect(hpa.spec.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: 'tracehouse' });
    expect(hpa.spec.minReplicas).toBeGreaterThanOrEqual(deployment.spec.replicas);
  });

  it('routes only ingest and the query API through the Ingress, with the nginx.conf limits', () => {
    const ingress = named('Ingress', 'tracehouse')!;
    const paths = ingress.spec.rules.flatMap((rule: Yaml) => rule.http.paths);
    expect(paths.map((p: Yaml) => p.path).sort()).toEqual(['/api', '/v1/traces']);
    for (const p of paths) expect(p.backend.service).toEqual({ name: 'tracehouse', port: { name: 'http' } });
    const annotations = ingress.metadata.annotations as Record<string, string>;
    const bodyLimit = nginxSizeBytes(annotations['nginx.ingress.kubernetes.io/proxy-body-size']);
    expect(bodyLimit).toBe(DEFAULT_MAX_BODY_BYTES);
    expect(Number(named('ConfigMap', 'tracehouse-config')!.data.MAX_BODY_BYTES)).toBe(bodyLimit);
    expect(annotations['nginx.ingress.kubernetes.io/proxy-request-buffering']).toBe('off');
    expect(Number(annotations['nginx.ingress.kubernetes.io/proxy-read-timeout']) * 1000).toBeGreaterThan(
      2 * DEFAULTS.websocket.pingIntervalMs,
    );
  });

  it('has a migration Job that runs `tracehouse migrate` against the database Secret', () => {
    const job = named('Job', 'tracehouse-migrate')!;
    const container = job.spec.template.spec.containers[0];
    expect(container.args).toEqual(['tracehouse', 'migrate']);
    expect(job.spec.template.spec.restartPolicy).toBe('Never');
    expect(container.env.map((e: Yaml) => e.name)).toContain('DATABASE_URL');
  });
});
