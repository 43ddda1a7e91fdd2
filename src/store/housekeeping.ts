/**
 * Housekeeping: on one timer, each task deletes a bounded batch of rows past their lifetime (old events,
 * forgotten idempotency keys, expired tickets, announced expired messages; on PostgreSQL also dead
 * nodes' presence and login-failure rows with nothing live), so no round blocks for long. The tasks come
 * from the parts that own the rows (app.ts lists them); this module only runs them.
 */
import { messageOf } from '../logger.ts';
import { repeat } from '../repeat.ts';

export interface HousekeepingTask {
  /** Named in the log line when the task fails. */
  name: string;
  run(): Promise<unknown>;
}

/**
 * Runs the tasks in order every `intervalMs`; a failing task is logged and the round goes on with the
 * next one. The returned stop clears the timer and waits for a round in progress.
 */
export function startHousekeeping(deps: {
  tasks: readonly HousekeepingTask[];
  intervalMs: number;
  /** The app's pino logger, or anything with its `warn(obj, msg)`. */
  logger: { warn(obj: object, msg: string): void };
}): () => Promise<void> {
  async function round(): Promise<void> {
    for (const task of deps.tasks) {
      try {
        await task.run();
      } catch (err) {
        deps.logger.warn({ err: { message: messageOf(err) }, task: task.name }, 'housekeeping failed');
      }
    }
  }
  return repeat({
    run: round,
    intervalMs: deps.intervalMs,
    failure: 'housekeeping failed',
    logger: deps.logger,
  });
}
