/**
 * Horizontal scale: two server processes on one database behind the real nginx with the
 * production deploy/nginx/nginx.conf (test/helpers/nginx.ts renders it: local ports, temporary
 * paths; the upstream's third replica line is removed, so least_conn balances over the two). The
 * protobuf load goes through nginx's TLS port. Reported: total spans/s and each process group's
 * share of CPU (each instance, PostgreSQL, nginx, the load generator) over the measured window,
 * which shows whether PostgreSQL or the instances limit the total.
 */
import { renderNginxConfig, startNginx, type RunningNginx } from '../../test/helpers/nginx.js';
import { freePort } from '../../test/helpers/private-postgres.js';
import type { TracehouseProcess } from '../../test/helpers/tracehouse-process.js';
import { serverErrors, startServer, stopServer } from './environment.js';
import { patchingSource, runHttpLoad } from './http-load.js';
import { newRunTag } from './ids.js';
import { Ledger } from './ledger.js';
import { cpuSeconds, peakRssBytes, treeCpuSeconds, type CpuProbe } from './proc-stats.js';
import { scheduleCpuWindow, selfCpuSeconds, windowFigures, type RunResult } from './run-result.js';
import { postgresProbe, readOutcome, withFreshDatabase, type ScenarioContext } from './scenarios.js';
import { SPANS_PER_REQUEST } from './templates.js';

const INSTANCES = 2;

export async function runScale(ctx: ScenarioContext, run: number): Promise<RunResult> {
  const { settings } = ctx;
  return withFreshDatabase(ctx.db, async (url) => {
    const servers: TracehouseProcess[] = [];
    let nginx: RunningNginx | undefined;
    const ledger = new Ledger(newRunTag(), SPANS_PER_REQUEST);
    const notes: string[] = [];
    let result: Partial<RunResult> = {};
    try {
      // Started one after the other: both run migrations and partition maintenance at start.
      for (let i = 0; i < INSTANCES; i++) servers.push(await startServer(url, settings.serverEnv));
      const unused = await freePort();
      const rendered = await renderNginxConfig(
        [...servers.map((s) => s.port), unused],
        [[`        server 127.0.0.1:${unused} max_fails=1 fail_timeout=5s;\n`, '']],
      );
      nginx = await startNginx(rendered);
      const nginxPid = nginx.child.pid!;
      const probes = new Map<string, CpuProbe>([
        ...servers.map((s, i): [string, CpuProbe] => [`server-${i + 1}`, () => cpuSeconds(s.child.pid!) ?? Number.NaN]),
        ...postgresProbe(ctx.db),
        ['nginx', () => treeCpuSeconds(nginxPid)],
        ['loadgen', selfCpuSeconds],
      ]);
      const cpu = scheduleCpuWindow(probes, settings);
      const startedAt = performance.now();
      await runHttpLoad(patchingSource(ctx.templates, ledger, 'protobuf'), ledger, {
        url: nginx.url(443),
        connections: settings.connections,
        seconds: settings.warmupS + settings.durationS,
      });
      result = windowFigures(ledger, startedAt, settings);
      result.cores = await cpu.result;
      const rss = servers.map((s) => peakRssBytes(s.child.pid!) ?? 0);
      result.peakRssBytes = Math.max(...rss);
      const upstreams = new Map<string, number>();
      for (const line of await nginx.accessLog()) {
        if (line.uri !== '/v1/traces') continue;
        const upstream = String(line.upstream);
        upstreams.set(upstream, (upstreams.get(upstream) ?? 0) + 1);
      }
      const byPort = servers.map((s, i) => `server-${i + 1} ${upstreams.get(`127.0.0.1:${s.port}`) ?? 0}`);
      notes.push(`requests per instance (nginx access log): ${byPort.join(', ')}`);
    } finally {
      await nginx?.stop();
      for (const server of servers) await stopServer(server);
    }
    for (const server of servers) {
      notes.push(
        ...serverErrors(server)
          .slice(0, 3)
          .map((m) => `server error: ${m}`),
      );
    }
    const outcome = await readOutcome(url, ledger, false);
    return { ...(result as RunResult), scenario: 'scale-2', run, ...outcome, notes };
  });
}
