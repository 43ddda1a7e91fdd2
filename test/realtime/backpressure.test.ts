/**
 * Issue #3 item 8 (seed defect 5): every connection has a bounded outbound queue. A client that stops
 * reading is closed with SLOW_CONSUMER once over the bound instead of having frames silently dropped;
 * the other clients keep receiving everything and the server's memory stays bounded.
 */
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { CloseCode } from '../../src/protocol.ts';
import { startApp, type TestApp } from '../helpers/app.ts';
import { createUsers, metricValue, sendTo, waitUntil } from '../helpers/realtime.ts';
import { connect, type TestSocket } from '../helpers/ws-client.ts';

type U = { id: number; token: string };
const QUEUE_BYTES = 64 * 1024;

const rawSocket = (s: TestSocket) => (s.ws as unknown as { _socket: Socket })._socket;

describe('backpressure: slow consumer', () => {
  let t: TestApp;
  let users: U[];
  before(async () => {
    t = await startApp({ env: { SKYPUSH_WS_SEND_QUEUE_BYTES: String(QUEUE_BYTES) } });
    users = await createUsers(t, 9001, 2);
  });
  after(async () => t.close());

  it('closes a client that stops reading with 4009 while another keeps receiving every message', async () => {
    const [slowUser, fastUser] = users as [U, U];
    const slow = await connect(t.wsUrl, { token: slowUser.token });
    const fast = await connect(t.wsUrl, { token: fastUser.token });
    await slow.waitFor((f) => f.type === 'UNREAD_COUNT');
    rawSocket(slow).pause();

    // ~20 KB frames, each below the queue bound, until the paused client's kernel buffers are full and
    // its queue overflows. Sends run a few at a time; every one also goes to the fast client.
    const content = 'x'.repeat(20_000);
    const sent: number[] = [];
    let overflowed = false;
    const closes = () => metricValue(t, 'skypush_ws_slow_consumer_closes_total');
    const sender = async () => {
      while (!overflowed && sent.length < 3000)
        sent.push(await sendTo(t, [slowUser.id, fastUser.id], { content }));
    };
    const watcher = (async () => {
      await waitUntil(async () => (await closes()) > 0, 60_000);
      overflowed = true;
      // Read again: the client drains what was queued and then finds the close frame.
      rawSocket(slow).resume();
    })();
    await Promise.all([sender(), sender(), sender(), sender(), watcher]);

    const closed = await slow.closed;
    assert.equal(closed.code, CloseCode.SLOW_CONSUMER.code);
    assert.equal(closed.reason, CloseCode.SLOW_CONSUMER.reason);
    assert.equal(await closes(), 1);
    // What the slow client did get is a gap-free prefix of everything sent, in commit (= id) order.
    const got = slow.frames.filter((f) => f.type === 'NEW_MESSAGE').map((f) => f.data['messageId'] as number);
    const inOrder = [...sent].sort((a, b) => a - b);
    assert.deepEqual(got, inOrder.slice(0, got.length));

    const last = sent.at(-1) as number;
    await fast.waitFor((f) => f.type === 'NEW_MESSAGE' && f.data['messageId'] === last, 10_000);
    const fastGot = new Set(
      fast.frames.filter((f) => f.type === 'NEW_MESSAGE').map((f) => f.data['messageId']),
    );
    assert.equal(fastGot.size, sent.length, 'the fast client missed messages');
    assert.equal(fast.ws.readyState, fast.ws.OPEN);
    await waitUntil(() => t.app.hub.size === 1);
    await fast.close();
  });

  it('does not count one frame larger than the bound as a slow consumer', async () => {
    // A message frame can exceed a small queue bound on its own; a client that reads promptly must
    // still get it rather than be closed (and, after reconnecting, be closed again forever).
    const tiny = await startApp({ env: { SKYPUSH_WS_SEND_QUEUE_BYTES: '4096' } });
    try {
      const sock = await connect(tiny.wsUrl, { token: tiny.adminToken });
      await sock.waitFor((f) => f.type === 'UNREAD_COUNT');
      const r = await tiny.request<{ messageId: number }>('POST', '/api/v1/messages/send', {
        token: tiny.adminToken,
        body: { title: 'big', content: 'y'.repeat(10_000), targetType: 'user', targetIds: [1] },
      });
      assert.equal(r.status, 200);
      await sock.waitFor((f) => f.type === 'NEW_MESSAGE' && f.data['messageId'] === r.body.data.messageId);
      assert.equal(sock.ws.readyState, sock.ws.OPEN);
      await sock.close();
    } finally {
      await tiny.close();
    }
  });

  it('replays one event larger than the bound in the connect write (the 101 and CONNECTED are no backlog)', async () => {
    // The 101, CONNECTED and the first replay page leave in one write; what the connection's own set-up
    // holds back is not a backlog, or a resume over one large message would be closed at every attempt.
    const tiny = await startApp({ env: { SKYPUSH_WS_SEND_QUEUE_BYTES: '4096' } });
    try {
      const first = await connect(tiny.wsUrl, { token: tiny.adminToken });
      const connected = await first.waitFor((f) => f.type === 'CONNECTED');
      await first.close();
      const r = await tiny.request<{ messageId: number }>('POST', '/api/v1/messages/send', {
        token: tiny.adminToken,
        body: { title: 'big', content: 'y'.repeat(10_000), targetType: 'user', targetIds: [1] },
      });
      const sock = await connect(tiny.wsUrl, {
        token: tiny.adminToken,
        since: connected.data['cursor'] as string,
      });
      await sock.waitFor((f) => f.type === 'UNREAD_COUNT');
      const replayed = sock.frames
        .filter((f) => f.type === 'MESSAGE_BATCH')
        .flatMap((f) => (f.data.messages ?? []).map((m) => m.data['messageId']));
      assert.deepEqual(replayed, [r.body.data.messageId]);
      assert.equal(sock.ws.readyState, sock.ws.OPEN);
      assert.equal(await metricValue(tiny, 'skypush_ws_slow_consumer_closes_total'), 0);
      await sock.close();
    } finally {
      await tiny.close();
    }
  });

  it('does not count frames written in one turn (a replay) against a client that reads', async () => {
    // 20 one-event MESSAGE_BATCH frames of ~10 KB, written in one turn: 200 KB against a 64 KB bound.
    const small = await startApp({
      env: { SKYPUSH_WS_SEND_QUEUE_BYTES: String(QUEUE_BYTES), SKYPUSH_REPLAY_BATCH: '1' },
    });
    try {
      const first = await connect(small.wsUrl, { token: small.adminToken });
      const connected = await first.waitFor((f) => f.type === 'CONNECTED');
      await first.close();
      const ids: number[] = [];
      for (let i = 0; i < 20; i++) {
        const r = await small.request<{ messageId: number }>('POST', '/api/v1/messages/send', {
          token: small.adminToken,
          body: { title: `m${i}`, content: 'z'.repeat(10_000), targetType: 'user', targetIds: [1] },
        });
        ids.push(r.body.data.messageId);
      }
      const sock = await connect(small.wsUrl, {
        token: small.adminToken,
        since: connected.data['cursor'] as string,
      });
      await sock.waitFor((f) => f.type === 'UNREAD_COUNT');
      const replayed = sock.frames
        .filter((f) => f.type === 'MESSAGE_BATCH')
        .flatMap((f) => (f.data.messages ?? []).map((m) => m.data['messageId']));
      assert.deepEqual(replayed, ids);
      assert.equal(sock.ws.readyState, sock.ws.OPEN);
      await sock.close();
    } finally {
      await small.close();
    }
  });
});
