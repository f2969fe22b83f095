/**
 * Probes. /health is liveness only (the process answers). /ready is what a load balancer needs:
 * 503 while starting, while draining, when PostgreSQL does not answer, or when the ingest queue is
 * saturated. The PostgreSQL check is cached for `pingCacheMs` so a busy probe cannot load it.
 */
import type { FastifyInstance } from 'fastify';

export interface ReadinessSources {
  isStarted: () => boolean;
  isDraining: () => boolean;
  isSaturated: () => boolean;
  pingStorage: () => Promise<void>;
}

export type ReadyState =
  { ready: true } | { ready: false; reason: 'starting' | 'draining' | 'storage_unreachable' | 'queue_saturated' };

export class Readiness {
  readonly #sources: ReadinessSources;
  readonly #pingCacheMs: number;
  #lastPing: { at: number; ok: boolean } | undefined;
  #inFlight: Promise<boolean> | undefined;

  constructor(sources: ReadinessSources, pingCacheMs = 1000) {
    this.#sources = sources;
    this.#pingCacheMs = pingCacheMs;
  }

  async check(): Promise<ReadyState> {
    if (!this.#sources.isStarted()) return { ready: false, reason: 'starting' };
    if (this.#sources.isDraining()) return { ready: false, reason: 'draining' };
    if (!(await this.#storageOk())) return { ready: false, reason: 'storage_unreachable' };
    if (this.#sources.isSaturated()) return { ready: false, reason: 'queue_saturated' };
    return { ready: true };
  }

  async #storageOk(): Promise<boolean> {
    const now = Date.now();
    if (this.#lastPing && now - this.#lastPing.at < this.#pingCacheMs) return this.#lastPing.ok;
    this.#inFlight ??= this.#sources.pingStorage().then(
      () => true,
      () => false,
    );
    const ok = await this.#inFlight;
    this.#inFlight = undefined;
    this.#lastPing = { at: Date.now(), ok };
    return ok;
  }
}

export async function registerProbes(app: FastifyInstance, readiness: Readiness): Promise<void> {
  app.get('/health', { config: { access: 'public' } }, async () => ({ status: 'ok' }));
  app.get('/ready', { config: { access: 'public' } }, async (_request, reply) => {
    const state = await readiness.check();
    if (state.ready) return { status: 'ready' };
    return reply.code(503).header('retry-after', '1').send({ status: 'not_ready', reason: state.reason });
  });
}
