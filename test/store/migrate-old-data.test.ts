/**
 * Issue #13 item 7: a database as the previous release left it (its schema: the migrations up to
 * 2026-11-30-0003; its rows: one event per target carrying the whole payload) migrates in place, and a
 * cursor minted before the migration resumes against it with no gap and no duplicate: the old rows replay
 * as they were, the new ones (by reference) after them.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Kysely } from 'kysely';
import { createPasswordHasher } from '../../src/auth/password.ts';
import { toPayload } from '../../src/messages/message.mapping.ts';
import { openStore, type Store } from '../../src/store/database.ts';
import { EXPIRY_CURSOR_KEY, migrateTo } from '../../src/store/migrate.ts';
import type { DB } from '../../src/store/schema.ts';
import {
  ADMIN_PASSWORD,
  createDatabase,
  DIALECTS,
  startApp,
  testConfig,
  type TestApp,
} from '../helpers/app.ts';
import { hubCaughtUp } from '../helpers/realtime.ts';
import { mint } from '../helpers/tokens.ts';
import { connect, type Frame } from '../helpers/ws-client.ts';

const PREVIOUS_RELEASE = '2026-11-30-0003-ticket-expiry';
const EPOCH = 'a1b2c3d4e5f6';
const U = 2;
const V = 3;

/** The rows the previous release would have written for: m1 to U and V, m2 to all, U reads m2, m3 to U. */
async function previousReleaseData(db: Kysely<DB>): Promise<{ m1: number; m2: number; m3: number }> {
  // The admin the test harness signs in as (the harness's password, hashed as the release did).
  const adminHash = await createPasswordHasher({ N: 2 ** 10, concurrency: 1 }).hash(ADMIN_PASSWORD);
  await db
    .insertInto('skypush_meta')
    .values([
      { key: 'epoch', value: EPOCH },
      { key: EXPIRY_CURSOR_KEY, value: `${Date.now()}:0` },
    ])
    .execute();
  const user = (id: number, role: 'admin' | 'user') => ({
    id,
    username: role === 'admin' ? 'admin' : `old-${id}`,
    password_hash: role === 'admin' ? adminHash : null,
    role,
    display_name: `Old ${id}`,
    disabled: 0,
    created_at: 0,
    updated_at: 0,
  });
  await db
    .insertInto('users')
    .values([user(1, 'admin'), user(U, 'user'), user(V, 'user')])
    .execute();
  const t = Date.now() - 60_000;
  const message = async (title: string, target: 'user' | 'all') => {
    const row = {
      title,
      content: `${title} content`,
      message_type: 'notice',
      priority: 1,
      sender_id: 1,
      sender_name: 'Old 1',
      link_url: null,
      target_type: target,
      created_at: t,
      expires_at: null,
    };
    const r = await db.insertInto('messages').values(row).returning('id').executeTakeFirstOrThrow();
    return { id: Number(r.id), payload: JSON.stringify(toPayload({ ...row, id: Number(r.id) })) };
  };
  const ev = (user_id: number | null, type: string, data: string) =>
    db.insertInto('events').values({ user_id, type, data, created_at: t }).execute();
  const m1 = await message('m1', 'user');
  await db
    .insertInto('inbox')
    .values([U, V].map((user_id) => ({ user_id, message_id: m1.id, read_at: null, deleted_at: null })))
    .execute();
  await ev(U, 'NEW_MESSAGE', m1.payload);
  await ev(V, 'NEW_MESSAGE', m1.payload);
  const m2 = await message('m2', 'all');
  await ev(null, 'NEW_MESSAGE', m2.payload);
  await db
    .insertInto('inbox')
    .values({ user_id: U, message_id: m2.id, read_at: t, deleted_at: null })
    .execute();
  const readAt = new Date(t).toISOString();
  await ev(U, 'MESSAGE_READ', JSON.stringify({ messageId: m2.id, messageIds: [m2.id], readAt }));
  const m3 = await message('m3', 'user');
  await db
    .insertInto('inbox')
    .values({ user_id: U, message_id: m3.id, read_at: null, deleted_at: null })
    .execute();
  await ev(U, 'NEW_MESSAGE', m3.payload);
  return { m1: m1.id, m2: m2.id, m3: m3.id };
}

/** Every replayed or live event of a socket: [seq, type, messageId]. */
function eventsOf(frames: Frame[]): Array<[number, string, number]> {
  const out: Array<[number, string, number]> = [];
  const add = (f: { type: string; data: Record<string, unknown>; cursor?: string }) =>
    out.push([Number(f.cursor?.split('.')[1]), f.type, f.data['messageId'] as number]);
  for (const f of frames) {
    if (f.type === 'MESSAGE_BATCH') for (const m of f.data['messages'] as Frame[]) add(m);
    else if (f.cursor && f.type !== 'CONNECTED' && f.type !== 'RESYNC') add(f);
  }
  return out;
}

for (const dialect of DIALECTS) {
  describe(`${dialect}: a database of the previous release`, () => {
    let t: TestApp;
    let ids: { m1: number; m2: number; m3: number };
    let cleanup: () => Promise<void>;
    before(async () => {
      const d = await createDatabase(dialect);
      cleanup = d.cleanup;
      const store: Store = openStore(testConfig(d.env).database);
      try {
        await migrateTo(store, PREVIOUS_RELEASE);
        ids = await previousReleaseData(store.db);
      } finally {
        await store.close();
      }
      // The new release starts on it: migrates in place (columns, index, counters backfilled).
      t = await startApp({ dialect, env: d.env });
    });
    after(async () => {
      await t.close();
      await cleanup();
    });

    it('resumes a cursor from before the migration: old rows as they were, new ones after, each once', async () => {
      const token = await mint(U);
      // A send after the migration: one event by reference.
      const r = await t.request<{ messageId: number }>('POST', '/api/v1/messages/send', {
        token: t.adminToken,
        body: { title: 'm4', content: 'new', targetType: 'user', targetIds: [U, V] },
      });
      assert.equal(r.status, 200);
      const m4 = r.body.data.messageId;
      // The node has dispatched it: the resume below replays it (none of it arrives live).
      await hubCaughtUp(t);
      // The cursor U's client held at the first old event (seq 1).
      const s = await connect(t.wsUrl, { token, since: `${EPOCH}.1` });
      await s.waitFor((f) => f.type === 'UNREAD_COUNT');
      const connected = s.frames[0] as Frame;
      assert.deepEqual(connected.data['resume'], { requested: true, ok: true, replayed: 4 });
      assert.deepEqual(
        eventsOf(s.frames).map(([, type, id]) => [type, id]),
        [
          ['NEW_MESSAGE', ids.m2],
          ['MESSAGE_READ', ids.m2],
          ['NEW_MESSAGE', ids.m3],
          ['NEW_MESSAGE', m4],
        ],
        "U's events after seq 1, not V's, each once, in order",
      );
      const seqs = eventsOf(s.frames).map(([seq]) => seq);
      assert.deepEqual(
        seqs,
        [...seqs].sort((a, b) => a - b),
      );
      const batch = s.frames.find((f) => f.type === 'MESSAGE_BATCH') as Frame;
      const inner = batch.data['messages'] as Frame[];
      assert.equal(inner[0]?.data['title'], 'm2', 'an old row replays its stored payload');
      assert.equal(inner[3]?.data['title'], 'm4', 'a new row is built from its message');
      assert.equal(inner[3]?.data['content'], 'new');
      // Counters backfilled: the pushed count equals the inbox (m1, m3, m4 unread; m2 read).
      const count = s.frames.filter((f) => f.type === 'UNREAD_COUNT').at(-1)?.data['count'];
      const rest = await t.request<{ count: number }>('GET', '/api/v1/messages/unread-count', { token });
      assert.equal(rest.body.data.count, 3);
      assert.equal(count, 3);
      await s.close();
    });
  });
}
