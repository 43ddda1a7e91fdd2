/**
 * Failed-login counting with lockout. Failures are counted per (account, client address): an attacker
 * who guesses passwords for an account locks out only their own address, never the account's owner
 * elsewhere. The map is bounded; the oldest entries go first. State is per node (see docs/API.md).
 */
export interface LoginGuard {
  /** Seconds until the pair may try again, or 0 if it may try now. */
  retryAfter(username: string, ip: string): number;
  fail(username: string, ip: string): void;
  succeed(username: string, ip: string): void;
}

interface Entry {
  failures: number;
  lockedUntil: number;
}

export function createLoginGuard(opts: {
  maxFailures: number;
  lockoutSec: number;
  maxEntries?: number;
  now?: () => number;
}): LoginGuard {
  const entries = new Map<string, Entry>();
  const max = opts.maxEntries ?? 100_000;
  const now = opts.now ?? Date.now;
  const key = (u: string, ip: string) => `${u.toLowerCase()}\u0000${ip}`;
  return {
    retryAfter(u, ip) {
      const e = entries.get(key(u, ip));
      if (!e || e.lockedUntil <= now()) return 0;
      return Math.ceil((e.lockedUntil - now()) / 1000);
    },
    fail(u, ip) {
      const k = key(u, ip);
      const e = entries.get(k) ?? { failures: 0, lockedUntil: 0 };
      entries.delete(k);
      if (e.lockedUntil !== 0 && e.lockedUntil <= now()) {
        e.failures = 0;
        e.lockedUntil = 0;
      }
      e.failures++;
      if (e.failures >= opts.maxFailures) e.lockedUntil = now() + opts.lockoutSec * 1000;
      entries.set(k, e);
      if (entries.size > max) entries.delete(entries.keys().next().value as string);
    },
    succeed(u, ip) {
      entries.delete(key(u, ip));
    },
  };
}
