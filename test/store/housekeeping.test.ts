/**
 * The housekeeping timer (src/store/housekeeping.ts): tasks run in order each round, a failing task is
 * logged by name without stopping the others, rounds never overlap, and stop waits for a round.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { startHousekeeping } from '../../src/store/housekeeping.ts';

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('housekeeping', () => {
  // The housekeeping timer is unref'd (it never holds a process open): this one keeps the test alive.
  let keepAlive: NodeJS.Timeout;
  beforeEach(() => void (keepAlive = setInterval(() => {}, 1000)));
  afterEach(() => clearInterval(keepAlive));

  it('runs every task each round; a failing task is logged by name and the next one still runs', async () => {
    const order: string[] = [];
    const warnings: Array<{ task?: unknown; err?: unknown; msg: string }> = [];
    const stop = startHousekeeping({
      tasks: [
        { name: 'first', run: async () => void order.push('first') },
        {
          name: 'broken',
          run: async () => {
            order.push('broken');
            throw new Error('disk on fire');
          },
        },
        { name: 'last', run: async () => void order.push('last') },
      ],
      intervalMs: 1,
      logger: { warn: (obj: object, msg: string) => void warnings.push({ ...obj, msg }) },
    });
    while (order.length < 6) await tick(2);
    await stop();
    assert.deepEqual(order.slice(0, 6), ['first', 'broken', 'last', 'first', 'broken', 'last']);
    assert.deepEqual(warnings[0], {
      err: { message: 'disk on fire' },
      task: 'broken',
      msg: 'housekeeping failed',
    });
  });

  it('never overlaps rounds, and stop waits for the round in progress', async () => {
    let inFlight = 0;
    let overlapped = false;
    let rounds = 0;
    const stop = startHousekeeping({
      tasks: [
        {
          name: 'slow',
          run: async () => {
            overlapped ||= inFlight > 0;
            inFlight++;
            await tick(15);
            inFlight--;
            rounds++;
          },
        },
      ],
      intervalMs: 1,
      logger: { warn: () => {} },
    });
    while (inFlight === 0) await tick(1);
    await stop();
    assert.equal(inFlight, 0, 'stop resolved only after the round finished');
    const after = rounds;
    await tick(10);
    assert.equal(rounds, after, 'no round after stop');
    assert.equal(overlapped, false);
  });
});
