/**
 * The node's replay memory: every replaying connection reserves the bytes of its next page here before
 * reading it and gives them back once the page has left the process (written and drained). Over the
 * capacity, connections wait their turn, first come first served; none is dropped or cut short. The
 * queue holds at most one waiter per connection, so it is bounded by the node's connection cap.
 */

interface Waiter {
  bytes: number;
  grant: (release: () => void) => void;
}

export class ReplayBudget {
  private used = 0;
  private readonly queue: Waiter[] = [];
  private peak = 0;

  constructor(readonly capacity: number) {}

  /** Bytes reserved now. */
  get inUse(): number {
    return this.used;
  }
  /** The most ever reserved at once (for the metrics and the tests). */
  get highWater(): number {
    return this.peak;
  }
  /** Connections waiting for their turn. */
  get waiting(): number {
    return this.queue.length;
  }

  /**
   * Resolves once `bytes` (at most the capacity: a larger page has the whole budget to itself) are
   * reserved, with the function that gives them back (idempotent).
   */
  acquire(bytes: number): Promise<() => void> {
    const want = Math.max(1, Math.min(Math.ceil(bytes), this.capacity));
    return new Promise((grant) => {
      this.queue.push({ bytes: want, grant });
      this.grantWaiting();
    });
  }

  private grantWaiting(): void {
    for (;;) {
      const next = this.queue[0];
      if (!next || this.used + next.bytes > this.capacity) return;
      this.queue.shift();
      this.used += next.bytes;
      this.peak = Math.max(this.peak, this.used);
      let released = false;
      next.grant(() => {
        if (released) return;
        released = true;
        this.used -= next.bytes;
        this.grantWaiting();
      });
    }
  }
}
