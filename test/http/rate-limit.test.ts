import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, describe, it } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { installErrorHandler } from '../../src/http/error-handler.ts';
import { registerRateLimit } from '../../src/http/rate-limit.ts';
import { createMetrics } from '../../src/metrics.ts';
import { REDIS_URL } from '../helpers/app.ts';

/** A server with one route limited to 2 requests a minute per caller, listening on a real port. */
async function limitedServer(redis?: Redis): Promise<{ app: FastifyInstance; url: string }> {
  const app = Fastify();
  installErrorHandler(app, createMetrics());
  await registerRateLimit(app, { prefix: `test-${randomUUID()}:`, ...(redis && { redis }) });
  app.get('/limited', { config: { rateLimit: { max: 2, timeWindow: 60_000 } } }, async () => ({ code: 0 }));
  app.get('/free', async () => ({ code: 0 }));
  const url = await app.listen({ port: 0, host: '127.0.0.1' });
  return { app, url };
}

for (const store of ['memory', 'redis'] as const) {
  describe(`request quotas (${store} store)`, () => {
    const redis = store === 'redis' ? new Redis(REDIS_URL) : undefined;
    after(async () => redis?.quit());

    it('answers the request over the quota with 429, the envelope and Retry-After; other routes are free', async () => {
      const { app, url } = await limitedServer(redis);
      try {
        for (let i = 0; i < 2; i++) assert.equal((await fetch(`${url}/limited`)).status, 200);
        const refused = await fetch(`${url}/limited`);
        assert.equal(refused.status, 429);
        const retryAfter = Number(refused.headers.get('retry-after'));
        assert.ok(retryAfter >= 1 && retryAfter <= 60, `Retry-After ${retryAfter}`);
        const body = (await refused.json()) as { code: number; message: string };
        assert.equal(body.code, 429);
        assert.match(body.message, /too many requests/);
        assert.equal((await fetch(`${url}/free`)).status, 200);
      } finally {
        await app.close();
      }
    });
  });
}

describe('request quotas across nodes', () => {
  it('shares one count through Redis: two servers together allow the quota once', async () => {
    const redis = new Redis(REDIS_URL);
    const prefix = `test-${randomUUID()}:`;
    const servers: FastifyInstance[] = [];
    try {
      const urls: string[] = [];
      for (let i = 0; i < 2; i++) {
        const app = Fastify();
        installErrorHandler(app, createMetrics());
        await registerRateLimit(app, { prefix, redis });
        app.get('/limited', { config: { rateLimit: { max: 2, timeWindow: 60_000 } } }, async () => ({}));
        urls.push(await app.listen({ port: 0, host: '127.0.0.1' }));
        servers.push(app);
      }
      const statuses = [];
      for (const url of [urls[0], urls[1], urls[0], urls[1]])
        statuses.push((await fetch(`${url as string}/limited`)).status);
      assert.deepEqual(statuses, [200, 200, 429, 429]);
    } finally {
      for (const s of servers) await s.close();
      await redis.quit();
    }
  });
});
