/**
 * Issue #3 item 7: inbound frame rules. Too many frames, malformed frames, oversized frames and binary
 * frames get a documented ERROR frame or close code, and the server keeps serving everyone else.
 */
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { CloseCode, FrameErrorCode, INBOUND_LIMITS } from '../../src/protocol.ts';
import { startApp, type TestApp } from '../helpers/app.ts';
import { createUsers, sendTo, waitUntil } from '../helpers/realtime.ts';
import { connect, type Frame, type TestSocket } from '../helpers/ws-client.ts';

type U = { id: number; token: string };

const heartbeat = () => ({
  type: 'HEARTBEAT',
  data: { ping: 'pong' },
  timestamp: Math.floor(Date.now() / 1000),
});
const errors = (s: TestSocket) => s.frames.filter((f) => f.type === 'ERROR');

/** The server still answers `sock` and pushes messages to it. */
async function stillServed(t: TestApp, sock: TestSocket, userId: number): Promise<void> {
  const replies = () => sock.frames.filter((f) => f.type === 'HEARTBEAT_REPLY').length;
  const before = replies();
  sock.send(heartbeat());
  await waitUntil(() => replies() > before);
  const id = await sendTo(t, [userId]);
  await sock.waitFor((f) => f.type === 'NEW_MESSAGE' && f.data['messageId'] === id);
}

describe('inbound: rate limit', () => {
  let t: TestApp;
  let users: U[];
  before(async () => {
    t = await startApp({ env: { SKYPUSH_WS_RATE_LIMIT: '5' } });
    users = await createUsers(t, 8001, 2);
  });
  after(async () => t.close());

  it('answers frames over the limit with RATE_LIMITED errors, then closes with 4008; others are unaffected', async () => {
    const [flooder, bystander] = users as [U, U];
    const f = await connect(t.wsUrl, { token: flooder.token });
    const b = await connect(t.wsUrl, { token: bystander.token });
    await f.waitFor((x) => x.type === 'UNREAD_COUNT');
    for (let i = 0; i < 20; i++) f.send(heartbeat());
    const closed = await f.closed;
    assert.equal(closed.code, CloseCode.RATE_LIMITED.code);
    assert.equal(closed.reason, CloseCode.RATE_LIMITED.reason);
    assert.equal(f.frames.filter((x) => x.type === 'HEARTBEAT_REPLY').length, 5);
    const errs = errors(f);
    assert.ok(errs.length >= 1, 'no ERROR frame before the close');
    for (const e of errs) {
      assert.equal(e.data['code'], FrameErrorCode.RATE_LIMITED);
      assert.equal(typeof e.data['message'], 'string');
    }
    // The limit is per connection: the bystander (and a fresh connection of the flooder) are served.
    await stillServed(t, b, bystander.id);
    const again = await connect(t.wsUrl, { token: flooder.token });
    await stillServed(t, again, flooder.id);
    await Promise.all([b.close(), again.close()]);
  });
});

describe('inbound: answers to heartbeats are not rate-limited', () => {
  let t: TestApp;
  let users: U[];
  before(async () => {
    // A heartbeat every 100 ms: 600 a minute against a limit of 5.
    t = await startApp({
      env: {
        SKYPUSH_WS_RATE_LIMIT: '5',
        SKYPUSH_HEARTBEAT_INTERVAL_MS: '100',
        SKYPUSH_HEARTBEAT_TIMEOUT_MS: '5000',
      },
    });
    users = await createUsers(t, 8101, 2);
  });
  after(async () => t.close());

  const reply = () => ({
    type: 'HEARTBEAT_REPLY',
    data: { pong: 'ping' },
    timestamp: Math.floor(Date.now() / 1000),
  });

  it('keeps a client that answers every HEARTBEAT, far more often than the limit', async () => {
    const [u] = users as [U];
    const s = await connect(t.wsUrl, { token: u.token });
    s.ws.on('message', (raw) => {
      if ((JSON.parse(raw.toString()) as Frame).type === 'HEARTBEAT') s.send(reply());
    });
    await waitUntil(() => s.frames.filter((f) => f.type === 'HEARTBEAT').length >= 15, 5000);
    await new Promise((r) => setTimeout(r, 150));
    assert.deepEqual(errors(s), [], 'no RATE_LIMITED');
    assert.equal(s.ws.readyState, s.ws.OPEN);
    await stillServed(t, s, u.id);
    await s.close();
  });

  it('still limits HEARTBEAT_REPLY frames nobody asked for', async () => {
    const [, u] = users as [U, U];
    const s = await connect(t.wsUrl, { token: u.token });
    await s.waitFor((f) => f.type === 'UNREAD_COUNT');
    for (let i = 0; i < 30; i++) s.send(reply());
    const closed = await s.closed;
    assert.equal(closed.code, CloseCode.RATE_LIMITED.code);
    assert.ok(errors(s).every((e) => e.data['code'] === FrameErrorCode.RATE_LIMITED));
  });
});

describe('inbound: malformed and oversized frames', () => {
  let t: TestApp;
  let users: U[];
  before(async () => {
    t = await startApp();
    users = await createUsers(t, 8101, 2);
  });
  after(async () => t.close());

  const invalid: Array<[string, string, string]> = [
    ['non-JSON', 'this is not json', FrameErrorCode.BAD_JSON],
    ['an array', '[1,2,3]', FrameErrorCode.BAD_FRAME],
    ['a frame without a type', '{"data":{}}', FrameErrorCode.BAD_FRAME],
    [
      'a type longer than 50 characters',
      JSON.stringify({ type: 'X'.repeat(INBOUND_LIMITS.maxTypeLength + 1), data: {} }),
      FrameErrorCode.TYPE_TOO_LONG,
    ],
    [
      'data larger than 10 KB',
      JSON.stringify({ type: 'HEARTBEAT_REPLY', data: { pad: 'x'.repeat(INBOUND_LIMITS.maxDataBytes) } }),
      FrameErrorCode.DATA_TOO_LARGE,
    ],
    ['an unknown type', JSON.stringify({ type: 'SUBSCRIBE', data: {} }), FrameErrorCode.UNKNOWN_TYPE],
    [
      'data nested 5,000 levels deep',
      `{"type":"HEARTBEAT","data":${'['.repeat(5000)}${']'.repeat(5000)}}`,
      FrameErrorCode.TOO_DEEP,
    ],
    ['heartbeat data that is not an object', '{"type":"HEARTBEAT","data":"ping"}', FrameErrorCode.BAD_DATA],
  ];

  for (const [name, text, code] of invalid) {
    it(`answers ${name} with an ERROR ${code} frame and stays open`, async () => {
      const u = users[0] as U;
      const sock = await connect(t.wsUrl, { token: u.token });
      await sock.waitFor((f) => f.type === 'UNREAD_COUNT');
      sock.send(text);
      const err = await sock.waitFor((f) => f.type === 'ERROR');
      assert.equal(err.data['code'], code);
      assert.equal(typeof err.data['message'], 'string');
      assert.equal(Number.isInteger(err.timestamp), true);
      await stillServed(t, sock, u.id);
      await sock.close();
    });
  }

  it('accepts a type of exactly 50 characters and data of exactly the limit as far as size goes', async () => {
    const u = users[0] as U;
    const sock = await connect(t.wsUrl, { token: u.token });
    await sock.waitFor((f) => f.type === 'UNREAD_COUNT');
    sock.send({ type: 'Y'.repeat(INBOUND_LIMITS.maxTypeLength), data: {} });
    // data serialises to {"pad":"…"}: 10 bytes of framing around the padding.
    sock.send({ type: 'HEARTBEAT_REPLY', data: { pad: 'x'.repeat(INBOUND_LIMITS.maxDataBytes - 10) } });
    sock.send(heartbeat());
    await sock.waitFor((f) => f.type === 'HEARTBEAT_REPLY');
    assert.deepEqual(
      errors(sock).map((e: Frame) => e.data['code']),
      [FrameErrorCode.UNKNOWN_TYPE],
    );
    await sock.close();
  });

  it('closes with 4000 after repeated invalid frames', async () => {
    const u = users[0] as U;
    const sock = await connect(t.wsUrl, { token: u.token });
    await sock.waitFor((f) => f.type === 'UNREAD_COUNT');
    for (let i = 0; i < 10; i++) sock.send(`garbage ${i}`);
    const closed = await sock.closed;
    assert.equal(closed.code, CloseCode.PROTOCOL_ERROR.code);
    assert.equal(closed.reason, CloseCode.PROTOCOL_ERROR.reason);
    assert.ok(errors(sock).length >= 1);
  });

  it('closes with 1009 on a frame over maxPayload, and keeps serving others', async () => {
    const [big, other] = users as [U, U];
    const b = await connect(t.wsUrl, { token: big.token });
    const o = await connect(t.wsUrl, { token: other.token });
    await b.waitFor((f) => f.type === 'UNREAD_COUNT');
    b.send('x'.repeat(t.config.realtime.maxPayload + 1));
    assert.equal((await b.closed).code, CloseCode.TOO_LARGE.code);
    await stillServed(t, o, other.id);
    await o.close();
  });

  it('closes with 1007 on a text frame that is not UTF-8, and 1002 on an unmasked frame', async () => {
    const u = users[0] as U;
    const a = await connect(t.wsUrl, { token: u.token });
    await a.waitFor((f) => f.type === 'UNREAD_COUNT');
    a.ws.send(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), { binary: false });
    assert.equal((await a.closed).code, CloseCode.INVALID_UTF8.code);

    const b = await connect(t.wsUrl, { token: u.token });
    await b.waitFor((f) => f.type === 'UNREAD_COUNT');
    // A client frame must be masked: FIN + text, unmasked, payload "hi".
    (b.ws as unknown as { _socket: Socket })._socket.write(Buffer.from([0x81, 0x02, 0x68, 0x69]));
    assert.equal((await b.closed).code, CloseCode.INVALID_FRAME.code);
  });

  it('closes with 1003 on a binary frame', async () => {
    const u = users[0] as U;
    const sock = await connect(t.wsUrl, { token: u.token });
    await sock.waitFor((f) => f.type === 'UNREAD_COUNT');
    sock.ws.send(Buffer.from(JSON.stringify(heartbeat())), { binary: true });
    const closed = await sock.closed;
    assert.equal(closed.code, CloseCode.UNSUPPORTED_DATA.code);
    assert.equal(closed.reason, CloseCode.UNSUPPORTED_DATA.reason);
  });
});
