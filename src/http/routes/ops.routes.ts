/** Liveness, readiness and Prometheus metrics. */
import type { FastifyInstance } from 'fastify';
import { AppError, Errors } from '../../errors.ts';
import { ok } from '../envelope.ts';
import type { Metrics } from '../../metrics.ts';
import type { Store } from '../../store/database.ts';

export interface OpsRouteDeps {
  store: Pick<Store, 'ping'>;
  metrics: Pick<Metrics, 'registry'>;
  isShuttingDown: () => boolean;
}

export async function opsRoutes(
  app: FastifyInstance,
  { store, metrics, isShuttingDown }: OpsRouteDeps,
): Promise<void> {
  const hide = { hide: true, tags: ['ops'] };
  app.get('/healthz', { schema: { ...hide, summary: 'Process is up' } }, async () => ok({ status: 'ok' }));
  app.get(
    '/readyz',
    { schema: { ...hide, summary: 'Database reachable and not shutting down' } },
    async () => {
      if (isShuttingDown()) throw new AppError(Errors.SHUTTING_DOWN);
      try {
        await store.ping();
      } catch {
        throw new AppError(Errors.DATABASE_UNAVAILABLE);
      }
      return ok({ status: 'ready' });
    },
  );
  app.get('/metrics', { schema: { ...hide, summary: 'Prometheus metrics' } }, async (_request, reply) => {
    void reply.header('content-type', metrics.registry.contentType);
    return metrics.registry.metrics();
  });
}
