import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { InboxItem, Page as ApiPage } from '../../src/api-types.ts';
import { DIALECTS, startApp, type TestApp } from '../helpers/app.ts';
import { rowCounts } from '../helpers/store.ts';

type Item = InboxItem;
type Page = ApiPage<InboxItem>;
interface SendData {
  messageId: number;
  targetType: string;
  recipients: number;
}

const SEND = '/api/v1/messages/send';

for (const dialect of DIALECTS) {
  describe(`${dialect}: sending and reading messages`, () => {
    let t: TestApp;
    /** Added to the app's clock, to let send-to-all messages expire. */
    let skewMs = 0;
    let ann: { id: number; token: string };
    let ben: { id: number; token: string };
    let cat: { id: number; token: string };

    before(async () => {
      // The expiry announcer stays out of these tests: a tick while the clock is skewed would announce
      // (write events for) a message while a later test compares row counts. test/realtime/expiry.test.ts
      // covers it.
      t = await startApp({
        dialect,
        now: () => Date.now() + skewMs,
        env: { SKYPUSH_EXPIRY_SWEEP_MS: '60000' },
      });
      ann = await t.createUser('ann', { id: 1001 });
      ben = await t.createUser('ben', { id: 1002 });
      cat = await t.createUser('cat', { id: 1003 });
    });
    after(async () => t.close());

    const send = (token: string, body: Record<string, unknown>, headers: Record<string, string> = {}) =>
      t.request<SendData>('POST', SEND, { token, body: { content: 'body', ...body }, headers });
    const unread = async (token: string) => {
      const r = await t.request<{ count: number }>('GET', '/api/v1/messages/unread-count', { token });
      assert.equal(r.status, 200);
      return r.body.data.count;
    };
    const inbox = async (token: string, query = '') => {
      const r = await t.request<Page>('GET', `/api/v1/messages${query}`, { token });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      return r.body.data;
    };
    /** Every item of the inbox, following cursors. */
    const allItems = async (token: string, query = '') => {
      const out: Item[] = [];
      let cursor: string | null = null;
      do {
        const sep = query ? '&' : '?';
        const page: Page = await inbox(token, cursor === null ? query : `${query}${sep}cursor=${cursor}`);
        out.push(...page.items);
        cursor = page.nextCursor;
      } while (cursor !== null);
      return out;
    };
    /** The unread count must equal what the inbox lists as unread. */
    const assertUnread = async (token: string, expected: number) => {
      assert.equal(await unread(token), expected, 'unread-count');
      assert.equal((await allItems(token, '?status=unread&limit=100')).length, expected, 'inbox unread');
    };

    it('lets any user send to listed users, storing one inbox row per target', async () => {
      const before = await rowCounts(t.app.store.db);
      const r = await send(ann.token, {
        title: 'Hello',
        targetType: 'user',
        targetIds: [ben.id, cat.id, ben.id],
        linkUrl: '/tasks/1',
        messageType: 'task',
        priority: 3,
      });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(r.body.code, 0);
      assert.equal(r.body.data.targetType, 'user');
      assert.equal(r.body.data.recipients, 2);
      const after = await rowCounts(t.app.store.db);
      assert.equal(after.messages, before.messages + 1);
      assert.equal(after.inbox, before.inbox + 2);
      assert.equal(after.events, before.events + 1, 'one event row for all the targets (by reference)');

      const item = (await inbox(ben.token)).items.find((i) => i.id === r.body.data.messageId);
      assert.ok(item);
      assert.equal(item.messageId, item.id);
      assert.equal(item.title, 'Hello');
      assert.equal(item.content, 'body');
      assert.equal(item.messageType, 'task');
      assert.equal(item.priority, 3);
      assert.equal(item.senderId, ann.id);
      assert.equal(item.senderName, 'ann');
      assert.equal(item.linkUrl, '/tasks/1');
      assert.equal(item.targetType, 'user');
      assert.ok(!Number.isNaN(Date.parse(item.createTime)));
      assert.equal(item.isRead, false);
      assert.equal(item.readAt, null);
      // The sender is not a recipient.
      assert.equal((await inbox(ann.token)).items.length, 0);
    });

    it('stores a send-to-all message once and shows it to every user, including users created later', async () => {
      const before = await rowCounts(t.app.store.db);
      const r = await send(t.adminToken, { title: 'To everyone', targetType: 'all' });
      assert.equal(r.status, 200);
      assert.equal(r.body.data.targetType, 'all');
      const after = await rowCounts(t.app.store.db);
      assert.equal(after.messages, before.messages + 1);
      assert.equal(after.inbox, before.inbox, 'no per-user rows at send time');
      assert.equal(after.events, before.events + 1, 'one event row for everyone, not one per user');
      const late = await t.createUser('late', { id: 1099 });
      for (const u of [ann, ben, cat, late]) {
        const items = await inbox(u.token);
        assert.ok(
          items.items.some((i) => i.id === r.body.data.messageId && i.targetType === 'all'),
          `user ${u.id}`,
        );
      }
    });

    it('keeps the unread count exact through send, read, read-all and delete, for direct and send-to-all messages', async () => {
      const u = await t.createUser('counter', { id: 1100 });
      const other = await t.createUser('bystander', { id: 1101 });
      const base = await unread(u.token);
      const otherBase = await unread(other.token);
      await assertUnread(u.token, base);
      const d1 = (await send(ann.token, { title: 'd1', targetType: 'user', targetIds: [u.id] })).body.data;
      const d2 = (await send(ann.token, { title: 'd2', targetType: 'user', targetIds: [u.id] })).body.data;
      const a1 = (await send(t.adminToken, { title: 'a1', targetType: 'all' })).body.data;
      const a2 = (await send(t.adminToken, { title: 'a2', targetType: 'all' })).body.data;
      await assertUnread(u.token, base + 4);
      await assertUnread(other.token, otherBase + 2);

      const read = async (id: number) =>
        t.request<{ messageId: number; readAt: string }>('PUT', `/api/v1/messages/${id}/read`, {
          token: u.token,
        });
      assert.equal((await read(d1.messageId)).status, 200);
      await assertUnread(u.token, base + 3);
      const first = await read(a1.messageId);
      assert.equal(first.status, 200);
      await assertUnread(u.token, base + 2);
      // Reading again changes nothing and keeps the first read time.
      const again = await read(a1.messageId);
      assert.equal(again.body.data.readAt, first.body.data.readAt);
      await assertUnread(u.token, base + 2);
      // One user's reads of a send-to-all message are theirs alone.
      await assertUnread(other.token, otherBase + 2);

      const del = (id: number) => t.request('DELETE', `/api/v1/messages/${id}`, { token: u.token });
      assert.equal((await del(d2.messageId)).status, 200); // unread direct
      await assertUnread(u.token, base + 1);
      assert.equal((await del(a1.messageId)).status, 200); // read send-to-all
      await assertUnread(u.token, base + 1);
      assert.equal((await del(a2.messageId)).status, 200); // unread send-to-all
      await assertUnread(u.token, base);
      await assertUnread(other.token, otherBase + 2);
      // A deleted message is gone for that user only.
      const ids = (await allItems(u.token)).map((i) => i.id);
      for (const gone of [d2.messageId, a1.messageId, a2.messageId]) assert.ok(!ids.includes(gone));
      assert.ok(ids.includes(d1.messageId));

      await send(ann.token, { title: 'd3', targetType: 'user', targetIds: [u.id] });
      await send(t.adminToken, { title: 'a3', targetType: 'all' });
      assert.ok((await unread(u.token)) >= 2);
      const all = await t.request<{ count: number }>('PUT', '/api/v1/messages/read-all', { token: u.token });
      assert.equal(all.status, 200);
      assert.ok(all.body.data.count >= 2);
      await assertUnread(u.token, 0);
      const twice = await t.request<{ count: number }>('PUT', '/api/v1/messages/read-all', {
        token: u.token,
      });
      assert.equal(twice.body.data.count, 0);
      await assertUnread(u.token, 0);
      assert.ok((await unread(other.token)) > 0, "read-all leaves other users' counts alone");
    });

    it('pages the inbox newest first with a cursor, without gaps or repeats', async () => {
      const u = await t.createUser('pager', { id: 1200 });
      const sent: number[] = [];
      for (let i = 0; i < 7; i++) {
        const r =
          i % 3 === 0
            ? await send(t.adminToken, { title: `p${i}`, targetType: 'all' })
            : await send(ann.token, { title: `p${i}`, targetType: 'user', targetIds: [u.id] });
        sent.push(r.body.data.messageId);
      }
      const everything = await allItems(u.token, '?limit=100');
      const pages: Page[] = [];
      let cursor: string | null = null;
      do {
        const page: Page = await inbox(u.token, cursor === null ? '?limit=3' : `?limit=3&cursor=${cursor}`);
        assert.ok(page.items.length <= 3);
        pages.push(page);
        cursor = page.nextCursor;
      } while (cursor !== null);
      const paged = pages.flatMap((p) => p.items.map((i) => i.id));
      assert.deepEqual(
        paged,
        everything.map((i) => i.id),
      );
      assert.deepEqual(
        paged,
        [...paged].sort((a, b) => b - a),
      );
      assert.equal(new Set(paged).size, paged.length);
      for (const id of sent) assert.ok(paged.includes(id));
      assert.ok(pages.length >= 3);
    });

    it('clamps the page size to 1..100', async () => {
      const u = await t.createUser('clamp', { id: 1250 });
      // More than a page of direct messages, written in one statement each (150 sends would be slow).
      const { db } = t.app.store;
      const rows = Array.from({ length: 150 }, (_, i) => ({
        title: `bulk${i}`,
        content: 'c',
        message_type: 'notice',
        priority: 0,
        sender_id: ann.id,
        sender_name: 'ann',
        link_url: null,
        target_type: 'user' as const,
        created_at: Date.now(),
        expires_at: null,
      }));
      const ids = await db.insertInto('messages').values(rows).returning('id').execute();
      await db
        .insertInto('inbox')
        .values(ids.map((r) => ({ user_id: u.id, message_id: r.id, read_at: null, deleted_at: null })))
        .execute();
      const total = (await allItems(u.token, '?limit=100')).length;
      assert.ok(total >= 150, `inbox holds ${total}`);
      const one = await inbox(u.token, '?limit=0');
      assert.equal(one.items.length, 1);
      assert.notEqual(one.nextCursor, null);
      const big = await inbox(u.token, '?limit=9999');
      assert.equal(big.items.length, 100);
      assert.notEqual(big.nextCursor, null);
    });

    it('filters the inbox by status and by messageType', async () => {
      const u = await t.createUser('filter', { id: 1300 });
      const a = await send(ann.token, {
        title: 'f-a',
        targetType: 'user',
        targetIds: [u.id],
        messageType: 'alert',
      });
      const b = await send(ann.token, {
        title: 'f-b',
        targetType: 'user',
        targetIds: [u.id],
        messageType: 'task',
      });
      const c = await send(t.adminToken, { title: 'f-c', targetType: 'all', messageType: 'alert' });
      await t.request('PUT', `/api/v1/messages/${a.body.data.messageId}/read`, { token: u.token });
      await t.request('PUT', `/api/v1/messages/${c.body.data.messageId}/read`, { token: u.token });
      const mine = [a, b, c].map((r) => r.body.data.messageId);
      const ids = async (q: string) =>
        (await allItems(u.token, q)).map((i) => i.id).filter((id) => mine.includes(id));

      assert.deepEqual(await ids('?status=read'), [c.body.data.messageId, a.body.data.messageId]);
      assert.deepEqual(await ids('?status=unread'), [b.body.data.messageId]);
      assert.deepEqual(await ids('?status=all'), [...mine].reverse());
      assert.deepEqual(await ids('?messageType=alert'), [c.body.data.messageId, a.body.data.messageId]);
      assert.deepEqual(await ids('?messageType=alert&status=unread'), []);
      for (const i of await allItems(u.token, '?status=read')) {
        assert.equal(i.isRead, true);
        assert.ok(i.readAt !== null && !Number.isNaN(Date.parse(i.readAt)));
      }
    });

    it('rejects a bad cursor with 400 40004 and an unknown status with 400', async () => {
      for (const cursor of ['garbage', 'bTEyYQ', '!!!!', Buffer.from('m-5').toString('base64url')]) {
        const r = await t.request('GET', `/api/v1/messages?cursor=${encodeURIComponent(cursor)}`, {
          token: ben.token,
        });
        assert.equal(r.status, 400, cursor);
        assert.equal(r.body.code, 40004, cursor);
      }
      const status = await t.request('GET', '/api/v1/messages?status=starred', { token: ben.token });
      assert.equal(status.status, 400);
      assert.equal(status.body.code, 40001);
    });

    it("answers another user's message and a missing one with the identical 404, for get, read and delete", async () => {
      const r = await send(ann.token, { title: 'private', targetType: 'user', targetIds: [ben.id] });
      const id = r.body.data.messageId;
      const missing = 987_654_321;
      const before = await rowCounts(t.app.store.db);
      for (const [method, suffix] of [
        ['GET', ''],
        ['PUT', '/read'],
        ['DELETE', ''],
      ] as const) {
        const theirs = await t.request(method, `/api/v1/messages/${id}${suffix}`, { token: cat.token });
        const none = await t.request(method, `/api/v1/messages/${missing}${suffix}`, { token: cat.token });
        assert.equal(theirs.status, 404, `${method} theirs`);
        assert.deepEqual(theirs.body, none.body, method);
        assert.equal(theirs.body.code, 404);
      }
      assert.deepEqual(await rowCounts(t.app.store.db), before);
      // The owner sees it; after deleting it, the owner gets the same 404.
      assert.equal((await t.request('GET', `/api/v1/messages/${id}`, { token: ben.token })).status, 200);
      await t.request('DELETE', `/api/v1/messages/${id}`, { token: ben.token });
      const gone = await t.request('GET', `/api/v1/messages/${id}`, { token: ben.token });
      assert.equal(gone.status, 404);
      assert.deepEqual(
        gone.body,
        (await t.request('GET', `/api/v1/messages/${missing}`, { token: cat.token })).body,
      );
    });

    it('hides a send-to-all message from everyone once its expiresAt passes, and counts it until announced', async () => {
      const u = await t.createUser('expiry', { id: 1400 });
      const base = await unread(u.token);
      const expiresAt = new Date(Date.now() + 3_600_000).toISOString();
      const r = await send(t.adminToken, { title: 'until later', targetType: 'all', expiresAt });
      assert.equal(r.status, 200);
      const id = r.body.data.messageId;
      assert.equal(await unread(u.token), base + 1);
      assert.equal((await inbox(u.token)).items[0]?.expiresAt, expiresAt);
      skewMs = 2 * 3_600_000;
      try {
        assert.ok(!(await allItems(u.token)).some((i) => i.id === id));
        assert.equal((await t.request('GET', `/api/v1/messages/${id}`, { token: u.token })).status, 404);
        // The count follows the announcement (decision 0014), which the timer may already have made.
        await t.app.expiry.announce();
        assert.equal(await unread(u.token), base);
      } finally {
        skewMs = 0;
      }
    });

    it('rejects an expiresAt in the past with 400 and stores nothing', async () => {
      const before = await rowCounts(t.app.store.db);
      const r = await send(t.adminToken, {
        title: 'stale',
        targetType: 'all',
        expiresAt: new Date(Date.now() - 1000).toISOString(),
      });
      assert.equal(r.status, 400);
      assert.equal(r.body.code, 40001);
      assert.deepEqual(await rowCounts(t.app.store.db), before);
    });
  });

  describe(`${dialect}: Idempotency-Key`, () => {
    let t: TestApp;
    let skewMs = 0;
    let ann: { id: number; token: string };
    let ben: { id: number; token: string };
    before(async () => {
      // Tokens outlive the 24 h the clock is moved forward by.
      t = await startApp({
        dialect,
        now: () => Date.now() + skewMs,
        patch: (c) => ({ ...c, auth: { ...c.auth, tokenTtlSec: 7 * 86_400 } }),
      });
      ann = await t.createUser('ann', { id: 1001 });
      ben = await t.createUser('ben', { id: 1002 });
    });
    after(async () => t.close());

    const send = (token: string, key: string, body: Record<string, unknown>) =>
      t.request<SendData>('POST', SEND, { token, body, headers: { 'idempotency-key': key } });
    const body = { title: 'once', content: 'only once', targetType: 'user', targetIds: [1002] };

    it('returns the first result for a retry with the same key and body, storing one message', async () => {
      const before = await rowCounts(t.app.store.db);
      const first = await send(ann.token, 'key-1', body);
      assert.equal(first.status, 200);
      // Same body with its keys in another order is the same request.
      const reordered = { targetIds: [1002], targetType: 'user', content: 'only once', title: 'once' };
      const second = await send(ann.token, 'key-1', reordered);
      assert.equal(second.status, 200);
      assert.deepEqual(second.body, first.body);
      const after = await rowCounts(t.app.store.db);
      assert.equal(after.messages, before.messages + 1);
      assert.equal(after.inbox, before.inbox + 1);
      const unread = await t.request<{ count: number }>('GET', '/api/v1/messages/unread-count', {
        token: ben.token,
      });
      assert.equal(unread.body.data.count, 1);
    });

    it('answers the same key with a different body with 409 40903 and stores nothing', async () => {
      const before = await rowCounts(t.app.store.db);
      const r = await send(ann.token, 'key-1', { ...body, content: 'something else' });
      assert.equal(r.status, 409);
      assert.equal(r.body.code, 40903);
      assert.deepEqual(await rowCounts(t.app.store.db), before);
    });

    it("keeps keys per sender: another sender's same key is a new message", async () => {
      const a = await send(ann.token, 'shared-key', body);
      const b = await send(t.adminToken, 'shared-key', body);
      assert.equal(a.status, 200);
      assert.equal(b.status, 200);
      assert.notEqual(a.body.data.messageId, b.body.data.messageId);
    });

    it('stores one message when two requests with the same key race', async () => {
      const before = await rowCounts(t.app.store.db);
      const results = await Promise.all(
        Array.from({ length: 5 }, () => send(ann.token, 'race-key', { ...body, title: 'race' })),
      );
      for (const r of results) assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(new Set(results.map((r) => r.body.data.messageId)).size, 1);
      assert.equal((await rowCounts(t.app.store.db)).messages, before.messages + 1);
    });

    it('forgets a key after 24 hours: the same key then sends a new message', async () => {
      const first = await send(ann.token, 'day-key', body);
      assert.equal(first.status, 200);
      skewMs = 25 * 3_600_000;
      try {
        const later = await send(ann.token, 'day-key', body);
        assert.equal(later.status, 200, JSON.stringify(later.body));
        assert.notEqual(later.body.data.messageId, first.body.data.messageId);
        const again = await send(ann.token, 'day-key', body);
        assert.deepEqual(again.body, later.body, 'and the new use is remembered in turn');
      } finally {
        skewMs = 0;
      }
    });

    it('does not remember a key whose request failed', async () => {
      const bad = await send(ann.token, 'key-after-failure', { ...body, targetIds: [424242] });
      assert.equal(bad.status, 400);
      const good = await send(ann.token, 'key-after-failure', body);
      assert.equal(good.status, 200);
    });
  });
}
