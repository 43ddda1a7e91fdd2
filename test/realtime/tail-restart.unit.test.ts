/**
 * Issue #13 item 5, tail-reader.ts restart(): when the database's history is replaced, live delivery
 * continues after the new log's head, and a read begun before the restart (from the old position, in the
 * old history) is dropped rather than dispatched.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import type { LogEvent } from '../../src/event-log.ts';
import { createLogger } from '../../src/logger.ts';
import { createMetrics } from '../../src/metrics.ts';
import { Containment } from '../../src/realtime/containment.ts';
import { TailReader } from '../../src/realtime/tail-reader.ts';
import { FakeClock } from '../helpers/fake-clock.ts';
import { event } from './parts.ts';

function tail(initial: LogEvent[]) {
  const clock = new FakeClock();
  const logger = createLogger('info', new Writable({ write: (_c, _e, cb) => cb() }));
  const state = { log: initial, gate: undefined as Promise<void> | undefined };
  const dispatched: number[][] = [];
  const t = new TailReader({
    source: {
      readAfter: async (after, limit) => {
        // The rows are those of the history in place when the read reached the database.
        const rows = state.log.filter((e) => e.seq > after).slice(0, limit);
        await state.gate;
        return rows;
      },
    },
    events: { pollIntervalMs: 60_000 },
    clock,
    metrics: createMetrics({ defaultMetrics: false }),
    logger,
    containment: new Containment(logger, clock),
    resolve: async () => {},
    missing: () => false,
    dispatch: (evs) => {
      dispatched.push(evs.map((e) => e.seq));
      return new Set();
    },
    refreshCounts: async () => {},
  });
  return { t, state, dispatched };
}

describe('tail reader: restart on a replaced history', () => {
  it('follows the new log after its head, even at seqs below the old tail', async () => {
    const x = tail([event(1, 1), event(2, 1), event(3, 1), event(4, 1)]);
    x.t.start(0);
    await x.t.pump();
    assert.equal(x.t.tailSeq, 4);
    // The history goes back to seq 2, then grows again with seqs 3 and 4 of other events.
    x.state.log = [event(1, 1), event(2, 1), event(3, 7), event(4, 7)];
    x.t.restart(2);
    assert.equal(x.t.tailSeq, 2);
    await x.t.pump();
    assert.deepEqual(x.dispatched, [
      [1, 2, 3, 4],
      [3, 4],
    ]);
    x.t.stop();
  });

  it('drops a read begun before the restart and reads again from the new position', async () => {
    const x = tail([event(1, 1), event(2, 1), event(3, 1)]);
    x.t.start(1);
    let open!: () => void;
    x.state.gate = new Promise<void>((r) => (open = r));
    const pumping = x.t.pump(); // reads (1, …] of the old history: 2 and 3
    await new Promise((r) => setImmediate(r));
    x.state.log = [event(1, 1), event(2, 9)];
    x.state.gate = undefined;
    x.t.restart(1);
    open();
    await pumping;
    assert.deepEqual(x.dispatched, [[2]], 'only the new history: the old read was dropped');
    assert.equal(x.t.tailSeq, 2);
    x.t.stop();
  });
});
