/**
 * Unread counters (src/messages/counters.repository.ts) on both dialects, case by case: the statements a
 * count and a wide send cost, a node whose clock lags the expiry announcer (a send passed over by it, a
 * read or delete after the announcement), concurrent changes by one user, and on PostgreSQL the lock
 * order that keeps an announcement and a read from counting one message twice, and wide overlapping
 * sends free of deadlocks. The property test (unread-counters.property.test.ts) covers random mixes.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { sql, type KyselyPlugin, type QueryResult, type RootOperationNode, type UnknownRow } from 'kysely';
import pg from 'pg';
import type { SendInput } from '../../src/api-types.ts';
import type { Principal } from '../../src/auth/auth.service.ts';
import { createMemoryBus } from '../../src/bus/memory-bus.ts';
import { Errors, isAppError } from '../../src/errors.ts';
import { unreadCounts } from '../../src/messages/counters.repository.ts';
import { createEventLogWriter } from '../../src/messages/event-log-writer.ts';
import { createExpiryAnnouncer, EXPIRY_GRACE_MS } from '../../src/messages/expiry.ts';
import { createIdempotency } from '../../src/messages/idempotency.ts';
import { createInboxService, type InboxService } from '../../src/messages/inbox.service.ts';
import { openStore, type Store } from '../../src/store/database.ts';
import { migrateToLatest } from '../../src/store/migrate.ts';
import { upsertUsers } from '../../src/users/user.repository.ts';
import { DIALECTS, createPgDatabase } from '../helpers/app.ts';
import { announcedLive, recount, snapshot } from './unread-recount.ts';

const LIMITS = {
  maxTargets: 10_000,
  wideSendTargets: 1_000,
  wideSendConcurrency: 1,
  maxMessageBytes: 4096,
  maxSendBytes: 10_000_000,
  retentionSec: undefined,
};
const ADMIN: Principal = { userId: 1, role: 'admin', username: 'admin', displayName: 'Admin', exp: 0 };

/** The messages parts on a fresh database, with an inbox whose clock can be held behind the others'. */
async function openParts(dialect: string) {
  const base = { poolSize: 8, statementTimeoutMs: 10_000, connectTimeoutMs: 5000 };
  const pgDb = dialect === 'postgres' ? await createPgDatabase() : undefined;
  const store: Store = pgDb
    ? openStore({ ...base, kind: 'postgres', url: pgDb.url })
    : openStore({ ...base, kind: 'sqlite', url: 'sqlite::memory:', sqlitePath: ':memory:' });
  await migrateToLatest(store);
  const { db } = store;
  const clock = { t: Date.now() + 60_000, lag: 0 };
  const now = () => clock.t;
  const inboxFor = (at: () => number): InboxService => {
    const commit = createEventLogWriter({
      db,
      dialect: store.dialect,
      bus: createMemoryBus(),
      nodeId: 'n',
      now: at,
    });
    const idempotency = createIdempotency({ db, ttlSec: 60, now: at });
    return createInboxService({ db, dialect: store.dialect, commit, idempotency, limits: LIMITS, now: at });
  };
  const inbox = inboxFor(now);
  /** A node whose clock is `clock.lag` ms behind. */
  const lagging = inboxFor(() => clock.t - clock.lag);
  const commit = createEventLogWriter({
    db,
    dialect: store.dialect,
    bus: createMemoryBus(),
    nodeId: 'n',
    now,
  });
  const expiry = createExpiryAnnouncer({ db, dialect: store.dialect, commit, now });
  const addUsers = (ids: number[]) =>
    upsertUsers(
      db,
      ids.map((id) => ({
        id,
        username: `u${id}`,
        display_name: `U${id}`,
        password_hash: null,
        role: 'user' as const,
        disabled: 0,
        created_at: 0,
        updated_at: 0,
      })),
    );
  await addUsers([1]);
  /** Counters equal the recount for every user; returns the counts. */
  const exact = async () => {
    const s = await snapshot(db, store.dialect);
    const want = recount(s, announcedLive(s));
    assert.equal(s.liveAll, want.liveAll, 'live send-to-all');
    for (const u of s.users) {
      const w = want.perUser.get(u);
      assert.deepEqual(
        s.counters.get(u),
        { unreadDirect: w?.unreadDirect, seenAll: w?.seenAll },
        `user ${u}`,
      );
    }
    return unreadCounts(db, store.dialect, s.users);
  };
  const close = async () => {
    await store.close();
    await pgDb?.drop();
  };
  return { store, db, clock, inbox, lagging, expiry, addUsers, exact, close, url: pgDb?.url };
}

type Parts = Awaited<ReturnType<typeof openParts>>;

const direct = (targetIds: number[], more: Partial<SendInput> = {}): SendInput => ({
  title: 'd',
  content: 'c',
  targetType: 'user',
  targetIds,
  ...more,
});
const toAll = (more: Partial<SendInput> = {}): SendInput => ({
  title: 'a',
  content: 'c',
  targetType: 'all',
  ...more,
});
const expiresIn = (p: Parts, ms: number) => ({ expiresAt: new Date(p.clock.t + ms).toISOString() });
const isNotFound = (e: unknown) => isAppError(e, Errors.NOT_FOUND);

/** A plugin counting the statements run through the Kysely instance it is added to. */
/** Counts the statements run (results), not the query nodes built (a subquery is one of those too). */
function statementCounter(): KyselyPlugin & { n: number } {
  const counter = {
    n: 0,
    transformQuery: (args: { node: RootOperationNode }) => args.node,
    transformResult: async (args: { result: QueryResult<UnknownRow> }) => {
      counter.n++;
      return args.result;
    },
  };
  return counter;
}

for (const dialect of DIALECTS) {
  describe(`${dialect}: unread counters`, () => {
    let p: Parts;
    beforeEach(async () => {
      p = await openParts(dialect);
    });
    afterEach(async () => p.close());

    it('reads counts in one statement per 5,000 users, and a wide send updates 1,000 counters per statement', async () => {
      const ids = Array.from({ length: 5003 }, (_, i) => 100_000 + i);
      await p.addUsers(ids);
      await p.inbox.send(ADMIN, direct(ids.slice(0, 2345).reverse()));
      await p.inbox.send(ADMIN, toAll());
      const counted = statementCounter();
      const counts = await unreadCounts(p.db.withPlugin(counted), p.store.dialect, ids);
      assert.equal(counted.n, 2, 'two statements for 5,003 users');
      assert.equal(counts.get(ids[0] as number), 2);
      assert.equal(counts.get(ids[2344] as number), 2);
      assert.equal(counts.get(ids[2345] as number), 1);
      const one = statementCounter();
      assert.deepEqual(
        [...(await unreadCounts(p.db.withPlugin(one), p.store.dialect, [ids[0] as number]))],
        [[ids[0], 2]],
      );
      assert.equal(one.n, 1);
      await p.exact();
    });

    it('does not count a message the announcer passed before its send committed', async () => {
      await p.addUsers([11, 12]);
      const t0 = p.clock.t;
      // Announced at t0 + 2 s: a message expiring at t0 + 500 moves the position there.
      await p.inbox.send(ADMIN, direct([12], expiresIn(p, 500)));
      p.clock.t = t0 + 500 + EXPIRY_GRACE_MS + 1000;
      assert.equal(await p.expiry.announce(), 1);
      // A node 2 s behind sends one expiring at t0 + 100: valid on its clock, already passed over.
      p.clock.lag = p.clock.t - t0;
      await p.lagging.send(ADMIN, direct([11], expiresIn(p, 100 - p.clock.lag)));
      await p.lagging.send(ADMIN, toAll(expiresIn(p, 100 - p.clock.lag)));
      const counts = await p.exact();
      assert.equal(counts.get(11), 0);
      assert.equal(await p.expiry.announce(), 0, 'never announced');
      assert.equal((await p.exact()).get(11), 0);
      p.clock.lag = 0;
    });

    it("refuses a read or delete after the expiry's announcement, on a node whose clock still shows it", async () => {
      await p.addUsers([21, 22]);
      const t0 = p.clock.t;
      const d = (await p.inbox.send(ADMIN, direct([21, 22], expiresIn(p, 500)))).messageId;
      const a = (await p.inbox.send(ADMIN, toAll(expiresIn(p, 500)))).messageId;
      await p.inbox.markRead(22, a);
      const before = await p.exact();
      p.clock.t = t0 + 500 + EXPIRY_GRACE_MS;
      assert.equal(await p.expiry.announce(), 2);
      const announced = await p.exact();
      assert.equal(announced.get(21), (before.get(21) ?? 0) - 2, 'both stop counting for 21');
      assert.equal(announced.get(22), (before.get(22) ?? 0) - 1, 'the unread direct one for 22');
      p.clock.lag = p.clock.t - t0;
      await assert.rejects(p.lagging.markRead(21, d), isNotFound);
      await assert.rejects(p.lagging.remove(21, a), isNotFound);
      await assert.rejects(p.lagging.remove(22, d), isNotFound);
      assert.deepEqual(await p.lagging.markAllRead(21), { count: 0, messageIds: [] });
      p.clock.lag = 0;
      assert.deepEqual(await p.exact(), announced);
    });

    it('counts one change when one user reads, deletes and reads all at once', async () => {
      await p.addUsers([31]);
      const ids: number[] = [];
      for (let i = 0; i < 3; i++) {
        ids.push((await p.inbox.send(ADMIN, direct([31]))).messageId);
        ids.push((await p.inbox.send(ADMIN, toAll())).messageId);
      }
      const before = (await p.exact()).get(31) ?? 0;
      const gone = (e: unknown) => {
        if (!isNotFound(e)) throw e;
      };
      await Promise.all(
        ids.flatMap((id) => [
          p.inbox.markRead(31, id).catch(gone),
          p.inbox.markRead(31, id).catch(gone),
          p.inbox.remove(31, id).catch(gone),
          p.inbox.markAllRead(31),
        ]),
      );
      assert.equal((await p.exact()).get(31), before - ids.length);
    });

    if (dialect === 'postgres') postgresOnly(() => p);
  });
}

/** Interleavings that only PostgreSQL allows: another connection holds a lock to hold a transaction. */
function postgresOnly(parts: () => Parts): void {
  /** A connection of its own holding `userId`'s counter row until release(). */
  async function holdCounter(userId: number) {
    const c = new pg.Client({ connectionString: parts().url });
    await c.connect();
    await c.query('begin');
    await c.query('select 1 from unread_counters where user_id = $1 for update', [userId]);
    return {
      release: async () => {
        await c.query('commit');
        await c.end();
      },
    };
  }
  /** Waits until `n` backends of this database wait for a lock. */
  async function waiting(n: number): Promise<void> {
    const { db } = parts();
    for (let i = 0; i < 200; i++) {
      // Only this database's waits: other test files run their own databases on the same server.
      const r = (
        await sql<{ n: number }>`
          select count(*)::int as n from pg_stat_activity
          where datname = current_database() and wait_event_type = 'Lock'`.execute(db)
      ).rows[0] ?? { n: 0 };
      if (Number(r.n) >= n) return;
      await sleep(10);
    }
    throw new Error(`fewer than ${n} lock waits`);
  }

  it('a read committing first is seen by the announcement that waited for it', async () => {
    const p = parts();
    await p.addUsers([41]);
    const t0 = p.clock.t;
    const id = (await p.inbox.send(ADMIN, direct([41], expiresIn(p, 500)))).messageId;
    p.clock.t = t0 + 500 + EXPIRY_GRACE_MS;
    p.clock.lag = p.clock.t - t0;
    const hold = await holdCounter(41);
    // The read locks the message (shared), marks the row and waits for the counter.
    const read = p.lagging.markRead(41, id);
    await waiting(1);
    // The announcement waits for the message lock.
    const announce = p.expiry.announce();
    await waiting(2);
    await hold.release();
    await read;
    assert.equal(await announce, 1);
    p.clock.lag = 0;
    assert.equal((await p.exact()).get(41), 0);
  });

  it('a read after an announcement that held the message is refused', async () => {
    const p = parts();
    await p.addUsers([51]);
    const t0 = p.clock.t;
    const id = (await p.inbox.send(ADMIN, direct([51], expiresIn(p, 500)))).messageId;
    p.clock.t = t0 + 500 + EXPIRY_GRACE_MS;
    p.clock.lag = p.clock.t - t0;
    const hold = await holdCounter(51);
    // The announcement locks the message and waits for the counter.
    const announce = p.expiry.announce();
    await waiting(1);
    // The read waits for the message, then finds its expiry announced. Its refusal may come before the
    // announcement's answer: it is checked from the start (an unchecked rejection fails the file).
    const read = assert.rejects(p.lagging.markRead(51, id), isNotFound);
    await waiting(2);
    await hold.release();
    assert.equal(await announce, 1);
    await read;
    p.clock.lag = 0;
    assert.equal((await p.exact()).get(51), 0);
  });

  it('runs wide sends with overlapping targets side by side without a deadlock', async () => {
    const p = parts();
    const ids = Array.from({ length: 3000 }, (_, i) => 200_000 + i);
    await p.addUsers(ids);
    const deadlocks = async () =>
      Number(
        (
          await p.db
            .selectFrom('pg_stat_database' as never)
            .select('deadlocks' as never)
            .where('datname' as never, '=', p.db.dynamic.ref('current_database()') as never)
            .executeTakeFirst()
        )?.['deadlocks' as never] ?? 0,
      );
    const before = await deadlocks();
    // Each send lists an overlapping range in its own order; reads-all run beside them.
    const sends = Array.from({ length: 8 }, (_, k) => {
      const targets = ids.slice(k * 250, k * 250 + 1500);
      return p.inbox.send(ADMIN, direct(k % 2 ? targets.reverse() : targets));
    });
    const reads = ids
      .slice(0, 2500)
      .filter((_, i) => i % 250 === 0)
      .map((u) => p.inbox.markAllRead(u));
    await Promise.all([...sends, ...reads]);
    await p.exact();
    await sleep(600); // statistics reach pg_stat_database within a moment
    assert.equal(await deadlocks(), before, 'no deadlock was detected (and retried)');
  });
}
