/**
 * Login attempt counting with lockout. Attempts are counted per (account, client address): an attacker
 * who guesses passwords for an account locks out only their own address, never the account's owner
 * elsewhere. A failure is forgotten a day after the pair's last one.
 *
 * An attempt is counted when it starts, before the password is hashed: attempts in flight count as
 * failures until they end, so a thousand concurrent guesses for one pair get at most `maxFailures`
 * hashes and the rest a 429 at once. A success clears the pair's count (in-flight attempts included);
 * an attempt that ended without a check (hasher busy, client gone) is given back.
 *
 * One node counts in a bounded map (the oldest entries go first). A cluster counts in Redis, atomically,
 * so the limit holds across nodes, with the node's own map underneath: while Redis is away each node
 * still enforces the limit on what it sees itself (docs/API.md, "Lockout").
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';

/** How an attempt ended: `unchecked` means the password was never hashed (it does not count). */
export type AttemptOutcome = 'success' | 'failure' | 'unchecked';

export interface LoginAttempt {
  /** Settles the attempt; only the first call counts. Never throws. */
  end(outcome: AttemptOutcome): Promise<void>;
}

export type Admission = { admitted: true; attempt: LoginAttempt } | { admitted: false; retryAfter: number };

export interface LoginGuard {
  /** Counts an attempt for the pair before any hashing, or refuses it with seconds to wait. */
  begin(username: string, ip: string): Promise<Admission>;
}

export interface LoginGuardOptions {
  maxFailures: number;
  lockoutSec: number;
  maxEntries?: number;
  now?: () => number;
}

/** How long a failure counts toward a lockout when no further failure follows. */
export const FAILURE_MEMORY_MS = 24 * 3600 * 1000;
/** Retry-After when the pair is at its limit with attempts still in flight (not yet locked). */
export const IN_FLIGHT_RETRY_SEC = 1;

interface Entry {
  failures: number;
  /** Attempts begun and not yet ended, of this entry's generation. */
  pending: number;
  lockedUntil: number;
  lastFailure: number;
  /** A cleared pair gets a new entry: attempts begun before do not decrement the new one. */
  gen: number;
}

const pairKey = (u: string, ip: string) => `${u.toLowerCase()}\u0000${ip}`;

export function createLoginGuard(opts: LoginGuardOptions): LoginGuard {
  const entries = new Map<string, Entry>();
  const max = opts.maxEntries ?? 100_000;
  const now = opts.now ?? Date.now;
  let generation = 0;

  // The pair's live entry, refreshed: a lockout that ran out, or failures from long ago, start afresh.
  function entry(k: string, t: number): Entry {
    let e = entries.get(k);
    entries.delete(k);
    if (!e) e = { failures: 0, pending: 0, lockedUntil: 0, lastFailure: t, gen: ++generation };
    if ((e.lockedUntil !== 0 && e.lockedUntil <= t) || t - e.lastFailure > FAILURE_MEMORY_MS) {
      e.failures = 0;
      e.lockedUntil = 0;
    }
    entries.set(k, e);
    if (entries.size > max) entries.delete(entries.keys().next().value as string);
    return e;
  }

  function settle(k: string, gen: number, outcome: AttemptOutcome): void {
    const t = now();
    if (outcome === 'success') {
      entries.delete(k);
      return;
    }
    const e = entry(k, t);
    if (e.gen === gen && e.pending > 0) e.pending--;
    if (outcome === 'failure') {
      e.failures++;
      e.lastFailure = t;
      if (e.failures >= opts.maxFailures) e.lockedUntil = t + opts.lockoutSec * 1000;
    }
    if (e.failures === 0 && e.pending === 0) entries.delete(k);
  }

  return {
    async begin(u, ip) {
      const k = pairKey(u, ip);
      const t = now();
      const e = entry(k, t);
      if (e.lockedUntil > t) return { admitted: false, retryAfter: Math.ceil((e.lockedUntil - t) / 1000) };
      if (e.failures + e.pending >= opts.maxFailures)
        return { admitted: false, retryAfter: IN_FLIGHT_RETRY_SEC };
      e.pending++;
      const gen = e.gen;
      let ended = false;
      return {
        admitted: true,
        attempt: {
          async end(outcome) {
            if (ended) return;
            ended = true;
            settle(k, gen, outcome);
          },
        },
      };
    },
  };
}

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

/**
 * Lockout shared by every node through Redis. Keys are `<prefix>login:<sha256(username, address)>:n|:lock|:p`
 * (no username or address in clear) and expire by themselves; the lock's TTL and in-flight deadlines
 * are Redis's time, so nodes' clocks do not matter. Every attempt is also counted by this node's own
 * guard, which answers alone while Redis is unreachable.
 */
export function createSharedLoginGuard(
  opts: LoginGuardOptions & { redis: Redis; prefix: string; logger: Logger },
): LoginGuard {
  const local = createLoginGuard(opts);
  const { redis } = opts;
  const keys = (u: string, ip: string) => {
    const h = createHash('sha256').update(pairKey(u, ip)).digest('hex');
    const base = `${opts.prefix}login:${h}`;
    return [`${base}:n`, `${base}:lock`, `${base}:p`] as const;
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

  function settle(k: readonly [string, string, string], id: string, outcome: AttemptOutcome) {
    const [n, lock, p] = k;
    if (outcome === 'success') return shared(() => redis.del(n, p));
    if (outcome === 'unchecked') return shared(() => redis.zrem(p, id));
    const { maxFailures, lockoutSec } = opts;
    return shared(() =>
      redis.eval(FAIL_SCRIPT, 3, n, lock, p, maxFailures, lockoutSec * 1000, FAILURE_MEMORY_MS, id),
    );
  }

  return {
    async begin(u, ip) {
      const mine = await local.begin(u, ip);
      if (!mine.admitted) return mine;
      const k = keys(u, ip);
      const id = randomBytes(8).toString('hex');
      const r = await shared(
        () => redis.eval(BEGIN_SCRIPT, 3, ...k, opts.maxFailures, id, IN_FLIGHT_TTL_MS) as Promise<number>,
      );
      if (r !== undefined && r !== 0) {
        await mine.attempt.end('unchecked');
        return { admitted: false, retryAfter: r > 0 ? Math.ceil(r / 1000) : IN_FLIGHT_RETRY_SEC };
      }
      // Admitted, also when Redis did not answer (this node's count holds alone); a begin that landed
      // late is still removed by the attempt's end, which names the same id.
      let ended = false;
      return {
        admitted: true,
        attempt: {
          async end(outcome) {
            if (ended) return;
            ended = true;
            await Promise.all([mine.attempt.end(outcome), settle(k, id, outcome)]);
          },
        },
      };
    },
  };
}
