/**
 * A task on a timer, one run at a time: a tick that finds the previous run still going is skipped, a
 * failure is logged and the next tick tries again (so a rejection never reaches the process). The
 * returned stop clears the timer and waits for a run in progress.
 */
import { messageOf } from './logger.ts';

export function repeat(deps: {
  run: () => Promise<unknown>;
  intervalMs: number;
  /** The log line of a failed run. */
  failure: string;
  /** The app's pino logger, or anything with its `warn(obj, msg)`. */
  logger: { warn(obj: object, msg: string): void };
}): () => Promise<void> {
  let running: Promise<unknown> | undefined;
  const timer = setInterval(() => {
    running ??= deps
      .run()
      .catch((err: unknown) => deps.logger.warn({ err: { message: messageOf(err) } }, deps.failure))
      .finally(() => (running = undefined));
  }, deps.intervalMs);
  timer.unref();
  return async () => {
    clearInterval(timer);
    await running;
  };
}
