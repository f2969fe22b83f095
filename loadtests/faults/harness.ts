/**
 * Shared plumbing of the fault scenarios: a private stack (embedded PostgreSQL on a free port,
 * migrated; optionally a private redis-server; the built tracehouse as a child process on a fixed
 * free port, so it can be killed and started again where the clients expect it), the limits the
 * production deployment configures, and a builder for the ScenarioResult.
 *
 *   const stack = await startStack({ redis: true, env: { LOG_LEVEL: 'warn' } });
 *   try { … stack.url … await stack.restart() … } finally { await stack.stop(); }
 *
 * Why it holds state: the current tracehouse process changes on restart(); stop() always ends the
 * current one, then Redis, then PostgreSQL (deleting its directory).
 *
 * Profiling: with TH_CPU_PROF_DIR set (`TH_CPU_PROF_DIR=/tmp/prof npm run faults -- --only …`),
 * every tracehouse process preloads loadtests/load/cpu-profile.mjs and is stopped with SIGTERM, so
 * it writes DIR/CPU.<pid>.cpuprofile (read it with loadtests/load/profile.ts).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { migrate } from '../../server/storage/migrate.js';
import { profilerEnv } from '../load/profile.js';
import { REPO_ROOT } from '../../test/helpers/build-dist.js';
import { freePort, type PrivatePostgres } from '../../test/helpers/private-postgres.js';
import { spawnTracehouse, type TracehouseProcess } from '../../test/helpers/tracehouse-process.js';
import { startPrivateRedis, type PrivateRedis } from './private-redis.js';
import { startFaultPostgres } from './template-postgres.js';
import type { Scenario, ScenarioContext, ScenarioResult } from './scenario.js';

/** What docker-compose.prod.yml gives every tracehouse replica (its `x-tracehouse` anchor). */
export interface DeployedLimits {
  memoryLimitMb: number; // deploy.resources.limits.memory
  nodeOptions: string; // NODE_OPTIONS (the heap limit below the memory limit)
  shutdownDelayMs: number;
  drainTimeoutMs: number;
  stopGracePeriodS: number;
}

export function deployedLimits(): DeployedLimits {
  const compose = parse(readFileSync(path.join(REPO_ROOT, 'docker-compose.prod.yml'), 'utf8')) as {
    'x-tracehouse': {
      environment: Record<string, string>;
      stop_grace_period: string;
      deploy: { resources: { limits: { memory: string } } };
    };
  };
  const replica = compose['x-tracehouse'];
  return {
    memoryLimitMb: toMb(replica.deploy.resources.limits.memory),
    nodeOptions: replica.environment.NODE_OPTIONS ?? '',
    shutdownDelayMs: Number(replica.environment.SHUTDOWN_DELAY_MS ?? 0),
    drainTimeoutMs: Number(replica.environment.DRAIN_TIMEOUT_MS ?? 20_000),
    stopGracePeriodS: Number.parseFloat(replica.stop_grace_period),
  };
}

function toMb(size: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmg])i?b?$/i.exec(size.trim());
  if (!m) throw new Error(`cannot read the memory size '${size}'`);
  return Number(m[1]) * { k: 1 / 1024, m: 1, g: 1024 }[m[2].toLowerCase() as 'k' | 'm' | 'g'];
}

const PROFILE_DIR = process.env.TH_CPU_PROF_DIR || undefined;

export interface StackOptions {
  /** Start a private redis-server and point REDIS_URL at it. */
  redis?: boolean;
  /** Extra environment of the tracehouse process (DATABASE_URL, PORT, REDIS_URL are set here). */
  env?: Record<string, string>;
}

export interface FaultStack {
  readonly postgres: PrivatePostgres;
  readonly redis: PrivateRedis | undefined;
  /** The current tracehouse process. */
  readonly server: TracehouseProcess;
  /** Base URL; the same across restarts. */
  readonly url: string;
  readonly env: Record<string, string>;
  /** Starts a new tracehouse on the same port and database (the previous one must have exited) and waits for /ready. */
  restart(): Promise<TracehouseProcess>;
  /** Kills tracehouse if running, stops Redis, destroys PostgreSQL. Idempotent. */
  stop(): Promise<void>;
}

export async function startStack(options: StackOptions = {}): Promise<FaultStack> {
  const postgres = await startFaultPostgres();
  let redis: PrivateRedis | undefined;
  let server: TracehouseProcess | undefined;
  try {
    await migrate(postgres.connectionString);
    redis = options.redis ? await startPrivateRedis() : undefined;
    const port = await freePort();
    const env: Record<string, string> = {
      LOG_LEVEL: 'warn',
      ...options.env,
      ...(PROFILE_DIR === undefined ? {} : profilerEnv(PROFILE_DIR, options.env?.NODE_OPTIONS)),
      DATABASE_URL: postgres.connectionString,
      PORT: String(port),
      ...(redis ? { REDIS_URL: redis.url } : {}),
    };
    const spawnReady = async (): Promise<TracehouseProcess> => {
      const child = await spawnTracehouse(env);
      server = child;
      await child.waitReady(30_000);
      return child;
    };
    await spawnReady();
    let stopping: Promise<void> | undefined;
    return {
      postgres,
      redis,
      get server() {
        return server!;
      },
      url: `http://127.0.0.1:${port}`,
      env,
      restart: spawnReady,
      stop: () =>
        (stopping ??= (async () => {
          if (PROFILE_DIR !== undefined && server?.child.exitCode === null) {
            server.child.kill('SIGTERM'); // the profile is written at exit, never on SIGKILL
            await server.waitExit(60_000);
          }
          await server?.stop();
          await redis?.destroy();
          await postgres.destroy();
        })()),
    };
  } catch (err) {
    await server?.stop();
    await redis?.destroy();
    await postgres.destroy();
    throw err;
  }
}

export async function withStack<T>(options: StackOptions, fn: (stack: FaultStack) => Promise<T>): Promise<T> {
  const stack = await startStack(options);
  try {
    return await fn(stack);
  } finally {
    await stack.stop();
  }
}

/**
 * Collects one scenario's outcome: `check` records a failed assertion (the scenario goes on, so a
 * report shows every broken promise, not only the first), `figure` a number for the report.
 */
export class ResultBuilder {
  readonly #scenario: Pick<Scenario, 'id' | 'title' | 'catalogRows'>;
  readonly #startedAt = Date.now();
  readonly #context: ScenarioContext;
  readonly figures: ScenarioResult['figures'] = {};
  readonly failures: string[] = [];

  constructor(scenario: Pick<Scenario, 'id' | 'title' | 'catalogRows'>, context: ScenarioContext) {
    this.#scenario = scenario;
    this.#context = context;
  }

  check(ok: boolean, failure: string): boolean {
    if (!ok) {
      this.failures.push(failure);
      this.#context.log(`FAILED: ${failure}`);
    }
    return ok;
  }

  figure(name: string, value: number | string): void {
    this.figures[name] = typeof value === 'number' ? round(value) : value;
  }

  finish(
    parts: Partial<Pick<ScenarioResult, 'accounting' | 'statuses' | 'peakRssMb' | 'recoverySeconds'>>,
  ): ScenarioResult {
    return {
      id: this.#scenario.id,
      title: this.#scenario.title,
      catalogRows: this.#scenario.catalogRows,
      statuses: {},
      ...parts,
      ...(parts.recoverySeconds !== undefined ? { recoverySeconds: round(parts.recoverySeconds) } : {}),
      figures: this.figures,
      failures: this.failures,
      durationSeconds: round((Date.now() - this.#startedAt) / 1000),
    };
  }

  /** A result for a scenario that threw: the error is its failure. */
  crashed(err: unknown): ScenarioResult {
    this.failures.push(`scenario aborted: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    return this.finish({});
  }
}

/** Three significant decimals at most, so the report stays readable. */
export function round(value: number): number {
  return Math.abs(value) >= 100 ? Math.round(value) : Math.round(value * 1000) / 1000;
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
