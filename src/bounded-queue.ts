/**
 * A bounded queue in front of costly work: at most `concurrency` tasks run, at most `maxQueued` wait in
 * FIFO order, and the rest are refused at once with the given 503 error and a Retry-After estimated from
 * recent task times. A waiting task whose caller aborts (the client hung up) leaves the queue without
 * running. Used in front of the password hasher (auth/password.ts: each hash holds a libuv thread, ~128
 * MiB and ~0.5 s) and of sends to many users (messages/wide-lane.ts).
 */
import { AppError, type ErrorSpec } from './errors.ts';

export interface QueueLoad {
  running: number;
  queued: number;
}

interface Waiter {
  start: () => void;
  onAbort: () => void;
}

/** The longest Retry-After a busy answer suggests, in seconds. */
const MAX_RETRY_AFTER_SEC = 30;

export interface BoundedQueueOptions {
  concurrency: number;
  maxQueued: number;
  /** The refusal when the queue is full (a 503 of the error catalogue). */
  busy: ErrorSpec;
  /** A first guess of one task's duration, for Retry-After until tasks have been timed. */
  taskMs: number;
}

export class BoundedQueue {
  private running = 0;
  private readonly waiting: Waiter[] = [];
  /** Moving average of one task's duration, for Retry-After. */
  private avgMs: number;

  constructor(private readonly opts: BoundedQueueOptions) {
    this.avgMs = opts.taskMs;
  }

  load(): QueueLoad {
    return { running: this.running, queued: this.waiting.length };
  }

  async run<T>(task: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    signal?.throwIfAborted();
    // A finishing task hands its slot straight to the next waiter, so none can slip in between.
    if (this.running < this.opts.concurrency) this.running++;
    else await this.wait(signal);
    const started = performance.now();
    try {
      return await task();
    } finally {
      this.avgMs = this.avgMs * 0.8 + (performance.now() - started) * 0.2;
      const next = this.waiting.shift();
      if (next) next.start();
      else this.running--;
    }
  }

  /** Throws the busy error now if a task would be refused, so a caller can skip its other work too. */
  assertRoom(): void {
    if (this.running < this.opts.concurrency || this.waiting.length < this.opts.maxQueued) return;
    const turns = (this.waiting.length + this.running) / this.opts.concurrency;
    const sec = Math.min(MAX_RETRY_AFTER_SEC, Math.max(1, Math.ceil((turns * this.avgMs) / 1000)));
    throw new AppError(this.opts.busy, undefined, { headers: { 'retry-after': String(sec) } });
  }

  private wait(signal: AbortSignal | undefined): Promise<void> {
    this.assertRoom();
    return new Promise<void>((resolve, reject) => {
      const w: Waiter = {
        start: () => {
          signal?.removeEventListener('abort', w.onAbort);
          resolve();
        },
        onAbort: () => {
          const i = this.waiting.indexOf(w);
          if (i >= 0) this.waiting.splice(i, 1);
          reject(signal?.reason as Error);
        },
      };
      signal?.addEventListener('abort', w.onAbort, { once: true });
      this.waiting.push(w);
    });
  }
}
