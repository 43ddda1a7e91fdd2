/**
 * Issue #12 item 4, socket-writer.ts: the byte-bounded send queue and corking. Only bytes left unsent
 * by earlier turns count against the bound; over it, the connection is closed as a slow consumer
 * (4009) and the frame dropped; one frame larger than the bound still goes to a socket with nothing
 * queued. Writes within a turn are corked once and uncorked on the next tick.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { WireFrame } from '../../src/realtime/codec.ts';
import { parts, total } from './parts.ts';

const BOUND = 1000;
const frameOf = (bytes: number) => `"${'x'.repeat(bytes - 2)}"`;
const tick = () => new Promise<void>((r) => process.nextTick(r));

describe('socket writer: the queue bound', () => {
  it('one oversized frame to an empty socket still goes', async () => {
    const p = parts({ sendQueueBytes: BOUND });
    const { c, socket } = p.live();
    assert.equal(p.writer.send(c, frameOf(BOUND * 3), false), true);
    assert.equal(socket.texts.length, 1);
    assert.equal(socket.closeCode(), undefined);
  });

  it('unsent bytes plus the frame over the bound: closed 4009, frame dropped', async () => {
    const p = parts({ sendQueueBytes: BOUND });
    const { c, socket } = p.live();
    socket.bufferedAmount = BOUND - 50;
    assert.equal(p.writer.send(c, frameOf(50), false), true, 'exactly at the bound still goes');
    assert.equal(p.writer.send(c, frameOf(2), false), false);
    assert.equal(socket.texts.length, 1);
    assert.equal(socket.closeCode(), 4009);
    assert.equal(await total(p.metrics.slowConsumers), 1);
    assert.equal(await total(p.metrics.framesDropped), 1);
    assert.equal(p.writer.send(c, frameOf(2), false), false, 'a closing connection gets nothing');
    assert.equal(await total(p.metrics.framesDropped), 2);
    assert.equal(await total(p.metrics.slowConsumers), 1, 'closed as a slow consumer once');
  });

  it('what this turn corked does not count; what it left unsent does, next turn', async () => {
    const p = parts({ sendQueueBytes: BOUND });
    const { c, socket } = p.live();
    for (let i = 0; i < 3; i++) assert.equal(p.writer.send(c, frameOf(600)), true);
    assert.equal(socket._socket?.corks, 1, 'corked once for the turn');
    assert.equal(c.corkedBacklog, 0);
    await tick();
    assert.equal(socket._socket?.uncorks, 1);
    assert.equal(c.corkedBacklog, -1);
    assert.deepEqual(p.flushes, [1]);
    // The 1800 bytes are still unsent in the next turn: now they count.
    assert.equal(p.writer.send(c, frameOf(10)), false);
    assert.equal(socket.closeCode(), 4009);
  });

  it("what the upgrade holds back counts as this turn's until released; then the backlog counts", async () => {
    const p = parts({ sendQueueBytes: BOUND });
    const { c, socket } = p.live();
    let released = 0;
    const release = p.writer.heldUntil(c, () => released++);
    socket.bufferedAmount = 300; // the 101 and CONNECTED, held in the socket
    assert.equal(p.writer.send(c, frameOf(BOUND * 2)), true, 'a page larger than the bound still goes');
    assert.equal(socket._socket?.corks, 0, 'the upgrade corked it already');
    release();
    assert.equal(released, 1);
    assert.equal(c.corkedBacklog, -1);
    socket.bufferedAmount = BOUND * 2 + 300;
    assert.equal(p.writer.send(c, frameOf(10), false), false, 'after release what is unsent counts');
    assert.equal(socket.closeCode(), 4009);
  });

  it('a throwing write closes that connection alone with 1011', async () => {
    const p = parts();
    const a = p.live(1);
    const b = p.live(2);
    a.socket.failOn = 'send';
    assert.equal(p.writer.send(a.c, 'x', false), false);
    assert.equal(p.writer.send(b.c, '"y"', false), true);
    assert.equal(a.socket.closeCode(), 1011);
    assert.equal(b.socket.closeCode(), undefined);
  });

  it('without deflate, a WireFrame is written pre-framed; with it, through ws.send', async () => {
    const raw = parts({ rawFrames: true });
    const frame = new WireFrame('{"type":"X"}');
    const r = raw.live();
    raw.writer.send(r.c, frame, false);
    assert.deepEqual(r.socket.rawFrames, [frame.wire]);
    assert.deepEqual(r.socket.texts, []);
    const deflate = parts({ rawFrames: false });
    const d = deflate.live();
    deflate.writer.send(d.c, frame, false);
    assert.deepEqual(d.socket.rawFrames, []);
    assert.deepEqual(d.socket.texts, ['{"type":"X"}']);
  });
});

describe('socket writer: drained()', () => {
  it('resolves true once the socket drains below the mark', async () => {
    const p = parts();
    const { c, socket } = p.live();
    socket.bufferedAmount = 500;
    const done = p.writer.drained(c, 100);
    socket.bufferedAmount = 50;
    socket._socket?.emit('drain');
    assert.equal(await done, true);
  });

  it('a socket that stays full past stallMs is closed as a slow consumer', async () => {
    const p = parts({ heartbeatTimeoutMs: 1000 });
    const { c, socket } = p.live();
    socket.bufferedAmount = 500;
    const done = p.writer.drained(c, 100);
    p.clock.advance(1001);
    socket._socket?.emit('drain');
    assert.equal(await done, false);
    assert.equal(socket.closeCode(), 4009);
  });

  it('without closeOnStall, a socket that stays full past stallMs resolves false and stays open', async () => {
    const p = parts({ heartbeatTimeoutMs: 1000 });
    const { c, socket } = p.live();
    socket.bufferedAmount = 500;
    const done = p.writer.drained(c, 100, false);
    p.clock.advance(1001);
    socket._socket?.emit('drain');
    assert.equal(await done, false);
    assert.equal(socket.closeCode(), undefined);
    assert.equal(c.state, 'live');
    assert.equal(socket._socket?.listenerCount('drain'), 0, 'it stopped watching');
  });

  it('a close meanwhile resolves false', async () => {
    const p = parts();
    const { c, socket } = p.live();
    socket.bufferedAmount = 500;
    const done = p.writer.drained(c, 100);
    c.beginClose(1000, p.clock.monotonic());
    socket.emit('close', 1000);
    assert.equal(await done, false);
    assert.equal(socket.listenerCount('close'), 0, 'its listeners are removed');
    assert.equal(socket._socket?.listenerCount('drain'), 0);
  });
});
