/**
 * Request quotas, shared by the routes that need one (login per source, sends per sender): the
 * well-kept @fastify/rate-limit, registered once with `global: false` so that only routes naming a
 * `config.rateLimit` are limited. In a cluster its counters live in Redis, so a limit is per cluster,
 * not per node; while Redis is away each request is let through (a quota is no reason to refuse service).
 */
import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import { AppError, Errors } from '../errors.ts';

export interface RateLimitDeps {
  /** The cluster's Redis; absent in embedded mode (counters in this process, an LRU of 100,000 keys). */
  redis?: Redis;
  /** Key prefix in Redis. */
  prefix: string;
}

/** Registers the limiter; a route opts in with `config: { rateLimit: { max, timeWindow, keyGenerator } }`. */
export async function registerRateLimit(app: FastifyInstance, deps: RateLimitDeps): Promise<void> {
  await app.register(rateLimit, {
    global: false,
    // The in-memory store is an LRU: a flood of distinct keys evicts old ones instead of growing. A route
    // with its own `config.rateLimit` gets a store of its own and must set `cache` there too (the plugin
    // does not pass this one on; its default is 5,000 keys).
    cache: 100_000,
    ...(deps.redis && { redis: deps.redis, nameSpace: `${deps.prefix}rl:` }),
    skipOnError: true,
    // Only Retry-After on a refusal; the x-ratelimit-* headers on every answer cost bytes for nothing.
    addHeadersOnExceeding: {
      'x-ratelimit-limit': false,
      'x-ratelimit-remaining': false,
      'x-ratelimit-reset': false,
    },
    addHeaders: {
      'x-ratelimit-limit': false,
      'x-ratelimit-remaining': false,
      'x-ratelimit-reset': false,
      'retry-after': true,
    },
    errorResponseBuilder: (_request, context) =>
      new AppError(Errors.TOO_MANY_REQUESTS, `too many requests; retry in ${context.after}`, {
        headers: { 'Retry-After': String(Math.max(1, Math.ceil(context.ttl / 1000))) },
      }),
  });
}
