/** Notices a silent connection: calls `onSilent` when nothing was `touch()`ed for the current limit. */
import type { Clock } from './options.ts';

export class SilenceWatch {
  #timer: unknown;
  #last = 0;
  #limitMs = 0;

  constructor(
    private readonly clock: Clock,
    private readonly onSilent: (idleMs: number) => void,
  ) {}

  /** (Re)starts watching with a new limit, counting from now. */
  start(limitMs: number): void {
    this.stop();
    this.#limitMs = limitMs;
    this.#last = this.clock.now();
    this.#timer = this.clock.setTimeout(() => this.#check(), limitMs);
  }

  /** Something arrived. Cheap: no timer is touched (the check re-arms itself for the remainder). */
  touch(): void {
    this.#last = this.clock.now();
  }

  stop(): void {
    if (this.#timer !== undefined) this.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #check(): void {
    this.#timer = undefined;
    const idle = this.clock.now() - this.#last;
    if (idle < this.#limitMs) {
      this.#timer = this.clock.setTimeout(() => this.#check(), this.#limitMs - idle);
      return;
    }
    this.onSilent(idle);
  }
}
