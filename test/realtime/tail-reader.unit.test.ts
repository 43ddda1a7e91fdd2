/**
 * Issue #12 item 4, tail-reader.ts: the pump reads after tailSeq until caught up, single-flight; a
 * read failure keeps the position (logged once per outage); right after a large fan-out a wake-up
 * waits for the batching window, else it reads at once.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import type { LogEvent } from '../../src/event-log.ts';
import { createLogger } from '../../src/logger.ts';
import { createMetrics } from '../../src/metrics.ts';
import { Containment } from '../../src/realtime/containment.ts';
import { LARGE_FANOUT, TailReader } from '../../src/realtime/tail-reader.ts';
import { FakeClock } from '../helpers/fake-clock.ts';
import { event, settle } from './parts.ts';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function tail(
  log: LogEvent[],
  o: { failing?: () => boolean; missing?: () => boolean; resolved?: () => void } = {},
) {
  const clock = new FakeClock();
  const logs: string[] = [];
  const logger = createLogger(
    'info',
    new Writable({
      write(chunk: Buffer, _e, cb) {
        logs.push(chunk.toString());
        cb();
      },
    }),
  );
  const reads: number[] = [];
  const dispatched: number[][] = [];
  const refreshed: number[][] = [];
  let gate: Promise<void> | undefined;
  const t = new TailReader({
    source: {
      readAfter: async (after, limit) => {
        reads.push(after);
        await gate;
        if (o.failing?.()) throw new Error('store down');
        return log.filter((e) => e.seq > after).slice(0, limit);
      },
    },
    events: { pollIntervalMs: 60_000 },
    clock,
    metrics: createMetrics({ defaultMetrics: false }),
    logger,
    containment: new Containment(logger, clock),
    resolve: async () => o.resolved?.(),
    missing: () => o.missing?.() ?? false,
    dispatch: (evs) => {
      dispatched.push(evs.map((e) => e.seq));
      return new Set(evs.filter((e) => e.userId !== null).map((e) => e.userId as number));
    },
    refreshCounts: async (ids) => {
      refreshed.push([...ids]);
    },
  });
  return { t, clock, logs, reads, dispatched, refreshed, hold: (p: Promise<void>) => (gate = p) };
}

describe('tail reader', () => {
  it('reads after tailSeq until caught up, then refreshes the affected counts', async () => {
    const x = tail([event(3, 1), event(4, 2), event(5, 1)]);
    x.t.start(2);
    await x.t.pump();
    assert.deepEqual(x.dispatched, [[3, 4, 5]]);
    assert.equal(x.t.tailSeq, 5);
    assert.deepEqual(x.refreshed, [[1, 2]]);
    await x.t.pump();
    assert.deepEqual(x.dispatched, [[3, 4, 5]], 'nothing new: nothing dispatched');
    x.t.stop();
    await x.t.pump();
    assert.equal(x.reads.length, 2, 'stopped: no more reads');
  });

  it('reads again before dispatching when something became missing after the read (a connection registered)', async () => {
    const order: string[] = [];
    let missingAfterFirst = true;
    const x = tail([event(1, 1)], {
      resolved: () => void order.push('resolve'),
      // After the first read a recipient registered: the batch needs data again.
      missing: () => {
        const m = missingAfterFirst;
        missingAfterFirst = false;
        order.push(m ? 'missing' : 'complete');
        return m;
      },
    });
    x.t.start(0);
    await x.t.pump();
    assert.deepEqual(order, ['resolve', 'missing', 'resolve', 'complete']);
    assert.deepEqual(x.dispatched, [[1]]);
  });

  it('single-flight: a wake-up during a read re-runs it once after', async () => {
    const log = [event(1, 1)];
    const x = tail(log);
    let open!: () => void;
    x.hold(new Promise<void>((r) => (open = r)));
    const first = x.t.pump();
    log.push(event(2, 1));
    void x.t.pump();
    void x.t.pump();
    open();
    await first;
    assert.deepEqual(x.dispatched, [[1, 2]]);
    assert.deepEqual(x.reads, [0, 2], 'one read, then one re-run for the wake-ups meanwhile');
  });

  it('a failed read keeps the position and is logged once per outage', async () => {
    let down = true;
    const x = tail([event(1, 1)], { failing: () => down });
    await x.t.pump();
    await x.t.pump();
    assert.equal(x.t.tailSeq, 0);
    assert.equal(x.logs.filter((l) => l.includes('event log read failed')).length, 1);
    down = false;
    await x.t.pump();
    assert.equal(x.t.tailSeq, 1);
    assert.equal(x.logs.filter((l) => l.includes('readable again')).length, 1);
  });

  it('a head at or below tailSeq wakes nothing; above it, a read at once', async () => {
    const x = tail([event(1, 1)]);
    x.t.headMoved(0);
    await settle();
    assert.deepEqual(x.reads, []);
    x.t.headMoved(1);
    await settle();
    assert.deepEqual(x.reads, [0]);
  });

  it('after a large fan-out, a wake-up waits for the batching window', async () => {
    const x = tail([event(1, 1)]);
    x.t.fannedOut(LARGE_FANOUT - 1);
    x.t.headMoved(1);
    await settle();
    assert.equal(x.reads.length, 1, 'a small fan-out does not delay');
    const y = tail([event(1, 1)]);
    y.t.fannedOut(LARGE_FANOUT);
    y.t.headMoved(1);
    y.t.headMoved(1);
    await settle();
    assert.deepEqual(y.reads, [], 'busy: the read waits');
    await sleep(30);
    assert.deepEqual(y.reads, [0], 'one read for both wake-ups');
    // Once the busy time has passed (monotonic clock), wake-ups read at once again.
    y.clock.advance(1000);
    y.t.headMoved(5);
    await settle();
    assert.equal(y.reads.length, 2);
  });
});
