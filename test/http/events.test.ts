import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import type { BusMessage } from '../../src/bus/bus.ts';
import { DIALECTS, startApp, type TestApp } from '../helpers/app.ts';
import { createRecordingBus, rowCounts, type RecordingBus } from '../helpers/store.ts';

const SEND = '/api/v1/messages/send';

/** Resolves with `work`'s result, or with 'blocked' when it has not finished after `ms`. */
function within<T>(work: Promise<T>, ms: number): Promise<T | 'blocked'> {
  return Promise.race([work, new Promise<'blocked'>((r) => setTimeout(() => r('blocked'), ms).unref())]);
}

const eventPublishes = (bus: RecordingBus) => bus.published.filter((p) => p.msg.type === 'events');

for (const dialect of DIALECTS) {
  describe(`${dialect}: events are published only after commit`, () => {
    let t: TestApp;
    let bus: RecordingBus;
    let user: { id: number; token: string };

    before(async () => {
      bus = createRecordingBus();
      t = await startApp({ dialect, bus });
      user = await t.createUser('watcher', { id: 42 });
      // At each publish, read the row counts from outside the publishing request: if the publish came
      // before the commit, PostgreSQL would not show the rows yet and SQLite would block (one writer).
      bus.observe = (msg: BusMessage) =>
        msg.type === 'events' ? within(rowCounts(t.app.store.db), 2000) : Promise.resolve(undefined);
    });
    after(async () => t.close());

    it('publishes exactly once for a send, after its rows are visible to other connections', async () => {
      const before = await rowCounts(t.app.store.db);
      bus.published.length = 0;
      const r = await t.request<{ messageId: number }>('POST', SEND, {
        token: t.adminToken,
        body: { title: 'after commit', content: 'c', targetType: 'user', targetIds: [42] },
      });
      assert.equal(r.status, 200);
      const pubs = eventPublishes(bus);
      assert.equal(pubs.length, 1);
      const seen = pubs[0]?.observed;
      assert.notEqual(seen, 'blocked', 'the publish happened while the transaction held the database');
      assert.deepEqual(seen, {
        ...before,
        messages: before.messages + 1,
        inbox: before.inbox + 1,
        events: before.events + 1,
      });
      const head = await t.app.store.db
        .selectFrom('events')
        .select((eb) => eb.fn.max('seq').as('m'))
        .executeTakeFirstOrThrow();
      assert.deepEqual(pubs[0]?.msg, { type: 'events', origin: t.config.nodeId, head: Number(head.m) });
    });

    it('publishes once for each read, delete and read-all that changes something, and not for no-ops', async () => {
      const sent = await t.request<{ messageId: number }>('POST', SEND, {
        token: t.adminToken,
        body: { title: 'state', content: 'c', targetType: 'user', targetIds: [42] },
      });
      const id = sent.body.data.messageId;
      // Left unread, so the first read-all below changes something.
      await t.request('POST', SEND, {
        token: t.adminToken,
        body: { title: 'unread', content: 'c', targetType: 'user', targetIds: [42] },
      });
      bus.published.length = 0;
      await t.request('PUT', `/api/v1/messages/${id}/read`, { token: user.token });
      assert.equal(eventPublishes(bus).length, 1);
      await t.request('PUT', `/api/v1/messages/${id}/read`, { token: user.token });
      assert.equal(eventPublishes(bus).length, 1, 'reading a read message publishes nothing');
      await t.request('DELETE', `/api/v1/messages/${id}`, { token: user.token });
      assert.equal(eventPublishes(bus).length, 2);
      const first = await t.request<{ count: number }>('PUT', '/api/v1/messages/read-all', {
        token: user.token,
      });
      assert.ok(first.body.data.count > 0, 'the first read-all marks something read');
      assert.equal(eventPublishes(bus).length, 3);
      const second = await t.request<{ count: number }>('PUT', '/api/v1/messages/read-all', {
        token: user.token,
      });
      assert.equal(second.body.data.count, 0);
      assert.equal(eventPublishes(bus).length, 3, 'a read-all with nothing unread publishes nothing');
      for (const p of eventPublishes(bus)) assert.notEqual(p.observed, 'blocked');
    });

    it('publishes nothing and stores nothing when the send is refused inside its transaction', async () => {
      const before = await rowCounts(t.app.store.db);
      bus.published.length = 0;
      const r = await t.request('POST', SEND, {
        token: t.adminToken,
        body: { title: 'nope', content: 'c', targetType: 'user', targetIds: [42, 4242] },
      });
      assert.equal(r.status, 400);
      assert.equal(r.body.code, 40003);
      assert.deepEqual(bus.published, []);
      assert.deepEqual(await rowCounts(t.app.store.db), before);
    });

    it('rolls back every row and publishes nothing when the transaction fails after writing', async () => {
      // Make the last statement of the send (appending its events) fail, after the message and inbox
      // rows were written in the same transaction.
      if (dialect === 'postgres') {
        await sql`create function skypush_test_fail() returns trigger language plpgsql as $$ begin raise exception 'injected failure'; end $$`.execute(
          t.app.store.db,
        );
        await sql`create trigger skypush_test_fail before insert on events for each row execute function skypush_test_fail()`.execute(
          t.app.store.db,
        );
      } else {
        await sql`create trigger skypush_test_fail before insert on events begin select raise(abort, 'injected failure'); end`.execute(
          t.app.store.db,
        );
      }
      try {
        const before = await rowCounts(t.app.store.db);
        bus.published.length = 0;
        const r = await t.request('POST', SEND, {
          token: t.adminToken,
          body: { title: 'doomed', content: 'c', targetType: 'user', targetIds: [42] },
        });
        assert.equal(r.status, 500);
        assert.deepEqual(r.body, { code: 500, message: 'internal server error', data: null });
        assert.deepEqual(bus.published, []);
        assert.deepEqual(await rowCounts(t.app.store.db), before);
        const all = await t.request('POST', SEND, {
          token: t.adminToken,
          body: { title: 'doomed too', content: 'c', targetType: 'all' },
        });
        assert.equal(all.status, 500);
        assert.deepEqual(bus.published, []);
        assert.deepEqual(await rowCounts(t.app.store.db), before);
      } finally {
        await sql`drop trigger skypush_test_fail${sql.raw(dialect === 'postgres' ? ' on events' : '')}`.execute(
          t.app.store.db,
        );
      }
      const ok = await t.request('POST', SEND, {
        token: t.adminToken,
        body: { title: 'healthy again', content: 'c', targetType: 'user', targetIds: [42] },
      });
      assert.equal(ok.status, 200);
      assert.equal(eventPublishes(bus).length, 1);
    });

    it('publishes a user-disabled message after the change is committed', async () => {
      await t.createUser('to-disable', { id: 43 });
      bus.published.length = 0;
      bus.observe = async (msg) =>
        msg.type === 'user-disabled'
          ? within(
              t.app.store.db.selectFrom('users').select('disabled').where('id', '=', 43).executeTakeFirst(),
              2000,
            )
          : undefined;
      const r = await t.request('PATCH', '/api/v1/users/43', {
        token: t.adminToken,
        body: { disabled: true },
      });
      assert.equal(r.status, 200);
      const pubs = bus.published.filter((p) => p.msg.type === 'user-disabled');
      assert.equal(pubs.length, 1);
      assert.deepEqual(pubs[0]?.observed, { disabled: 1 });
    });
  });
}
