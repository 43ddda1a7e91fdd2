/**
 * Issue #3 item 4 (seed defects 1 and 9): a JSON HEARTBEAT on an interval, any inbound frame or pong
 * keeps a connection alive, silence past the timeout closes it with HEARTBEAT_TIMEOUT and takes the
 * user off the online list. Intervals are shortened through the environment.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CloseCode } from '../../src/protocol.ts';
import { startApp, type TestApp } from '../helpers/app.ts';
import { createUsers, onlineUsers, sendTo, sleep, waitUntil } from '../helpers/realtime.ts';
import { connect } from '../helpers/ws-client.ts';

const INTERVAL = 100;
const TIMEOUT = 300;

describe('heartbeat', () => {
  let t: TestApp;
  let users: Array<{ id: number; token: string }>;
  before(async () => {
    t = await startApp({
      env: {
        SKYPUSH_HEARTBEAT_INTERVAL_MS: String(INTERVAL),
        SKYPUSH_HEARTBEAT_TIMEOUT_MS: String(TIMEOUT),
      },
    });
    users = await createUsers(t, 7001, 4);
  });
  after(async () => t.close());

  it('keeps a client that answers only with HEARTBEAT_REPLY, or only pongs, for 10× the timeout; drops a silent one', async () => {
    const [replier, ponger, silent] = users as [(typeof users)[0], (typeof users)[0], (typeof users)[0]];
    // No WebSocket pongs: only the JSON reply the seed's browser client sends (seed defect 1).
    const r = await connect(t.wsUrl, { token: replier.token, autoPong: false });
    r.ws.on('message', (raw) => {
      const f = JSON.parse(raw.toString()) as { type: string };
      if (f.type === 'HEARTBEAT')
        r.send({ type: 'HEARTBEAT_REPLY', data: { pong: 'ping' }, timestamp: Math.floor(Date.now() / 1000) });
    });
    // Pongs only, never a JSON frame.
    const p = await connect(t.wsUrl, { token: ponger.token, autoPong: true });
    // Neither.
    const s = await connect(t.wsUrl, { token: silent.token, autoPong: false });
    const started = Date.now();

    const closed = await s.closed;
    assert.equal(closed.code, CloseCode.HEARTBEAT_TIMEOUT.code);
    assert.equal(closed.reason, CloseCode.HEARTBEAT_TIMEOUT.reason);
    assert.ok(Date.now() - started < 10 * TIMEOUT, 'the silent client outlived 10× the timeout');
    await waitUntil(async () => !(await onlineUsers(t)).includes(silent.id));

    await sleep(10 * TIMEOUT - (Date.now() - started));
    for (const [name, sock] of [
      ['HEARTBEAT_REPLY client', r],
      ['pong-only client', p],
    ] as const) {
      assert.equal(sock.ws.readyState, sock.ws.OPEN, `${name} was closed`);
      const beats = sock.frames.filter((f) => f.type === 'HEARTBEAT').length;
      assert.ok(beats >= 10, `${name} got only ${beats} heartbeats`);
    }
    assert.deepEqual((await onlineUsers(t)).sort(), [replier.id, ponger.id].sort());
    const id = await sendTo(t, [replier.id, ponger.id]);
    for (const sock of [r, p]) await sock.waitFor((f) => f.data['messageId'] === id);
    await Promise.all([r.close(), p.close()]);
  });

  it('sends the seed heartbeat frame, carrying the cursor the connection is caught up to', async () => {
    const u = users[3] as (typeof users)[0];
    const sock = await connect(t.wsUrl, { token: u.token });
    const hb = await sock.waitFor((f) => f.type === 'HEARTBEAT');
    assert.deepEqual(hb.data, { ping: 'pong' });
    assert.equal(typeof hb.cursor, 'string');
    const id = await sendTo(t, [u.id]);
    const msg = await sock.waitFor((f) => f.data['messageId'] === id);
    const after = await sock.waitFor(
      (f) => f.type === 'HEARTBEAT' && sock.frames.indexOf(f) > sock.frames.indexOf(msg),
    );
    assert.equal(after.cursor, msg.cursor);
    await sock.close();
  });

  it('answers a client HEARTBEAT with HEARTBEAT_REPLY', async () => {
    const u = users[3] as (typeof users)[0];
    const sock = await connect(t.wsUrl, { token: u.token });
    await sock.waitFor((f) => f.type === 'CONNECTED');
    sock.send({ type: 'HEARTBEAT', data: { ping: 'pong' }, timestamp: Math.floor(Date.now() / 1000) });
    const reply = await sock.waitFor((f) => f.type === 'HEARTBEAT_REPLY');
    assert.deepEqual(reply.data, { pong: 'ping' });
    await sock.close();
  });
});

describe('heartbeat: spread', () => {
  let t: TestApp;
  before(async () => {
    t = await startApp({
      env: {
        SKYPUSH_HEARTBEAT_INTERVAL_MS: '1000',
        SKYPUSH_HEARTBEAT_TIMEOUT_MS: '5000',
        SKYPUSH_MAX_CONNECTIONS_PER_USER: '100',
      },
    });
  });
  after(async () => t.close());

  it('spreads the heartbeats of connections opened together over the interval', async () => {
    const socks = await Promise.all(
      Array.from({ length: 50 }, () => connect(t.wsUrl, { token: t.adminToken })),
    );
    const opened = Date.now();
    const firstBeat = await Promise.all(
      socks.map(async (s) => {
        await s.waitFor((f) => f.type === 'HEARTBEAT', 5000);
        return Date.now() - opened;
      }),
    );
    const spread = Math.max(...firstBeat) - Math.min(...firstBeat);
    // Uniform phases over 1 s: 50 of them inside 250 ms has a probability far below 1e-20.
    assert.ok(spread > 250, `first heartbeats all within ${spread} ms`);
    await Promise.all(socks.map((s) => s.close()));
  });
});
