/**
 * Issue #12 item 4, inbound.ts: the strike rules. Invalid frames get an ERROR frame and the fifth
 * closes 4000; frames over the rate limit get an ERROR frame and the fifth such closes 4008; the
 * answers to our heartbeats are free of the limit, at most two owed; binary frames close 1003.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_REPLIES_OWED } from '../../src/realtime/connection.ts';
import { MAX_STRIKES, wsErrorCloseCode } from '../../src/realtime/inbound.ts';
import { parts } from './parts.ts';

const HEARTBEAT = '{"type":"HEARTBEAT","data":{"ping":"pong"}}';
const REPLY = '{"type":"HEARTBEAT_REPLY","data":{"pong":"ping"}}';

describe('inbound: strikes', () => {
  it('invalid frames: an ERROR each, the fifth closes 4000', () => {
    const p = parts();
    const { c, socket } = p.live();
    assert.equal(MAX_STRIKES, 5);
    for (let i = 1; i < MAX_STRIKES; i++) p.inbound.onFrame(c, Buffer.from('not json'), false);
    assert.deepEqual(socket.types(), ['ERROR', 'ERROR', 'ERROR', 'ERROR']);
    assert.equal(socket.frames()[0]?.data['code'], 'BAD_JSON');
    assert.equal(socket.closeCode(), undefined);
    p.inbound.onFrame(c, Buffer.from('{"type":"NOPE"}'), false);
    assert.equal(socket.closeCode(), 4000);
    assert.equal(socket.texts.length, 4, 'no ERROR with the close');
  });

  it('the json-shape checks run before parsing: too deep is a strike', () => {
    const p = parts();
    const { c, socket } = p.live();
    p.inbound.onFrame(
      c,
      Buffer.from(`{"type":"HEARTBEAT","data":${'['.repeat(100)}${']'.repeat(100)}}`),
      false,
    );
    assert.equal(socket.frames()[0]?.data['code'], 'TOO_DEEP');
  });

  it('over the rate limit: an ERROR each, the fifth closes 4008; valid frames between do not reset it', () => {
    const p = parts({ inboundRateLimit: 3 });
    const { c, socket } = p.live();
    for (let i = 0; i < 3; i++) p.inbound.onFrame(c, Buffer.from(HEARTBEAT), false);
    assert.deepEqual(socket.types(), ['HEARTBEAT_REPLY', 'HEARTBEAT_REPLY', 'HEARTBEAT_REPLY']);
    for (let i = 1; i < MAX_STRIKES; i++) p.inbound.onFrame(c, Buffer.from(HEARTBEAT), false);
    assert.equal(socket.types().filter((t) => t === 'ERROR').length, 4);
    assert.equal(socket.frames().at(-1)?.data['code'], 'RATE_LIMITED');
    // A minute later the bucket is full again, but the strikes stay.
    p.clock.advance(60_000);
    p.inbound.onFrame(c, Buffer.from(HEARTBEAT), false);
    assert.equal(socket.closeCode(), undefined);
    for (let i = 0; i < 3; i++) p.inbound.onFrame(c, Buffer.from(HEARTBEAT), false);
    assert.equal(socket.closeCode(), 4008);
  });

  it('replies to our heartbeats are free, at most two owed', () => {
    const p = parts({ inboundRateLimit: 1 });
    const { c, socket } = p.live();
    for (let i = 0; i < 3; i++) c.heartbeatSent(p.clock.monotonic(), 30_000);
    assert.equal(c.repliesOwed, MAX_REPLIES_OWED);
    assert.equal(MAX_REPLIES_OWED, 2);
    p.inbound.onFrame(c, Buffer.from(REPLY), false);
    p.inbound.onFrame(c, Buffer.from(REPLY), false);
    assert.equal(c.repliesOwed, 0);
    assert.deepEqual(socket.texts, [], 'free: no token taken, nothing answered');
    p.inbound.onFrame(c, Buffer.from(REPLY), false); // not owed: takes the one token
    p.inbound.onFrame(c, Buffer.from(REPLY), false); // over the limit
    assert.deepEqual(socket.types(), ['ERROR']);
    assert.equal(socket.frames()[0]?.data['code'], 'RATE_LIMITED');
  });

  it('before CONNECTED nothing is answered, but strikes still count', () => {
    const p = parts();
    const { c, socket } = p.connection();
    p.inbound.onFrame(c, Buffer.from(HEARTBEAT), false);
    for (let i = 0; i < MAX_STRIKES; i++) p.inbound.onFrame(c, Buffer.from('{'), false);
    assert.deepEqual(socket.texts, []);
    assert.equal(socket.closeCode(), 4000);
  });

  it('a binary frame closes 1003; every frame refreshes lastSeen, even while closing', () => {
    const p = parts();
    const { c, socket } = p.live();
    p.clock.advance(500);
    p.inbound.onFrame(c, Buffer.from([1, 2]), true);
    assert.equal(socket.closeCode(), 1003);
    assert.equal(c.lastSeen, p.clock.monotonic());
    p.clock.advance(500);
    p.inbound.onFrame(c, Buffer.from(HEARTBEAT), false);
    assert.equal(c.lastSeen, p.clock.monotonic());
    assert.deepEqual(socket.texts, []);
  });

  it("maps ws's own rejections to the close code it sends", () => {
    const err = (code: string) => Object.assign(new Error(code), { code });
    assert.equal(wsErrorCloseCode(err('WS_ERR_UNSUPPORTED_MESSAGE_LENGTH')), 1009);
    assert.equal(wsErrorCloseCode(err('WS_ERR_INVALID_UTF8')), 1007);
    assert.equal(wsErrorCloseCode(err('WS_ERR_TOO_MANY_BUFFERED_PARTS')), 1008);
    assert.equal(wsErrorCloseCode(err('WS_ERR_INVALID_OPCODE')), 1002);
    assert.equal(wsErrorCloseCode(err('ECONNRESET')), undefined);
  });
});
