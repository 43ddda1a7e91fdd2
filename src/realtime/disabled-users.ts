/**
 * Users recently disabled, remembered for sockets whose authentication was under way when the
 * user-disabled message arrived: such a socket was not registered yet, so closeUser missed it, and
 * attach closes it instead (see Hub.attach). Bounded: one entry per disabled user, forgotten after
 * DISABLED_MEMORY_MS (the sweeper calls expire()).
 */
import type { Clock } from '../clock.ts';

const DISABLED_MEMORY_MS = 120_000;

export class DisabledUsers {
  /** Monotonic time each user was heard of, oldest first (an entry is re-inserted when heard again). */
  private readonly at = new Map<number, number>();

  constructor(private readonly clock: Clock) {}

  remember(userId: number): void {
    this.at.delete(userId);
    this.at.set(userId, this.clock.monotonic());
  }

  /** True when the user was disabled at or after `since` (monotonic ms). */
  disabledSince(userId: number, since: number): boolean {
    const at = this.at.get(userId);
    return at !== undefined && at >= since;
  }

  expire(): void {
    const now = this.clock.monotonic();
    for (const [userId, at] of this.at) {
      if (now - at < DISABLED_MEMORY_MS) break;
      this.at.delete(userId);
    }
  }

  get size(): number {
    return this.at.size;
  }
}
