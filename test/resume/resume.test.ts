import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DIALECTS, startApp, type TestApp } from '../helpers/app.ts';
import { ResumingClient, restInbox } from '../helpers/resuming-client.ts';
import { connect } from '../helpers/ws-client.ts';
import { hubCaughtUp, waitUntil } from '../helpers/realtime.ts';

async function send(t: TestApp, targetIds: number[], title = 'm'): Promise<number> {
  const r = await t.request<{ messageId: number }>('POST', '/api/v1/messages/send', {
    token: t.adminToken,
    body: { title, content: 'c', targetType: 'user', targetIds },
  });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body.data.messageId;
}

for (const dialect of DIALECTS) {
  describe(`${dialect}: resume from a cursor`, () => {
    let t: TestApp;
    before(async () => {
      t = await startApp({ dialect, env: { SKYPUSH_REPLAY_BATCH: '7' } });
    });
    after(async () => t.close());

    it('replays exactly the events missed while disconnected, in order, then goes live', async () => {
      const u = await t.createUser('resume-a');
      const c = new ResumingClient(t.wsUrl, u.token);
      await c.connect();
      for (let i = 0; i < 10; i++) await send(t, [u.id]);
      await c.until(() => c.events.length === 10, 10_000, '10 live events');
      await c.close();

      const missed: number[] = [];
      for (let i = 0; i < 20; i++) missed.push(await send(t, [u.id]));
      const before = c.events.length;
      await hubCaughtUp(t);
      await c.connect();
      assert.deepEqual(c.connects.at(-1), { ok: true, replayed: 20 });
      assert.deepEqual(c.newMessageIds().slice(before), missed);
      // 20 events in batches of at most 7.
      const live = await send(t, [u.id]);
      await c.until(() => c.newMessageIds().includes(live));
      assert.deepEqual(c.newMessageIds().slice(before), [...missed, live]);
      assert.equal(new Set(c.newMessageIds()).size, c.newMessageIds().length, 'no duplicates');
      await c.close();
    });

    it('loses and doubles nothing when a client reconnects 50 times during ~100 sends/s', async () => {
      const u = await t.createUser('resume-race');
      const c = new ResumingClient(t.wsUrl, u.token);
      await c.connect();
      const sent: number[] = [];
      let sending = true;
      const sender = (async () => {
        while (sending) {
          sent.push(await send(t, [u.id]));
          await new Promise((r) => setTimeout(r, 10));
        }
      })();
      for (let i = 0; i < 50; i++) {
        await new Promise((r) => setTimeout(r, 5 + Math.floor(Math.random() * 40)));
        if (i % 2 === 0) await c.drop();
        else await c.close();
        await c.connect();
      }
      sending = false;
      await sender;
      await c.until(() => c.newMessageIds().length >= sent.length, 10_000, 'all sent messages');
      assert.deepEqual(c.newMessageIds(), sent, 'received exactly the sent messages, each once, in order');
      const seqs = c.events.map((e) => Number(e.cursor?.split('.')[1]));
      assert.deepEqual(
        seqs,
        [...seqs].sort((a, b) => a - b),
        'cursors only move forward',
      );
      await c.close();
    });

    it('makes a slow-consumer close lossless: the client resumes and gets everything', async () => {
      const slow = await startApp({ dialect, env: { SKYPUSH_WS_SEND_QUEUE_BYTES: '65536' } });
      try {
        const u = await slow.createUser('slow');
        const c = new ResumingClient(slow.wsUrl, u.token);
        await c.connect();
        // Stop reading: the kernel buffers fill, then the server's queue, then it closes us.
        (c.ws as unknown as { _socket: { pause(): void } })._socket.pause();
        const big = 'x'.repeat(19_000);
        const sent: number[] = [];
        const slowCloses = async () => (await slow.app.metrics.slowConsumers.get()).values[0]?.value ?? 0;
        let extra = -1;
        for (let i = 0; i < 800 && extra !== 0; i++) {
          const r = await slow.request<{ messageId: number }>('POST', '/api/v1/messages/send', {
            token: slow.adminToken,
            body: { title: `big ${i}`, content: big, targetType: 'user', targetIds: [u.id] },
          });
          sent.push(r.body.data.messageId);
          // Once closed, send a few more so there is something after the close too.
          if (extra > 0) extra--;
          else if (extra < 0 && i % 10 === 9 && (await slowCloses()) >= 1) extra = 10;
        }
        assert.ok((await slowCloses()) >= 1, 'the server closed the slow consumer');
        await c.drop();
        assert.ok(c.newMessageIds().length < sent.length, 'the client really missed messages');
        await c.connect();
        await c.until(() => c.newMessageIds().length >= sent.length, 20_000, 'every message after resume');
        assert.deepEqual(c.newMessageIds(), sent);
        await c.close();
      } finally {
        await slow.close();
      }
    });

    it('answers malformed, foreign, future and expired cursors explicitly', async () => {
      const u = await t.createUser('cursors');
      const c = new ResumingClient(t.wsUrl, u.token);
      await c.connect();
      const epoch = (c.cursor as string).split('.')[0] as string;
      await c.close();

      await assert.rejects(
        connect(t.wsUrl, { token: u.token, since: 'garbage' }),
        (e: { status?: number; body?: string }) => {
          assert.equal(e.status, 400);
          assert.equal(JSON.parse(e.body ?? '{}').code, 40004);
          return true;
        },
      );
      for (const [since, reason] of [
        [`${epoch === 'aaaaaaaaaaaa' ? 'bbbbbbbbbbbb' : 'aaaaaaaaaaaa'}.1`, 'foreign'],
        [`${epoch}.999999999`, 'future'],
      ] as const) {
        const s = await connect(t.wsUrl, { token: u.token, since });
        const connected = await s.waitFor((f) => f.type === 'CONNECTED');
        assert.deepEqual(connected.data['resume'], { requested: true, ok: false, replayed: 0 });
        const resync = await s.waitFor((f) => f.type === 'RESYNC');
        assert.equal(resync.data['reason'], reason);
        assert.match(String(resync.data['cursor']), new RegExp(`^${epoch}\\.\\d+$`));
        await s.close();
      }
    });

    it('sends RESYNC when a cursor is older than retention or would replay too much', async () => {
      const short = await startApp({
        dialect,
        env: {
          SKYPUSH_EVENT_RETENTION: '1s',
          SKYPUSH_EVENT_CLEANUP_INTERVAL_MS: '100000',
          SKYPUSH_REPLAY_MAX: '5',
        },
      });
      try {
        const u = await short.createUser('stale');
        const c = new ResumingClient(short.wsUrl, u.token);
        await c.connect();
        const old = c.cursor as string;
        await c.close();
        for (let i = 0; i < 6; i++) await send(short, [u.id]);
        // The count covers the log up to the hub's tail; events past it arrive live, not as replay.
        await hubCaughtUp(short);
        const tooMany = await connect(short.wsUrl, { token: u.token, since: old });
        assert.equal((await tooMany.waitFor((f) => f.type === 'RESYNC')).data['reason'], 'too_many');
        assert.equal(tooMany.frames.filter((f) => f.type === 'MESSAGE_BATCH').length, 0, 'no partial replay');
        await tooMany.close();

        await new Promise((r) => setTimeout(r, 1100));
        assert.ok((await short.app.eventLog.prune(1)) >= 6, 'retention removed the old events');
        const stale = await connect(short.wsUrl, { token: u.token, since: old });
        assert.equal((await stale.waitFor((f) => f.type === 'RESYNC')).data['reason'], 'expired');
        await stale.close();
      } finally {
        await short.close();
      }
    });

    it('replays reads and deletes from another device, never resurrects a deleted message, and recounts', async () => {
      const u = await t.createUser('devices');
      const b = new ResumingClient(t.wsUrl, u.token, () => restInbox(t.request, u.token));
      await b.connect();
      const m1 = await send(t, [u.id]);
      const m2 = await send(t, [u.id]);
      const m3 = await send(t, [u.id]);
      await b.until(() => b.newMessageIds().length === 3);
      await b.close();
      // Device A (REST) reads one, deletes one, and everyone gets a send-to-all message.
      assert.equal((await t.request('PUT', `/api/v1/messages/${m1}/read`, { token: u.token })).status, 200);
      assert.equal((await t.request('DELETE', `/api/v1/messages/${m2}`, { token: u.token })).status, 200);
      const all = await t.request<{ messageId: number }>('POST', '/api/v1/messages/send', {
        token: t.adminToken,
        body: { title: 'everyone', content: 'c', targetType: 'all' },
      });
      await hubCaughtUp(t);
      await b.connect();
      const types = b.events.slice(3).map((e) => e.type);
      assert.deepEqual(types, ['MESSAGE_READ', 'MESSAGE_DELETED', 'NEW_MESSAGE']);
      assert.equal(b.inbox.has(m2), false, 'deleted message does not reappear');
      assert.equal(b.inbox.get(m1)?.isRead, true);
      assert.equal(b.inbox.get(m3)?.isRead, false);
      assert.equal(b.inbox.has(all.body.data.messageId), true, 'send-to-all replayed without a row per user');
      const rest = await t.request<{ count: number }>('GET', '/api/v1/messages/unread-count', {
        token: u.token,
      });
      assert.equal(b.lastUnread, rest.body.data.count);
      assert.deepEqual(
        [...b.inbox.values()].sort((x, y) => y.id - x.id),
        await restInbox(t.request, u.token),
      );
      await b.close();
    });

    it('replays admin SYSTEM_NOTIFY broadcasts to users who were offline', async () => {
      const u = await t.createUser('notify');
      const c = new ResumingClient(t.wsUrl, u.token);
      await c.connect();
      await c.close();
      const r = await t.request('POST', '/api/v1/ws/broadcast', {
        token: t.adminToken,
        body: { type: 'SYSTEM_NOTIFY', data: { title: 'maintenance', content: 'tonight', level: 'warning' } },
      });
      assert.equal(r.status, 200);
      await c.connect();
      // Replayed if this node's hub had read it when the socket registered, else delivered live just after.
      await waitUntil(() => c.events.some((e) => e.type === 'SYSTEM_NOTIFY'));
      const notifies = c.events.filter((e) => e.type === 'SYSTEM_NOTIFY');
      assert.equal(notifies.length, 1);
      assert.equal(notifies[0]?.data['title'], 'maintenance');
      await c.close();
    });
  });
}
