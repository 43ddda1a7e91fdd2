/**
 * Failed-login counting with lockout. Failures are counted per (account, client address): an attacker
 * who guesses passwords for an account locks out only their own address, never the account's owner
 * elsewhere. A failure is forgotten a day after the pair's last one.
 *
 * One node counts in a bounded map (the oldest entries go first). A cluster counts in Redis, so the
 * limit holds across nodes, with the node's own map underneath: while Redis is away each node still
 * enforces the limit on what it sees itself (docs/API.md, "Lockout").
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';

export interface LoginGuard {
  /** Seconds until the pair may try again, or 0 if it may try now. */
  retryAfter(username: string, ip: string): Promise<number>;
  fail(username: string, ip: string): Promise<void>;
  succeed(username: string, ip: string): Promise<void>;
}

export interface LoginGuardOptions {
  maxFailures: number;
  lockoutSec: number;
  maxEntries?: number;
  now?: () => number;
}

/** How long a failure counts toward a lockout when no further failure follows. */
export const FAILURE_MEMORY_MS = 24 * 3600 * 1000;

interface Entry {
  failures: number;
  lockedUntil: number;
  lastFailure: number;
}

const pairKey = (u: string, ip: string) => `${u.toLowerCase()}\u0000${ip}`;

export function createLoginGuard(opts: LoginGuardOptions): LoginGuard {
  const entries = new Map<string, Entry>();
  const max = opts.maxEntries ?? 100_000;
  const now = opts.now ?? Date.now;
  return {
    async retryAfter(u, ip) {
      const e = entries.get(pairKey(u, ip));
      if (!e || e.lockedUntil <= now()) return 0;
      return Math.ceil((e.lockedUntil - now()) / 1000);
    },
    async fail(u, ip) {
      const k = pairKey(u, ip);
      const t = now();
      let e = entries.get(k);
      entries.delete(k);
      // A lockout that ran out, or failures from long ago, start the count afresh.
      if (!e || (e.lockedUntil !== 0 && e.lockedUntil <= t) || t - e.lastFailure > FAILURE_MEMORY_MS)
        e = { failures: 0, lockedUntil: 0, lastFailure: t };
      e.failures++;
      e.lastFailure = t;
      if (e.failures >= opts.maxFailures) e.lockedUntil = t + opts.lockoutSec * 1000;
      entries.set(k, e);
      if (entries.size > max) entries.delete(entries.keys().next().value as string);
    },
    async succeed(u, ip) {
      entries.delete(pairKey(u, ip));
    },
  };
}

// KEYS[1] failure count, KEYS[2] lock. ARGV: max failures, lockout ms, failure memory ms.
// Reaching the limit sets the lock and clears the count, so the first failure after the lockout
// starts a new count (as on one node).
const FAIL_SCRIPT = `
local n = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
if n >= tonumber(ARGV[1]) then
  redis.call('SET', KEYS[2], '1', 'PX', ARGV[2])
  redis.call('DEL', KEYS[1])
end
return n`;

/** Redis calls slower than this count as Redis being away: login must not hang on it. */
const REDIS_TIMEOUT_MS = 500;

/**
 * Lockout shared by every node through Redis. Keys are `<prefix>login:<sha256(username, address)>:n|:lock`
 * (no username or address in clear) and expire by themselves; the lock's TTL is Redis's, so nodes' clocks
 * do not matter. Every failure is also counted by this node's own guard, which answers alone while Redis
 * is unreachable.
 */
export function createSharedLoginGuard(
  opts: LoginGuardOptions & { redis: Redis; prefix: string; logger: Logger },
): LoginGuard {
  const local = createLoginGuard(opts);
  const keys = (u: string, ip: string) => {
    const h = createHash('sha256').update(pairKey(u, ip)).digest('hex');
    return [`${opts.prefix}login:${h}:n`, `${opts.prefix}login:${h}:lock`] as const;
  };
  let away = false;
  async function shared<T>(op: () => Promise<T>): Promise<T | undefined> {
    let timer: NodeJS.Timeout | undefined;
    try {
      const r = await Promise.race([
        op(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`no answer in ${REDIS_TIMEOUT_MS} ms`)),
            REDIS_TIMEOUT_MS,
          );
        }),
      ]);
      if (away) opts.logger.info('login lockout shared through Redis again');
      away = false;
      return r;
    } catch (err) {
      if (!away)
        opts.logger.warn(
          { err: { message: (err as Error).message } },
          'redis unreachable: login lockout counts on this node only until it is back',
        );
      away = true;
      return undefined;
    } finally {
      clearTimeout(timer);
    }
  }
  return {
    async retryAfter(u, ip) {
      const [, lock] = keys(u, ip);
      const [mine, ttl] = await Promise.all([local.retryAfter(u, ip), shared(() => opts.redis.pttl(lock))]);
      return Math.max(mine, ttl !== undefined && ttl > 0 ? Math.ceil(ttl / 1000) : 0);
    },
    async fail(u, ip) {
      const [n, lock] = keys(u, ip);
      await Promise.all([
        local.fail(u, ip),
        shared(() =>
          opts.redis.eval(
            FAIL_SCRIPT,
            2,
            n,
            lock,
            opts.maxFailures,
            opts.lockoutSec * 1000,
            FAILURE_MEMORY_MS,
          ),
        ),
      ]);
    },
    async succeed(u, ip) {
      const [n] = keys(u, ip);
      await Promise.all([local.succeed(u, ip), shared(() => opts.redis.del(n))]);
    },
  };
}
