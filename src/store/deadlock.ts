/**
 * Retrying a PostgreSQL transaction that the server aborted to break a deadlock. Counter and message
 * rows are locked in one order everywhere (messages/counters.repository.ts), so this is a safety net for
 * orders nobody chose (for example housekeeping deleting messages in expiry order), not the plan.
 */

/** SQLSTATE deadlock_detected: the whole transaction was rolled back, so running it again is safe. */
const DEADLOCK_DETECTED = '40P01';
/** Runs after the first; a deadlock that keeps coming back is an ordering bug and reaches the caller. */
export const DEADLOCK_RETRIES = 3;

function isDeadlock(e: unknown): boolean {
  return (e as { code?: unknown } | null)?.code === DEADLOCK_DETECTED;
}

/** Runs `transaction` again (up to `retries` more times) when it failed with a deadlock. */
export async function retryDeadlocks<T>(
  transaction: () => Promise<T>,
  retries = DEADLOCK_RETRIES,
): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await transaction();
    } catch (e) {
      if (attempt >= retries || !isDeadlock(e)) throw e;
    }
  }
}
