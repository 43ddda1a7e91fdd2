/** The bounded queue (in front of the hasher and of wide sends), with tasks held open by hand. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BoundedQueue } from '../src/bounded-queue.ts';
import { Errors, isAppError } from '../src/errors.ts';

/** A task that runs until released; counts how many started. */
function held() {
  const releases: Array<() => void> = [];
  let started = 0;
  let peak = 0;
  let running = 0;
  const task = () =>
    new Promise<number>((resolve) => {
      started++;
      running++;
      peak = Math.max(peak, running);
      releases.push(() => {
        running--;
        resolve(started);
      });
    });
  return {
    task,
    started: () => started,
    peak: () => peak,
    releaseOne: () => releases.shift()?.(),
  };
}

/** The queue as the password hasher uses it. */
const queue = (concurrency: number, maxQueued: number) =>
  new BoundedQueue({ concurrency, maxQueued, busy: Errors.HASHER_BUSY, taskMs: 600 });

const tick = () => new Promise((r) => setImmediate(r));

describe('bounded queue', () => {
  it('runs `concurrency` tasks, queues `maxQueued`, refuses the next with 503 HASHER_BUSY and Retry-After', async () => {
    const q = queue(2, 3);
    const h = held();
    const runs = Array.from({ length: 5 }, () => q.run(h.task));
    await tick();
    assert.deepEqual(q.load(), { running: 2, queued: 3 });
    await assert.rejects(q.run(h.task), (e: unknown) => {
      assert.ok(isAppError(e, Errors.HASHER_BUSY));
      assert.equal(e.status, 503);
      const retry = Number(e.headers['retry-after']);
      assert.ok(retry >= 1 && retry <= 30, `Retry-After ${retry}`);
      return true;
    });
    assert.equal(h.started(), 2, 'the refused task never ran');
    for (let i = 0; i < 5; i++) {
      h.releaseOne();
      await tick();
    }
    await Promise.all(runs);
    assert.equal(h.started(), 5);
    assert.equal(h.peak(), 2, 'never more than `concurrency` at once');
    assert.deepEqual(q.load(), { running: 0, queued: 0 });
  });

  it('drops a waiting task whose signal aborts, and never runs it', async () => {
    const q = queue(1, 5);
    const h = held();
    const first = q.run(h.task);
    const ac = new AbortController();
    const dropped = q.run(h.task, ac.signal);
    const kept = q.run(h.task);
    await tick();
    assert.deepEqual(q.load(), { running: 1, queued: 2 });
    ac.abort(new Error('client gone'));
    await assert.rejects(dropped, /client gone/);
    assert.deepEqual(q.load(), { running: 1, queued: 1 });
    h.releaseOne();
    await tick();
    h.releaseOne();
    await Promise.all([first, kept]);
    assert.equal(h.started(), 2, 'the aborted task never started');
    await assert.rejects(q.run(h.task, ac.signal), /client gone/, 'an aborted signal is refused at once');
    assert.equal(h.started(), 2);
  });

  it('with no queue, refuses as soon as every slot is taken', async () => {
    const q = queue(1, 0);
    const h = held();
    const first = q.run(h.task);
    await assert.rejects(q.run(h.task), (e: unknown) => isAppError(e, Errors.HASHER_BUSY));
    h.releaseOne();
    await first;
  });
});
