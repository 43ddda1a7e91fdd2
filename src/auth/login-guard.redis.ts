/**
 * Login lockout shared by every node through Redis, on top of each node's own guard (login-guard.ts):
 * the Redis count makes the limit hold across nodes, the local one answers alone while Redis is away.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import {
  admitted,
  createLoginGuard,
  FAILURE_MEMORY_MS,
  IN_FLIGHT_RETRY_SEC,
  pairKey,
  type Admission,
  type AttemptOutcome,
  type LoginGuard,
  type LoginGuardOptions,
  viaSharedStore,
  type SharedStore,
} from './login-guard.ts';

/**
 * The longest a login may stay in flight in Redis's count: a node that dies mid-check must not hold
 * the pair's attempts forever. Far above a queued hash's wait (seconds, SKYPUSH_HASH_QUEUE).
 */
export const IN_FLIGHT_TTL_MS = 60_000;

// KEYS: failure count, lock, in-flight attempts (a sorted set: attempt id → deadline, Redis time).
// ARGV: max failures, attempt id, in-flight TTL ms. Returns 0 when admitted, the lock's TTL in ms when
// locked, -1 when failures plus attempts in flight already reach the limit.
const BEGIN_SCRIPT = `
local ttl = redis.call('PTTL', KEYS[2])
if ttl > 0 then return ttl end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n + redis.call('ZCARD', KEYS[3]) >= tonumber(ARGV[1]) then return -1 end
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[3]), ARGV[2])
redis.call('PEXPIRE', KEYS[3], ARGV[3])
return 0`;

// KEYS as above. ARGV: max failures, lockout ms, failure memory ms, attempt id.
// Reaching the limit sets the lock and clears the count, so the first failure after the lockout
// starts a new count (as on one node).
const FAIL_SCRIPT = `
redis.call('ZREM', KEYS[3], ARGV[4])
local n = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
if n >= tonumber(ARGV[1]) then
  redis.call('SET', KEYS[2], '1', 'PX', ARGV[2])
  redis.call('DEL', KEYS[1])
end
return n`;

/** Redis calls slower than this count as Redis being away: login must not hang on it. */
const REDIS_TIMEOUT_MS = 500;

export interface SharedLoginGuardOptions extends LoginGuardOptions {
  redis: Redis;
  prefix: string;
  logger: Logger;
}

/** One shared guard: its options, this node's own guard, and its store (whether it was last seen away). */
interface Shared {
  opts: SharedLoginGuardOptions;
  local: LoginGuard;
  store: SharedStore;
}

type PairKeys = readonly [string, string, string];

function pairKeys(prefix: string, u: string, ip: string): PairKeys {
  const h = createHash('sha256').update(pairKey(u, ip)).digest('hex');
  const base = `${prefix}login:${h}`;
  return [`${base}:n`, `${base}:lock`, `${base}:p`] as const;
}

/** Runs one call to Redis; undefined (logged once per outage) when it fails or takes too long. */
function shared<T>(g: Shared, op: () => Promise<T>): Promise<T | undefined> {
  return viaSharedStore(g.store, op);
}

function settle(g: Shared, k: PairKeys, id: string, outcome: AttemptOutcome) {
  const { redis, maxFailures, lockoutSec } = g.opts;
  const [n, lock, p] = k;
  if (outcome === 'success') return shared(g, () => redis.del(n, p));
  if (outcome === 'unchecked') return shared(g, () => redis.zrem(p, id));
  return shared(g, () =>
    redis.eval(FAIL_SCRIPT, 3, n, lock, p, maxFailures, lockoutSec * 1000, FAILURE_MEMORY_MS, id),
  );
}

async function begin(g: Shared, u: string, ip: string): Promise<Admission> {
  const mine = await g.local.begin(u, ip);
  if (!mine.admitted) return mine;
  const { redis, maxFailures } = g.opts;
  const k = pairKeys(g.opts.prefix, u, ip);
  const id = randomBytes(8).toString('hex');
  const r = await shared(
    g,
    () => redis.eval(BEGIN_SCRIPT, 3, ...k, maxFailures, id, IN_FLIGHT_TTL_MS) as Promise<number>,
  );
  if (r !== undefined && r !== 0) {
    await mine.attempt.end('unchecked');
    return { admitted: false, retryAfter: r > 0 ? Math.ceil(r / 1000) : IN_FLIGHT_RETRY_SEC };
  }
  // Admitted, also when Redis did not answer (this node's count holds alone); a begin that landed
  // late is still removed by the attempt's end, which names the same id.
  return admitted((outcome) => Promise.all([mine.attempt.end(outcome), settle(g, k, id, outcome)]));
}

/**
 * Lockout shared by every node through Redis. Keys are `<prefix>login:<sha256(username, address)>:n|:lock|:p`
 * (no username or address in clear) and expire by themselves; the lock's TTL and in-flight deadlines
 * are Redis's time, so nodes' clocks do not matter. Every attempt is also counted by this node's own
 * guard, which answers alone while Redis is unreachable.
 */
export function createSharedLoginGuard(opts: SharedLoginGuardOptions): LoginGuard {
  const store: SharedStore = { name: 'Redis', timeoutMs: REDIS_TIMEOUT_MS, logger: opts.logger, away: false };
  const g: Shared = { opts, local: createLoginGuard(opts), store };
  return { begin: (u, ip) => begin(g, u, ip) };
}
