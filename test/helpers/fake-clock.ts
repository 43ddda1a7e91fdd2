/**
 * A manual clock: timers run only when the test advances time. Serves the client SDK (setTimeout) and
 * the server's Clock (now and monotonic move together).
 */
import type { Clock } from '../../client/index.ts';

interface Timer {
  at: number;
  delay: number;
  fn: () => void;
}

export class FakeClock implements Clock {
  private t = 1_000_000;
  private id = 0;
  private readonly timers = new Map<number, Timer>();

  now(): number {
    return this.t;
  }

  monotonic(): number {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    this.timers.set(++this.id, { at: this.t + ms, delay: ms, fn });
    return this.id;
  }

  clearTimeout(handle: unknown): void {
    this.timers.delete(handle as number);
  }

  /** Delays (as scheduled) of the timers still pending, earliest first. */
  pending(): number[] {
    return [...this.timers.values()].sort((a, b) => a.at - b.at).map((x) => x.delay);
  }

  /** Runs the earliest pending timer, moving time to it; returns the delay it was scheduled with. */
  runNext(): number {
    const next = [...this.timers.entries()].sort((a, b) => a[1].at - b[1].at)[0];
    if (!next) throw new Error('no pending timer');
    this.timers.delete(next[0]);
    this.t = Math.max(this.t, next[1].at);
    next[1].fn();
    return next[1].delay;
  }

  /** Moves time forward by `ms`, running every timer that falls due on the way, in order. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      const next = [...this.timers.entries()].sort((a, b) => a[1].at - b[1].at)[0];
      if (!next || next[1].at > end) break;
      this.timers.delete(next[0]);
      this.t = next[1].at;
      next[1].fn();
    }
    this.t = end;
  }
}
