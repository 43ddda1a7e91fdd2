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
 * still enforces the limit on what it sees itself (docs/API.md, "Lockout"); that one is in
 * login-guard.redis.ts.
 */

/** How an attempt ended: `unchecked` means the password was never hashed (it does not count). */
export type AttemptOutcome = 'success' | 'failure' | 'unchecked';

export interface LoginAttempt {
  /** Settles the attempt; only the first call counts. Never throws. */
  end(outcome: AttemptOutcome): Promise<void>;
}

export type Admission = { admitted: true; attempt: LoginAttempt } | { admitted: false; retryAfter: number };

/** An admission whose attempt ends once: a second end() (a retry, a late close) does nothing. */
export function admitted(end: (outcome: AttemptOutcome) => void | Promise<unknown>): Admission {
  let ended = false;
  return {
    admitted: true,
    attempt: {
      async end(outcome) {
        if (ended) return;
        ended = true;
        await end(outcome);
      },
    },
  };
}

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

/** The (account, client address) pair an attempt counts for; usernames are case-insensitive. */
export const pairKey = (u: string, ip: string) => `${u.toLowerCase()}\u0000${ip}`;

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
      return admitted((outcome) => settle(k, gen, outcome));
    },
  };
}

/** A guard's shared store (Redis or PostgreSQL) as the shared guards reach it, and whether it is away. */
export interface SharedStore {
  /** Named in the log lines: 'Redis' or 'PostgreSQL'. */
  name: string;
  timeoutMs: number;
  logger: { info(msg: string): void; warn(obj: object, msg: string): void };
  away: boolean;
}

/**
 * Runs one call to the shared store; undefined (logged once per outage) when it fails or takes longer
 * than its timeout: the node then counts on its own until the store is back.
 */
export async function viaSharedStore<T>(store: SharedStore, op: () => Promise<T>): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    const r = await Promise.race([
      op(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer in ${store.timeoutMs} ms`)), store.timeoutMs);
      }),
    ]);
    if (store.away) store.logger.info(`login lockout shared through ${store.name} again`);
    store.away = false;
    return r;
  } catch (err) {
    if (!store.away)
      store.logger.warn(
        { err: { message: (err as Error).message } },
        `${store.name === 'PostgreSQL' ? 'postgres' : store.name.toLowerCase()} unreachable: login lockout counts on this node only until it is back`,
      );
    store.away = true;
    return undefined;
  } finally {
    clearTimeout(timer);
  }
}
