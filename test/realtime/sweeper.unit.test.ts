/**
 * Issue #12 item 4, sweeper.ts: the sweep slices. Every connection is visited once per period, a slice
 * per tick; on a visit: a heartbeat when due (cursor of what the connection is caught up to), 4010
 * after silence, 4001 once the credential expired, terminate after the close grace.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CLOSE_GRACE_MS, sweepSchedule } from '../../src/realtime/sweeper.ts';
import { parts } from './parts.ts';

/** One whole round: as many ticks as slices (10 at the default interval). */
const round = (p: ReturnType<typeof parts>) => {
  for (let i = 0; i < 10; i++) p.sweeper.tick();
};

describe('sweeper: slices and rules', () => {
  it('cuts the period into slices of 20 ms or more, at most 10', () => {
    assert.deepEqual(sweepSchedule(30_000), { periodMs: 1000, slices: 10 });
    assert.deepEqual(sweepSchedule(400), { periodMs: 100, slices: 5 });
    assert.deepEqual(sweepSchedule(60), { periodMs: 20, slices: 1 });
  });

  it('visits every connection once per round, a slice per tick', () => {
    const p = parts({ heartbeatIntervalMs: 30_000 });
    const conns = Array.from({ length: 25 }, (_, i) => p.live(i + 1));
    p.clock.advance(30_000); // every heartbeat is due
    const pinged = () => conns.filter((x) => x.socket.pings > 0).length;
    const seen: number[] = [];
    for (let tick = 0; tick < 9; tick++) {
      p.sweeper.tick();
      seen.push(pinged());
    }
    // 10 slices: ceil(25 / 10) = 3 connections a tick, in registration order.
    assert.deepEqual(seen, [3, 6, 9, 12, 15, 18, 21, 24, 25]);
    assert.ok(
      conns.every((x) => x.socket.pings === 1),
      'each visited once',
    );
    assert.deepEqual(
      conns.slice(0, 3).map((x) => x.socket.pings),
      [1, 1, 1],
    );
    // The next round starts over, and finds no heartbeat due until the interval has passed again.
    for (let tick = 0; tick < 10; tick++) p.sweeper.tick();
    assert.ok(conns.every((x) => x.socket.pings === 1));
    p.clock.advance(30_000);
    for (let tick = 0; tick < 10; tick++) p.sweeper.tick();
    assert.ok(conns.every((x) => x.socket.pings === 2));
  });

  it('the heartbeat carries the tail cursor, or the connection’s own when it is ahead', () => {
    const p = parts();
    p.state.tailSeq = 7;
    const a = p.live(1, 7);
    const b = p.live(2, 9);
    p.clock.advance(30_000);
    round(p);
    assert.deepEqual(a.socket.types(), ['HEARTBEAT']);
    assert.equal(a.socket.frames()[0]?.cursor, 'e.7');
    assert.equal(b.socket.frames()[0]?.cursor, 'e.9');
    assert.equal(a.c.repliesOwed, 1);
  });

  it('silence past the timeout closes 4010', () => {
    const p = parts({ heartbeatTimeoutMs: 90_000 });
    const { c, socket } = p.live();
    p.clock.advance(90_000);
    round(p);
    assert.equal(socket.closeCode(), undefined, 'at the timeout: not yet');
    c.markSeen(p.clock.monotonic() - 90_001);
    round(p);
    assert.equal(socket.closeCode(), 4010);
  });

  it('an expired credential closes 4001', () => {
    const p = parts();
    const { c, socket } = p.connection(1, Math.floor(p.clock.now() / 1000) + 10);
    p.registry.register(c);
    c.startLive(0);
    round(p);
    assert.equal(socket.closeCode(), undefined);
    p.clock.advance(10_000);
    round(p);
    assert.equal(socket.closeCode(), 4001);
  });

  it('a close the peer never finishes is terminated after the grace', () => {
    const p = parts();
    const { c, socket } = p.live();
    c.close({ code: 4009, reason: 'slow consumer', action: 'reconnect' }, p.clock.monotonic());
    p.clock.advance(CLOSE_GRACE_MS);
    round(p);
    assert.equal(socket.terminated, false);
    p.clock.advance(1);
    round(p);
    assert.equal(socket.terminated, true);
  });

  it('one failing visit closes that connection 1011; the round goes on', () => {
    const p = parts();
    const a = p.live(1);
    const b = p.live(2);
    a.socket.failOn = 'ping';
    p.clock.advance(30_000);
    round(p);
    assert.equal(a.socket.closeCode(), 1011);
    assert.equal(b.socket.pings, 1);
    assert.equal(b.socket.closeCode(), undefined);
  });

  it('forgets disabled users after two minutes', () => {
    const p = parts();
    p.disabled.remember(1);
    p.clock.advance(60_000);
    p.disabled.remember(2);
    round(p);
    assert.equal(p.disabled.size, 2);
    p.clock.advance(60_000);
    round(p);
    assert.equal(p.disabled.size, 1);
    assert.equal(p.disabled.disabledSince(2, 0), true);
    assert.equal(p.disabled.disabledSince(1, 0), false);
  });
});
