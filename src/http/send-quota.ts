/**
 * The per-sender quota of the routes that fan out (POST /messages/send, POST /ws/broadcast), as a
 * route's `config.rateLimit` for @fastify/rate-limit (rate-limit.ts). It is keyed by the authenticated
 * user, not the address: the plugin appends its hook after the route's own `onRequest`
 * (`hooks.authenticate`), so `request.principal` is set when it runs, and a request without valid
 * credentials gets its 401 without using up anyone's quota. Each route counts on its own.
 */
import type { FastifyRequest } from 'fastify';
import type { RateLimitOptions } from '@fastify/rate-limit';

export interface SendQuota {
  /** Requests per sender per minute; 0 turns the limit off. */
  perMinute: number;
  /** The same for admins. */
  adminPerMinute: number;
}

/** Senders kept in this node's memory without Redis (an LRU: the least recent are forgotten first). */
const LOCAL_KEYS = 100_000;

const isAdmin = (request: FastifyRequest) => request.principal?.role === 'admin';

/** The route `config.rateLimit` for a sending route; undefined when both limits are off. */
export function sendQuota(q: SendQuota): RateLimitOptions | undefined {
  if (q.perMinute === 0 && q.adminPerMinute === 0) return undefined;
  const limitOf = (request: FastifyRequest) => (isAdmin(request) ? q.adminPerMinute : q.perMinute);
  return {
    timeWindow: 60_000,
    // The plugin's per-route store takes its own LRU size (the registration's is not inherited).
    cache: LOCAL_KEYS,
    max: (request) => limitOf(request),
    allowList: (request) => limitOf(request) === 0,
    keyGenerator: (request) => `user:${request.principal?.userId ?? 'none'}`,
  };
}
