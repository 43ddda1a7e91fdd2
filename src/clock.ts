/**
 * The one clock: wall time (timestamps, expiry, cursors' dates) and monotonic time (durations, windows,
 * "how long ago"), injected wherever a rule depends on time so that every such rule is testable with a
 * fake clock. Only this file reads Date.now and performance.now for the server's rules.
 */
export interface Clock {
  /** Wall time, unix milliseconds: may jump when the system clock is set. */
  now(): number;
  /** Milliseconds from an arbitrary origin that never goes back: for durations and windows. */
  monotonic(): number;
}

export const systemClock: Clock = Object.freeze({
  now: () => Date.now(),
  monotonic: () => performance.now(),
});
