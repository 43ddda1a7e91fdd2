/**
 * The unread-counters migration on a database as the previous release left it: users, direct and
 * send-to-all messages, inbox rows in every state (and expired messages on both sides of the expiry
 * announcer's position), with more users than one backfill batch. After migrating to the latest schema
 * every user's counter equals the full recount, and the app's counts read them.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Kysely } from 'kysely';
import { unreadCounts } from '../../src/messages/counters.repository.ts';
import { openStore, type Store } from '../../src/store/database.ts';
import { migrateTo, migrateToLatest } from '../../src/store/migrate.ts';
import { BACKFILL_BATCH } from '../../src/store/migrations/2026-11-30-0005-unread-counters.ts';
import { DIALECTS, createPgDatabase } from '../helpers/app.ts';
import { announcedLive, recount, snapshot } from '../messages/unread-recount.ts';

/** The last migration of the release before the counters. */
const PREVIOUS = '2026-11-30-0003-ticket-expiry';
const USERS = BACKFILL_BATCH * 2 + 37;

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the old schema, not today's types
type OldDB = Kysely<any>;

async function openFresh(dialect: string): Promise<{ store: Store; cleanup: () => Promise<void> }> {
  const base = { poolSize: 2, statementTimeoutMs: 5000, connectTimeoutMs: 5000 };
  if (dialect === 'postgres') {
    const d = await createPgDatabase();
    const store = openStore({ ...base, kind: 'postgres', url: d.url });
    return { store, cleanup: async () => (await store.close(), await d.drop()) };
  }
  const dir = mkdtempSync(join(tmpdir(), 'skypush-counters-'));
  const path = join(dir, 'db.sqlite');
  const store = openStore({ ...base, kind: 'sqlite', url: `sqlite:${path}`, sqlitePath: path });
  return { store, cleanup: async () => (await store.close(), rmSync(dir, { recursive: true, force: true })) };
}

/**
 * What the previous release stored: the expiry position at `at`, users 1..USERS, and messages. Returns
 * the ids of the messages, by what they are.
 */
async function fillOldShape(db: OldDB, at: number) {
  await db
    .insertInto('skypush_meta')
    .values({ key: 'expiry_announced_through', value: `${at}:0` })
    .execute();
  for (let i = 1; i <= USERS; i += 500) {
    const rows = [];
    for (let id = i; id < Math.min(i + 500, USERS + 1); id++)
      rows.push({
        id,
        username: `u${id}`,
        role: 'user',
        display_name: `U${id}`,
        disabled: 0,
        created_at: 0,
        updated_at: 0,
      });
    await db.insertInto('users').values(rows).execute();
  }
  const message = async (target: 'user' | 'all', expiresAt: number | null): Promise<number> => {
    const r = await db
      .insertInto('messages')
      .values({
        title: 't',
        content: 'c',
        message_type: 'notice',
        priority: 1,
        sender_id: 1,
        sender_name: 'admin',
        link_url: null,
        target_type: target,
        created_at: at - 10_000,
        expires_at: expiresAt,
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    return Number(r.id);
  };
  const ids = {
    direct: await message('user', null),
    directLater: await message('user', at + 3_600_000),
    directAnnounced: await message('user', at - 5000),
    all: await message('all', null),
    allLater: await message('all', at + 3_600_000),
    allAnnounced: await message('all', at - 5000),
  };
  const state = async (user: number, msg: number, s: 'unread' | 'read' | 'deleted' | 'both') =>
    db
      .insertInto('inbox')
      .values({
        user_id: user,
        message_id: msg,
        read_at: s === 'read' || s === 'both' ? at - 1 : null,
        deleted_at: s === 'deleted' || s === 'both' ? at - 1 : null,
      })
      .execute();
  // Direct messages: a row per target, in every state; send-to-all: rows only where read or deleted.
  const states = ['unread', 'read', 'deleted', 'both'] as const;
  for (let u = 1; u <= 40; u++) {
    await state(u, ids.direct, states[u % 4] as (typeof states)[number]);
    if (u % 3 === 0) await state(u, ids.directLater, 'unread');
    if (u % 5 === 0) await state(u, ids.directAnnounced, 'unread');
    if (u % 2 === 0) await state(u, ids.all, u % 4 === 0 ? 'read' : 'deleted');
    if (u % 7 === 0) await state(u, ids.allLater, 'both');
    if (u % 6 === 0) await state(u, ids.allAnnounced, 'read');
  }
  // Users in the second and third batches hold some too.
  for (const u of [BACKFILL_BATCH + 1, USERS]) {
    await state(u, ids.direct, 'unread');
    await state(u, ids.all, 'read');
  }
  return ids;
}

for (const dialect of DIALECTS) {
  describe(`${dialect}: migrating to unread counters`, () => {
    let store: Store;
    let cleanup: () => Promise<void>;
    before(async () => {
      ({ store, cleanup } = await openFresh(dialect));
    });
    after(async () => cleanup());

    it('backfills every user with the recount, announced expiries excluded', async () => {
      await migrateTo(store, PREVIOUS);
      const tables = (await store.db.introspection.getTables()).map((t) => t.name);
      assert.ok(!tables.includes('unread_counters'), 'built at the previous schema');
      const at = Date.now() - 60_000;
      await fillOldShape(store.db, at);

      assert.ok((await migrateToLatest(store)).includes('2026-11-30-0005-unread-counters'));
      const s = await snapshot(store.db, store.dialect);
      const exact = recount(s, announcedLive(s));
      assert.equal(s.counters.size, USERS, 'a row for every user');
      assert.equal(s.liveAll, 2, 'the two send-to-all messages not announced');
      assert.equal(exact.liveAll, 2);
      for (const u of s.users) {
        const want = exact.perUser.get(u);
        assert.deepEqual(
          s.counters.get(u),
          { unreadDirect: want?.unreadDirect, seenAll: want?.seenAll },
          `user ${u}`,
        );
      }
      // A few by hand, so that the recount is checked too.
      const counts = await unreadCounts(store.db, store.dialect, [
        1,
        3,
        4,
        12,
        14,
        15,
        BACKFILL_BATCH + 1,
        USERS,
        USERS - 1,
      ]);
      assert.deepEqual(
        [...counts],
        [
          // 1: direct read → the 2 live send-to-all.
          [1, 2],
          // 3: direct read and deleted, directLater unread → 1 + 2.
          [3, 3],
          // 4: direct unread, all read → 1 + 2 - 1.
          [4, 2],
          // 12: direct and directLater unread, all read, allAnnounced read (not live) → 2 + 2 - 1.
          [12, 3],
          // 14: direct deleted, all deleted, allLater read and deleted → 0 + 2 - 2.
          [14, 0],
          // 15: direct read and deleted, directLater unread, directAnnounced unread (not live) → 1 + 2.
          [15, 3],
          // Later batches: direct unread, all read → 1 + 2 - 1; nothing → 2.
          [BACKFILL_BATCH + 1, 2],
          [USERS, 2],
          [USERS - 1, 2],
        ],
      );
    });

    it('is a no-op to migrate again', async () => {
      assert.deepEqual(await migrateToLatest(store), []);
    });
  });
}
