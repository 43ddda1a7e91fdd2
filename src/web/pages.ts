/** The inbox (/) and admin console (/admin) pages, served from src/web/static. */
import { readFile } from 'node:fs/promises';
import type { FastifyInstance } from 'fastify';

const INDEX = new URL('./static/index.html', import.meta.url);

export async function webPages(app: FastifyInstance): Promise<void> {
  app.get('/', { schema: { hide: true } }, async (_request, reply) => {
    void reply.type('text/html; charset=utf-8');
    return readFile(INDEX, 'utf8').catch(
      () =>
        '<!doctype html><title>skypush</title><p>skypush is running. API docs: <a href="/docs">/docs</a></p>',
    );
  });
}
