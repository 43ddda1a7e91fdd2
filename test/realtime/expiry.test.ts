/**
 * Expired messages are announced: each holder of a direct message (and everyone, for a message to all)
 * gets a durable MESSAGE_DELETED with reason "expired" and a fresh UNREAD_COUNT, live or on resume, so the
 * pushed count keeps matching the REST count after an expiry.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DIALECTS, startApp, type TestApp } from '../helpers/app.ts';
import { createUsers, waitUntil } from '../helpers/realtime.ts';
import { connect, durable, type Frame, type TestSocket } from '../helpers/ws-client.ts';

type U = { id: number; token: string };

const expiredOf = (s: TestSocket, messageId: number) =>
  s.frames.filter(
    (f) =>
      f.type === 'MESSAGE_DELETED' && f.data['messageId'] === messageId && f.data['reason'] === 'expired',
  );
const lastCount = (s: TestSocket) => s.frames.filter((f) => f.type === 'UNREAD_COUNT').at(-1)?.data['count'];

for (const dialect of DIALECTS) {
  describe(`${dialect}: expired messages`, () => {
    let t: TestApp;
    let users: U[];
    before(async () => {
      t = await startApp({
        dialect,
        env: { SKYPUSH_EXPIRY_SWEEP_MS: '100', SKYPUSH_EVENT_CLEANUP_INTERVAL_MS: '100' },
      });
      users = await createUsers(t, 9001, 4);
    });
    after(async () => t.close());

    const send = async (body: Record<string, unknown>, expiresInMs: number): Promise<number> => {
      const r = await t.request<{ messageId: number }>('POST', '/api/v1/messages/send', {
        token: t.adminToken,
        body: {
          title: 'soon gone',
          content: 'c',
          ...body,
          expiresAt: new Date(Date.now() + expiresInMs).toISOString(),
        },
      });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      return r.body.data.messageId;
    };
    const restCount = async (u: U) =>
      (await t.request<{ count: number }>('GET', '/api/v1/messages/unread-count', { token: u.token })).body
        .data.count;
    const expiryEvents = async (messageId: number) =>
      (
        await t.app.store.db
          .selectFrom('events')
          .select(['user_id', 'data'])
          .where('type', '=', 'MESSAGE_DELETED')
          .execute()
      )
        .filter((e) => {
          const d = JSON.parse(e.data) as { messageId: number; reason?: string };
          return d.messageId === messageId && d.reason === 'expired';
        })
        .map((e) => (e.user_id === null ? null : Number(e.user_id)));

    const rowsOf = async (messageId: number) => {
      const db = t.app.store.db;
      const count = async (table: 'messages' | 'inbox', column: 'id' | 'message_id') =>
        Number(
          (
            await db
              .selectFrom(table)
              .select((eb) => eb.fn.countAll<number>().as('n'))
              .where(column, '=', messageId)
              .executeTakeFirstOrThrow()
          ).n,
        );
      return { messages: await count('messages', 'id'), inbox: await count('inbox', 'message_id') };
    };

    it('tells every holder live, with the unread count that REST now gives, once', async () => {
      const [a, b, c] = users as [U, U, U];
      const sa = await connect(t.wsUrl, { token: a.token });
      const sb = await connect(t.wsUrl, { token: b.token });
      await Promise.all([sa, sb].map((s) => s.waitFor((f) => f.type === 'UNREAD_COUNT')));
      const direct = await send({ targetType: 'user', targetIds: [a.id, b.id, c.id] }, 1500);
      const toAll = await send({ targetType: 'all' }, 1500);
      // c deletes the direct message before it expires: nothing to tell c about it.
      assert.equal((await t.request('DELETE', `/api/v1/messages/${direct}`, { token: c.token })).status, 200);
      await sa.waitFor((f) => f.type === 'NEW_MESSAGE' && f.data['messageId'] === toAll);
      await waitUntil(() => lastCount(sa) === 2);
      assert.equal(await restCount(a), 2);

      for (const s of [sa, sb]) {
        await waitUntil(() => expiredOf(s, direct).length > 0 && expiredOf(s, toAll).length > 0, 6000);
        await waitUntil(() => lastCount(s) === 0);
        const gone = s.frames.find(
          (f: Frame) => f.type === 'MESSAGE_DELETED' && f.data['messageId'] === direct,
        );
        assert.ok(gone?.cursor, 'durable: it carries a cursor');
      }
      assert.equal(await restCount(a), 0);
      assert.equal(await restCount(b), 0);
      assert.equal((await t.request('GET', `/api/v1/messages/${direct}`, { token: a.token })).status, 404);

      // Once each: later sweeps announce nothing again.
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(expiredOf(sa, direct).length, 1);
      assert.equal(expiredOf(sa, toAll).length, 1);
      assert.deepEqual(await expiryEvents(direct), [a.id, b.id], 'the holders, not c who deleted it');
      assert.deepEqual(await expiryEvents(toAll), [null], 'one event for everyone');
      // Announced, but its NEW_MESSAGE is still in the log: the message stays, so a replay can show it.
      assert.equal(await t.app.expiry.purgeAnnounced(), 0);
      assert.deepEqual(await rowsOf(direct), { messages: 1, inbox: 3 });
      // Once the events naming them are pruned, the rows go (with their inbox rows).
      await t.app.eventLog.prune(0);
      await t.app.expiry.purgeAnnounced();
      assert.deepEqual(await rowsOf(direct), { messages: 0, inbox: 0 });
      assert.equal((await rowsOf(toAll)).messages, 0);
      await Promise.all([sa.close(), sb.close()]);
    });

    it('tells a client that was away when it comes back with its cursor', async () => {
      const d = users[3] as U;
      const first = await connect(t.wsUrl, { token: d.token });
      const hello = await first.waitFor((f) => f.type === 'CONNECTED');
      const cursor = hello.data['cursor'] as string;
      await first.close();
      const direct = await send({ targetType: 'user', targetIds: [d.id] }, 1200);
      await waitUntil(async () => (await expiryEvents(direct)).length > 0, 6000);

      const back = await connect(t.wsUrl, { token: d.token, since: cursor });
      const types = () =>
        durable(back.frames)
          .filter((f) => f.data['messageId'] === direct)
          .map((f) => f.type);
      await waitUntil(() => types().length >= 2);
      assert.deepEqual(types(), ['NEW_MESSAGE', 'MESSAGE_DELETED'], 'replayed in order');
      // The message as it was sent (docs/PROTOCOL.md, Resume): its expiresAt now lies in the past.
      const replayed = durable(back.frames).find(
        (f) => f.type === 'NEW_MESSAGE' && f.data['messageId'] === direct,
      );
      assert.ok(Date.parse(String(replayed?.data['expiresAt'])) < Date.now(), 'shown with a past expiresAt');
      await waitUntil(() => lastCount(back) === 0);
      await back.close();
    });
  });

  describe(`${dialect}: a backlog of expired messages`, () => {
    let t: TestApp;
    let users: U[];
    before(async () => {
      // The timer stays quiet (once a minute): the announcer is driven by hand.
      t = await startApp({ dialect, env: { SKYPUSH_EXPIRY_SWEEP_MS: '60000' } });
      users = await createUsers(t, 9101, 2);
    });
    after(async () => t.close());

    it('is announced over several transactions, whole messages at a time, each once and in order', async () => {
      const [a, b] = users as [U, U];
      const ids: number[] = [];
      for (let i = 0; i < 3; i++) {
        const r = await t.request<{ messageId: number }>('POST', '/api/v1/messages/send', {
          token: t.adminToken,
          body: {
            title: `m${i}`,
            content: 'c',
            targetType: 'user',
            targetIds: [a.id, b.id],
            expiresAt: new Date(Date.now() + 200 + i * 10).toISOString(),
          },
        });
        ids.push(r.body.data.messageId);
      }
      await new Promise((r) => setTimeout(r, 1400)); // expired, and past the one-second grace
      // Two holders per message: a cap of 3 events takes two messages, then the third.
      assert.equal(await t.app.expiry.announce(200, 3), 2);
      assert.equal(await t.app.expiry.announce(200, 3), 1);
      assert.equal(await t.app.expiry.announce(200, 3), 0);
      const rows = await t.app.store.db
        .selectFrom('events')
        .select(['user_id', 'data'])
        .where('type', '=', 'MESSAGE_DELETED')
        .orderBy('seq')
        .execute();
      assert.deepEqual(
        rows.map((r) => [(JSON.parse(r.data) as { messageId: number }).messageId, Number(r.user_id)]),
        ids.flatMap((id) => [
          [id, a.id],
          [id, b.id],
        ]),
      );
    });
  });
}

describe('message retention (SKYPUSH_MESSAGE_RETENTION)', () => {
  let t: TestApp;
  let users: U[];
  before(async () => {
    t = await startApp({
      env: {
        SKYPUSH_MESSAGE_RETENTION: '2s',
        SKYPUSH_EXPIRY_SWEEP_MS: '100',
        SKYPUSH_EVENT_CLEANUP_INTERVAL_MS: '100',
      },
    });
    users = await createUsers(t, 9201, 1);
  });
  after(async () => t.close());

  it('gives every message at most that lifetime, then announces and deletes it', async () => {
    const [u] = users as [U];
    const s = await connect(t.wsUrl, { token: u.token });
    await s.waitFor((f) => f.type === 'UNREAD_COUNT');
    const send = async (extra: Record<string, unknown>) => {
      const r = await t.request<{ messageId: number }>('POST', '/api/v1/messages/send', {
        token: t.adminToken,
        body: { title: 't', content: 'c', targetType: 'user', targetIds: [u.id], ...extra },
      });
      assert.equal(r.status, 200);
      return r.body.data.messageId;
    };
    const plain = await send({});
    const longer = await send({ expiresAt: new Date(Date.now() + 3_600_000).toISOString() });
    for (const id of [plain, longer]) {
      const item = await t.request<{ createTime: string; expiresAt: string | null }>(
        'GET',
        `/api/v1/messages/${id}`,
        { token: u.token },
      );
      const lifetime = Date.parse(item.body.data.expiresAt ?? '') - Date.parse(item.body.data.createTime);
      assert.equal(lifetime, 2000, `message ${id} lives 2 s`);
    }
    await waitUntil(() => expiredOf(s, plain).length === 1 && expiredOf(s, longer).length === 1, 8000);
    await waitUntil(() => lastCount(s) === 0);
    // Deleted once the events naming them have been pruned.
    await t.app.eventLog.prune(0);
    await waitUntil(async () => {
      const r = await t.app.store.db
        .selectFrom('messages')
        .select('id')
        .where('id', 'in', [plain, longer])
        .execute();
      return r.length === 0;
    });
    await s.close();
  });
});
