/**
 * Issue #12 item 4, resume.ts and connection.ts: the live/replay seam. The connection is registered
 * synchronously with reading the tail position `upto`; an event ≤ upto reaches it by the replay only,
 * one > upto by live dispatch only, never twice, and what arrived during the replay is flushed in
 * order once the replay is written. lastSeq drops what the client already has.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { LogEvent, ResumeStart } from '../../src/event-log.ts';
import { event, pagedLog, parts, settle, total } from './parts.ts';

/**
 * A log to replay from, whose startResume answer the test releases when it wants: dispatch can run
 * while the replay is pending.
 */
function deferredResume(log: LogEvent[] = []) {
  let release!: (r: ResumeStart) => void;
  const calls: Array<{ since: string; upto: number }> = [];
  const startResume = (_user: number, since: string, upto: number) => {
    calls.push({ since, upto });
    return new Promise<ResumeStart>((r) => (release = r));
  };
  return { source: { ...pagedLog(log), startResume }, calls, release: (r: ResumeStart) => release(r) };
}

const from = (seq: number, count: number): ResumeStart => ({ ok: true, from: { seq, floor: 0 }, count });

/** The seqs a socket received, in order: replayed (inside MESSAGE_BATCH) and live alike. */
function seqsOf(frames: Array<{ type: string; data: Record<string, unknown>; cursor?: string }>) {
  const seqs: number[] = [];
  for (const f of frames) {
    if (f.type === 'MESSAGE_BATCH')
      for (const m of f.data['messages'] as Array<{ cursor: string }>)
        seqs.push(Number(m.cursor.split('.')[1]));
    else if (f.type === 'NEW_MESSAGE') seqs.push(Number((f.cursor as string).split('.')[1]));
  }
  return seqs;
}

describe('resume: the live/replay seam', () => {
  it('registers the connection in the same synchronous step as reading the tail', async () => {
    const d = deferredResume();
    const p = parts({ autoDrain: true, source: d.source });
    p.state.tailSeq = 5;
    const { c } = p.connection(1);
    const done = p.resume.attach(c, 'e.2', -Infinity);
    assert.equal(p.registry.size, 1, 'registered before attach yields');
    assert.equal(c.state, 'replaying');
    await settle();
    assert.deepEqual(d.calls, [{ since: 'e.2', upto: 5 }], 'the replay is asked up to the tail read then');
    d.release(from(2, 0));
    await done;
  });

  it('≤ upto by replay only, > upto by live only, never twice, held events flushed in order', async () => {
    const d = deferredResume([1, 2, 3, 4, 5, 6, 7].map((seq) => event(seq, 1)));
    const p = parts({ autoDrain: true, source: d.source });
    p.state.tailSeq = 5;
    const { c, socket } = p.connection(1);
    const done = p.resume.attach(c, 'e.2', -Infinity);
    await settle();
    // While the replay is pending: the tail moves on (6, 7), and 5 comes round again (a re-read after a
    // failed dispatch): 5 must not be sent live, 6 and 7 must wait.
    p.fanout.dispatch([event(5, 1), event(6, 1)]);
    p.fanout.dispatch([event(7, 1)]);
    assert.deepEqual(socket.texts, [], 'nothing precedes CONNECTED');
    assert.equal(c.pendingBytes > 0, true);
    d.release(from(2, 3));
    await done;
    assert.deepEqual(socket.types(), [
      'CONNECTED',
      'MESSAGE_BATCH',
      'UNREAD_COUNT',
      'NEW_MESSAGE',
      'NEW_MESSAGE',
    ]);
    assert.deepEqual(seqsOf(socket.frames()), [3, 4, 5, 6, 7]);
    const connected = socket.frames()[0] as { cursor?: string; data: Record<string, unknown> };
    assert.equal(connected.data['cursor'], 'e.2', 'CONNECTED starts the stream at since');
    assert.deepEqual(connected.data['resume'], { requested: true, ok: true, replayed: 3 });
    assert.equal(c.state, 'live');
    assert.equal(c.lastSeq, 7);
    assert.equal(c.pendingBytes, 0);
    // After going live: a duplicate of 7 is dropped, 8 goes.
    p.fanout.dispatch([event(7, 1), event(8, 1)]);
    assert.deepEqual(seqsOf(socket.frames()), [3, 4, 5, 6, 7, 8]);
  });

  it('a client ahead of this node (since > upto) gets nothing at or below since', async () => {
    const d = deferredResume([6, 7, 8, 9].map((seq) => event(seq, 1)));
    const p = parts({ autoDrain: true, source: d.source });
    p.state.tailSeq = 5;
    const { c, socket } = p.connection(1);
    const done = p.resume.attach(c, 'e.8', -Infinity);
    await settle();
    p.fanout.dispatch([event(6, 1), event(7, 1), event(8, 1), event(9, 1)]);
    d.release(from(8, 0));
    await done;
    assert.deepEqual(seqsOf(socket.frames()), [9]);
    assert.equal(c.lastSeq, 9);
  });

  it('RESYNC: CONNECTED and RESYNC at upto, no replay, then live after upto', async () => {
    const d = deferredResume();
    const p = parts({ autoDrain: true, source: d.source });
    p.state.tailSeq = 5;
    const { c, socket } = p.connection(1);
    const done = p.resume.attach(c, 'e.1', -Infinity);
    await settle();
    p.fanout.dispatch([event(6, 1)]);
    d.release({ ok: false, reason: 'expired' });
    await done;
    assert.deepEqual(socket.types(), ['CONNECTED', 'RESYNC', 'UNREAD_COUNT', 'NEW_MESSAGE']);
    const [connected, resync] = socket.frames();
    assert.equal(connected?.data['cursor'], 'e.5');
    assert.deepEqual(connected?.data['resume'], { requested: true, ok: false, replayed: 0 });
    assert.equal(resync?.cursor, 'e.5');
    assert.deepEqual(seqsOf(socket.frames()), [6]);
  });

  it('without since: live from the tail, nothing at or below it', async () => {
    const p = parts({ autoDrain: true });
    p.state.tailSeq = 5;
    const { c, socket } = p.connection(1);
    const done = p.resume.attach(c, undefined, -Infinity);
    p.fanout.dispatch([event(5, 1), event(6, 1)]);
    await done;
    assert.equal((socket.frames()[0]?.data as { cursor: string }).cursor, 'e.5');
    assert.equal(socket.frames()[0]?.data['resume'], undefined);
    assert.deepEqual(seqsOf(socket.frames()), [6]);
  });

  it('a resume with nothing to replay reads no page and goes live past its cursor', async () => {
    const log = pagedLog([event(9, 1)]);
    const reads: string[] = [];
    const p = parts({
      autoDrain: true,
      source: {
        startResume: async () => ({ ok: true, from: { seq: 7, floor: 0 }, count: 0 }),
        replaySizes: async (...a) => (reads.push('sizes'), log.replaySizes(...a)),
        replayPage: async (...a) => (reads.push('page'), log.replayPage(...a)),
      },
    });
    p.state.tailSeq = 5;
    const { c, socket } = p.connection(1);
    await p.resume.attach(c, 'e.7', -Infinity);
    assert.deepEqual(reads, [], 'a count of 0 needs no page');
    assert.equal(c.state, 'live');
    assert.equal(c.lastSeq, 7, 'live past the cursor, not from the older tail');
    p.fanout.dispatch([event(6, 1), event(7, 1), event(8, 1)]);
    assert.deepEqual(seqsOf(socket.frames()), [8]);
  });

  it('writes held by the upgrade are let go before a replay the overflow extended reads on (no wait on itself)', async () => {
    // Events of ~460 bytes: one per page (half the 1,200-byte queue), the budget room for one page only.
    const big = (seq: number) => ({ ...event(seq, 1), dataJson: `"${'x'.repeat(200)}"` });
    const log = Array.from({ length: 8 }, (_, i) => big(i + 1));
    const d = deferredResume(log);
    const p = parts({ source: d.source, sendQueueBytes: 1200, replayMemoryBytes: 700 });
    p.state.tailSeq = 1;
    const { c, socket } = p.connection(1);
    // The socket's writes leave only once the upgrade's hold is let go (as a corked socket's would).
    let released = 0;
    const done = p.resume.attach(c, 'e.0', -Infinity, () => released++);
    await settle();
    // Live events beyond the bound while the replay has not started: the replay must read them too.
    for (const ev of log.slice(1)) {
      p.fanout.dispatch([ev]);
      p.state.tailSeq = ev.seq;
    }
    assert.equal(c.overflowed, true);
    d.release({ ok: true, from: { seq: 0, floor: 0 }, count: 1 });
    for (let turn = 0; c.state !== 'live'; turn++) {
      assert.ok(
        turn < 1_000,
        `the replay finishes (budget in use ${p.budget.inUse}, waiting ${p.budget.waiting})`,
      );
      if (released > 0) {
        socket.bufferedAmount = 0;
        socket._socket?.emit('drain');
      }
      await new Promise((r) => setImmediate(r));
    }
    await done;
    assert.ok(released >= 1);
    assert.deepEqual(seqsOf(socket.frames()), [1, 2, 3, 4, 5, 6, 7, 8]);
    // The last page leaves: its replay memory comes back (and nothing is left waiting for it).
    socket.bufferedAmount = 0;
    socket._socket?.emit('drain');
    await new Promise((r) => setImmediate(r));
    assert.equal(p.budget.inUse, 0);
  });

  it('held events are bounded: over the bound they are dropped and read from the log, nobody is closed', async () => {
    const log = Array.from({ length: 60 }, (_, i) => event(i + 1, 1));
    const d = deferredResume(log);
    const p = parts({ autoDrain: true, source: d.source, sendQueueBytes: 1024 });
    const { c, socket } = p.connection(1);
    const done = p.resume.attach(c, 'e.0', -Infinity);
    await settle();
    // 60 events arrive live while the replay has not started: far more than 1024 bytes.
    for (const ev of log) {
      p.fanout.dispatch([ev]);
      p.state.tailSeq = ev.seq;
    }
    assert.equal(c.overflowed, true);
    assert.equal(c.pendingBytes, 0, 'nothing is held past the bound');
    assert.equal(socket.closeCode(), undefined);
    d.release(from(0, 0));
    await done;
    p.fanout.dispatch([event(61, 1)]);
    assert.deepEqual(
      seqsOf(socket.frames()),
      Array.from({ length: 61 }, (_, i) => i + 1),
      'each event once, in order: the dropped ones by the extended replay',
    );
    assert.equal(c.state, 'live');
    assert.equal(await total(p.metrics.slowConsumers), 0);
  });

  it('without since, held events dropped past the bound before going live are read from the log', async () => {
    const log = Array.from({ length: 60 }, (_, i) => event(i + 1, 1));
    const p = parts({ autoDrain: true, source: pagedLog(log), sendQueueBytes: 1024 });
    const { c, socket } = p.connection(1);
    const done = p.resume.attach(c, undefined, -Infinity);
    // 60 events arrive live while the connection is being set up (its unread count is being read).
    for (const ev of log) {
      p.fanout.dispatch([ev]);
      p.state.tailSeq = ev.seq;
    }
    assert.equal(c.overflowed, true);
    await done;
    p.fanout.dispatch([event(61, 1)]);
    assert.deepEqual(
      seqsOf(socket.frames()),
      Array.from({ length: 61 }, (_, i) => i + 1),
      'each event once, in order: the dropped ones read from the log',
    );
    assert.equal(c.state, 'live');
    assert.equal(socket.closeCode(), undefined);
  });

  it('pages are cut by bytes too, and the node budget makes replays wait their turn', async () => {
    const log = Array.from({ length: 6 }, (_, i) => ({
      ...event(i + 1, null),
      dataJson: `"${'x'.repeat(200)}"`,
    }));
    // Half the send queue (600 bytes) holds one event of ~2×200+256 bytes per page; the budget one page.
    const p = parts({ source: { ...pagedLog(log) }, sendQueueBytes: 1200, replayMemoryBytes: 700 });
    p.state.tailSeq = 6;
    const a = p.connection(1);
    const b = p.connection(2);
    const both = Promise.all([
      p.resume.attach(a.c, 'e.0', -Infinity),
      p.resume.attach(b.c, 'e.0', -Infinity),
    ]);
    let waited = 0;
    for (let turn = 0; a.c.state !== 'live' || b.c.state !== 'live'; turn++) {
      assert.ok(turn < 10_000, 'the replays finish');
      assert.ok(p.budget.inUse <= 700, 'never more than the budget reserved');
      if (p.budget.waiting > 0) waited++;
      // The clients read slowly: a socket drains only every few turns.
      if (turn % 5 === 0)
        for (const { socket } of [a, b]) {
          socket.bufferedAmount = 0;
          socket._socket?.emit('drain');
        }
      await new Promise((r) => setImmediate(r));
    }
    await both;
    assert.ok(waited > 0, 'a replay waited for the other');
    for (const { socket } of [a, b]) {
      const batches = socket.frames().filter((f) => f.type === 'MESSAGE_BATCH');
      assert.equal(batches.length, 6, 'one event per page');
      assert.deepEqual(seqsOf(socket.frames()), [1, 2, 3, 4, 5, 6]);
    }
    // The last page's bytes are given back once they have left, after the connection went live.
    assert.ok(p.budget.inUse > 0, 'the last pages are still leaving');
    for (const { socket } of [a, b]) {
      socket.bufferedAmount = 0;
      socket._socket?.emit('drain');
    }
    await new Promise((r) => setImmediate(r));
    assert.equal(p.budget.inUse, 0, 'everything given back');
    assert.equal(p.budget.highWater <= 700, true);
  });

  it("a live connection that keeps the last page's bytes unsent past the stall gives them back, not its socket", async () => {
    const log = [{ ...event(1, null), dataJson: `"${'x'.repeat(200)}"` }];
    const p = parts({ source: { ...pagedLog(log) }, heartbeatTimeoutMs: 1000 });
    p.state.tailSeq = 1;
    const { c, socket } = p.connection(1);
    await p.resume.attach(c, 'e.0', -Infinity);
    assert.equal(c.state, 'live');
    assert.ok(p.budget.inUse > 0, 'the last page is still leaving');
    // Live frames keep the socket above the mark (a busy stream, read slowly) for longer than the stall.
    socket.bufferedAmount = 10_000;
    p.clock.advance(1001);
    socket._socket?.emit('drain');
    await new Promise((r) => setImmediate(r));
    assert.equal(p.budget.inUse, 0, 'the bytes were given back');
    assert.equal(c.state, 'live', 'not closed as a slow consumer: the send queue judges a live socket');
    assert.equal(socket.closeCode(), undefined);
  });

  it('a prune during the replay ends it with RESYNC expired at the tail', async () => {
    const log = [1, 2, 3].map((seq) => event(seq, 1));
    let pages = 0;
    const paged = pagedLog(log);
    const p = parts({
      autoDrain: true,
      batchSize: 1,
      source: {
        ...paged,
        replayPage: async (...args) => (++pages === 2 ? { expired: true } : paged.replayPage(...args)),
      },
    });
    p.state.tailSeq = 3;
    const { c, socket } = p.connection(1);
    await p.resume.attach(c, 'e.0', -Infinity);
    assert.deepEqual(socket.types(), ['CONNECTED', 'MESSAGE_BATCH', 'RESYNC', 'UNREAD_COUNT']);
    assert.equal(socket.frames()[2]?.data['reason'], 'expired');
    assert.equal(socket.frames()[2]?.cursor, 'e.3');
    assert.equal(c.lastSeq, 3);
  });

  it('the replay goes in MESSAGE_BATCH frames of at most batchSize events', async () => {
    const events = Array.from({ length: 5 }, (_, i) => event(i + 1, 1));
    const p = parts({ autoDrain: true, batchSize: 2, source: pagedLog(events) });
    p.state.tailSeq = 5;
    const { c, socket } = p.connection(1);
    await p.resume.attach(c, 'e.0', -Infinity);
    const batches = socket.frames().filter((f) => f.type === 'MESSAGE_BATCH');
    assert.deepEqual(
      batches.map((b) => (b.data['messages'] as unknown[]).length),
      [2, 2, 1],
    );
    assert.deepEqual(
      batches.map((b) => b.cursor),
      ['e.2', 'e.4', 'e.5'],
      'each batch carries the cursor of its last event',
    );
  });

  it('a user disabled since authentication started is closed 4003 at once', async () => {
    const p = parts({ autoDrain: true });
    p.clock.advance(10);
    const authStartedAt = p.clock.monotonic();
    p.clock.advance(10);
    p.disabled.remember(1);
    const { c, socket } = p.connection(1);
    await p.resume.attach(c, undefined, authStartedAt);
    assert.equal(socket.closeCode(), 4003);
    // Disabled before this authentication started: that one read the user row after, so it stands.
    const { c: c2, socket: s2 } = p.connection(1);
    await p.resume.attach(c2, undefined, p.clock.monotonic() + 1);
    assert.equal(s2.closeCode(), undefined);
    assert.equal(c2.state, 'live');
  });

  it('a count pushed while replaying is sent again once live', async () => {
    const d = deferredResume();
    let counts = 0;
    const p = parts({
      autoDrain: true,
      source: { ...d.source, unreadCounts: async (ids) => new Map(ids.map((id) => [id, ++counts])) },
    });
    const { c, socket } = p.connection(1);
    const done = p.resume.attach(c, 'e.0', -Infinity);
    await settle();
    await p.fanout.refreshCounts(new Set([1]));
    assert.equal(c.countStale, true);
    d.release(from(0, 0));
    await done;
    await settle();
    const unread = socket.frames().filter((f) => f.type === 'UNREAD_COUNT');
    assert.equal(unread.length, 2, 'the connect-time count, then a fresh one');
  });

  it('a setup failure closes this connection 1011 and is logged', async () => {
    const p = parts({
      autoDrain: true,
      source: { startResume: async () => Promise.reject(new Error('store down')) },
    });
    const { c, socket } = p.connection(1);
    await p.resume.attach(c, 'e.0', -Infinity);
    assert.equal(socket.closeCode(), 1011);
    assert.equal(p.logs.filter((l) => l.includes('connection setup failed')).length, 1);
  });
});

describe('connection: its own state transitions', () => {
  it('replaying → live → closing, never back', () => {
    const p = parts({ autoDrain: true });
    const { c } = p.connection(1);
    assert.equal(c.accept(1), false, 'no live delivery while replaying');
    c.hold(2, 'ab', 100);
    c.hold(3, 'cde', 100);
    assert.equal(c.pendingBytes, 5);
    assert.deepEqual(
      c.startLive(1).map((x) => x.seq),
      [2, 3],
      'held events come back in arrival order',
    );
    assert.equal(c.state, 'live');
    assert.equal(c.accept(1), false, 'at or below lastSeq');
    assert.equal(c.accept(2), true);
    assert.equal(c.accept(2), false, 'never twice');
    assert.equal(c.beginClose(4009, 5), true);
    assert.equal(c.beginClose(4000, 6), false, 'the first close wins');
    assert.equal(c.closeCode, 4009);
    assert.equal(c.closingSince, 5);
    assert.deepEqual(c.startLive(9), [], 'a closing connection never goes live');
    assert.equal(c.state, 'closing');
    assert.equal(c.accept(10), false);
  });

  it('close() sends the close frame once; a throwing close falls back to terminate', () => {
    const p = parts({ autoDrain: true });
    const { c, socket } = p.connection(1);
    c.close({ code: 4010, reason: 'heartbeat timeout', action: 'reconnect' }, 1);
    c.close({ code: 4001, reason: 'token expired', action: 'refresh' }, 2);
    assert.deepEqual(socket.closedWith, { code: 4010, reason: 'heartbeat timeout' });
    const { c: c2, socket: s2 } = p.connection(1);
    s2.failOn = 'close';
    c2.close({ code: 4010, reason: 'heartbeat timeout', action: 'reconnect' }, 1);
    assert.equal(s2.terminated, true);
  });
});
