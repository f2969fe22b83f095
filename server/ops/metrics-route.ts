import type { FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';

/** GET /metrics in the Prometheus text format. nginx keeps it off the public side. */
export async function registerMetricsRoute(app: FastifyInstance, registry: Registry): Promise<void> {
  app.get('/metrics', { config: { access: 'public' } }, async (_request, reply) => {
    const text = await registry.metrics();
    return reply.header('content-type', registry.contentType).send(text);
  });
}
