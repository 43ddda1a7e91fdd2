/**
 * The wide lane (docs/decisions/0015-wide-send-lane.md): sends to many users take turns on a node, so a
 * burst of them never holds up sends to one or a few users.
 */
import type { SendInput } from '../api-types.ts';
import { BoundedQueue } from '../bounded-queue.ts';
import { Errors } from '../errors.ts';

/** Wide sends that may wait for their turn on a node, per slot of SKYPUSH_WIDE_SEND_CONCURRENCY. */
export const WIDE_QUEUE_PER_SLOT = 64;

/**
 * The wide lane: sends listing more than SKYPUSH_WIDE_SEND_TARGETS distinct users run at most
 * SKYPUSH_WIDE_SEND_CONCURRENCY at a time on a node, the others wait in FIFO order (at most
 * WIDE_QUEUE_PER_SLOT per slot, then 503 WIDE_SENDS_BUSY with Retry-After). A wide send costs thousands of
 * rows and holds a pool connection and a share of the CPU for its whole transaction; without the lane a
 * burst of them takes every pool connection, and a one-user send waits behind them for seconds
 * (docs/decisions/0015-wide-send-lane.md). Sends to all are one row and never wait here.
 */
export function wideLane(limits: { wideSendTargets: number; wideSendConcurrency: number }) {
  const queue = new BoundedQueue({
    concurrency: limits.wideSendConcurrency,
    maxQueued: WIDE_QUEUE_PER_SLOT * limits.wideSendConcurrency,
    busy: Errors.WIDE_SENDS_BUSY,
    taskMs: 500,
  });
  return <T>(input: SendInput, task: () => Promise<T>, gone: (() => AbortSignal) | undefined): Promise<T> =>
    input.targetType === 'user' &&
    (input.targetIds?.length ?? 0) > limits.wideSendTargets &&
    new Set(input.targetIds).size > limits.wideSendTargets
      ? queue.run(task, gone?.())
      : task();
}
