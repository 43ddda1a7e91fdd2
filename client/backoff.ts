/** Full-jitter exponential backoff (AWS Architecture Blog, "Exponential Backoff And Jitter"). */

export interface BackoffOptions {
  /** Ceiling of the first retry's delay, ms. */
  baseMs: number;
  /** Highest ceiling, ms: delays never exceed it. */
  maxMs: number;
  /** Growth of the ceiling per attempt. */
  factor: number;
}

export const DEFAULT_BACKOFF: Readonly<BackoffOptions> = Object.freeze({
  baseMs: 1000,
  maxMs: 30_000,
  factor: 2,
});

/** The ceiling for retry number `attempt` (0-based): `min(maxMs, baseMs × factor^attempt)`. */
export function backoffCeiling(attempt: number, o: BackoffOptions): number {
  return Math.min(o.maxMs, o.baseMs * Math.pow(o.factor, Math.max(0, attempt)));
}

/**
 * A delay drawn uniformly from [0, ceiling): spreading clients over the whole window is what stops a
 * restarted server from being hit by every client at the same instant.
 *
 * @example backoffDelay(3, DEFAULT_BACKOFF, Math.random) // somewhere in [0, 8000)
 */
export function backoffDelay(attempt: number, o: BackoffOptions, random: () => number): number {
  return Math.floor(random() * backoffCeiling(attempt, o));
}

/** Checks bounds once so a bad option fails at construction, naming the option. */
export function validateBackoff(o: BackoffOptions): Readonly<BackoffOptions> {
  if (!(o.baseMs >= 0)) throw new RangeError(`backoff.baseMs must be >= 0, got ${o.baseMs}`);
  if (!(o.maxMs >= o.baseMs)) throw new RangeError(`backoff.maxMs must be >= backoff.baseMs, got ${o.maxMs}`);
  if (!(o.factor >= 1)) throw new RangeError(`backoff.factor must be >= 1, got ${o.factor}`);
  return Object.freeze({ ...o });
}
