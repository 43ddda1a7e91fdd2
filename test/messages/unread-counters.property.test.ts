/**
 * Property: whatever the interleaving of user creation (one by one and mirrored in bulk), direct sends,
 * sends to all, reads, read-all, deletes, expiring messages, expiry announcements and purges (some of
 * them concurrent), every user's counter-based unread count equals a full recount from the tables, and
 * the inbox list (status=unread) agrees with it except for messages expired but not yet announced.
 *
 * The recount (below, independent of the app's SQL) uses the documented semantics: a message counts
 * until the expiry announcer's position passes it (docs/decisions/0014-unread-counters.md); the list
 * drops it at its expiresAt.
 *
 * Seeded: the seed is printed; SKYPUSH_COUNTERS_SEED=<seed> replays a run (the same operations in the
 * same order; within a concurrent step, which statement wins a race is up to the database), and
 * SKYPUSH_COUNTERS_STEPS sets its length.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { SendInput } from '../../src/api-types.ts';
import type { Principal } from '../../src/auth/auth.service.ts';
import { Errors, isAppError } from '../../src/errors.ts';
import { DIALECTS, startApp, type TestApp } from '../helpers/app.ts';
import { FakeClock } from '../helpers/fake-clock.ts';
import { announcedLive, recount, snapshot, type Snapshot } from './unread-recount.ts';

const SEED = Number(process.env['SKYPUSH_COUNTERS_SEED'] ?? Math.floor(Math.random() * 2 ** 31));
const STEPS = Number(process.env['SKYPUSH_COUNTERS_STEPS'] ?? 300);

/** mulberry32: a small seeded generator, so a failing run can be replayed. */
function generator(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 2 ** 32;
  };
  const int = (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1));
  const pick = <T>(xs: readonly T[]): T => xs[int(0, xs.length - 1)] as T;
  const subset = <T>(xs: readonly T[], max: number): T[] =>
    [...xs].sort(() => next() - 0.5).slice(0, int(1, Math.min(max, xs.length)));
  return { next, int, pick, subset };
}

type Rng = ReturnType<typeof generator>;

for (const dialect of DIALECTS) {
  describe(`${dialect}: unread counters against a full recount`, () => {
    const clock = new FakeClock();
    let t: TestApp;
    let admin: Principal;
    before(async () => {
      // The expiry position is seeded with the real time: the fake clock starts a minute after it.
      clock.advance(Date.now() + 60_000 - clock.now());
      t = await startApp({
        dialect,
        now: () => clock.now(),
        // Announcements and purges are steps of the test, not timers.
        env: { SKYPUSH_EXPIRY_SWEEP_MS: '60000', SKYPUSH_EVENT_CLEANUP_INTERVAL_MS: '86400000' },
      });
      const row = await t.app.users.findRowByUsername(t.config.auth.adminUsername);
      assert.ok(row);
      admin = { userId: Number(row.id), role: 'admin', username: row.username, displayName: 'Admin', exp: 0 };
    });
    after(async () => t.close());

    it('holds after every step of a random interleaving', async (tc) => {
      tc.diagnostic(
        `${dialect}: unread counters property, seed ${SEED} (replay: SKYPUSH_COUNTERS_SEED=${SEED})`,
      );
      const rng = generator(SEED);
      const world = { users: [admin.userId], messages: [] as number[], nextId: 5000, made: 0 };
      const stats = { notFound: 0, announced: 0, concurrent: 0, pending: 0, maxCount: 0 };
      const messages = t.app.messages;

      /** Runs a service call that may refuse a message no longer visible to the user. */
      const maybeGone = async (p: Promise<unknown>) => {
        await p.catch((e: unknown) => {
          if (!isAppError(e, Errors.NOT_FOUND)) throw e;
          stats.notFound++;
        });
      };
      const expiry = (): Partial<SendInput> =>
        rng.next() < 0.4 ? { expiresAt: new Date(clock.now() + rng.int(1, 4000)).toISOString() } : {};

      const ops: Record<string, { weight: number; run: (r: Rng) => Promise<unknown>; alone?: boolean }> = {
        createUser: {
          weight: 2,
          run: async () => {
            if (world.users.length >= 24) return;
            const u = await t.app.users.create({ username: `p-${dialect}-${world.made++}` });
            world.users.push(u.id);
          },
        },
        mirrorUsers: {
          weight: 1,
          run: async (r) => {
            // New ids and, now and then, one that exists (an update: its counter must stay).
            const ids = Array.from({ length: r.int(1, 3) }, () => world.nextId++);
            if (r.next() < 0.5 && world.users.length > 1) ids.push(r.pick(world.users.slice(1)));
            const unique = [...new Set(ids)];
            const rows = await t.app.store.db.selectFrom('users').select(['id', 'username']).execute();
            const names = new Map(rows.map((x) => [Number(x.id), x.username]));
            await t.app.users.bulkUpsert(unique.map((id) => ({ id, username: names.get(id) ?? `m-${id}` })));
            for (const id of unique) if (!world.users.includes(id)) world.users.push(id);
          },
        },
        sendDirect: {
          weight: 6,
          run: async (r) => {
            const input: SendInput = {
              title: 'd',
              content: 'c',
              targetType: 'user',
              targetIds: r.subset(world.users, 6),
              ...expiry(),
            };
            world.messages.push((await messages.send(admin, input)).messageId);
          },
        },
        sendAll: {
          weight: 2,
          run: async () => {
            const input: SendInput = { title: 'a', content: 'c', targetType: 'all', ...expiry() };
            world.messages.push((await messages.send(admin, input)).messageId);
          },
        },
        markRead: {
          weight: 5,
          run: (r) =>
            world.messages.length
              ? maybeGone(messages.markRead(r.pick(world.users), r.pick(world.messages)))
              : Promise.resolve(),
        },
        markAllRead: { weight: 2, run: (r) => messages.markAllRead(r.pick(world.users)) },
        remove: {
          weight: 3,
          run: (r) =>
            world.messages.length
              ? maybeGone(messages.remove(r.pick(world.users), r.pick(world.messages)))
              : Promise.resolve(),
        },
        announce: {
          weight: 5,
          run: async (r) => (stats.announced += await t.app.expiry.announce(r.int(1, 200), r.int(1, 20))),
        },
        purge: { weight: 1, run: () => t.app.expiry.purgeAnnounced() },
        advance: { weight: 4, alone: true, run: async (r) => clock.advance(r.int(0, 2500)) },
      };
      const names = Object.keys(ops);
      const weighted = names.flatMap((n) => Array<string>(ops[n]?.weight ?? 0).fill(n));

      for (let step = 0; step < STEPS; step++) {
        // One step is one operation, or two to four run concurrently (never a clock move).
        const batch =
          rng.next() < 0.2
            ? Array.from({ length: rng.int(2, 4) }, () => rng.pick(weighted.filter((n) => !ops[n]?.alone)))
            : [rng.pick(weighted)];
        if (batch.length > 1) stats.concurrent++;
        await Promise.all(batch.map((n) => ops[n]?.run(rng)));
        const s = await check(`step ${step} (${batch.join(' + ')}), seed ${SEED}`);
        if (unannounced(s) > 0) stats.pending++;
        stats.maxCount = Math.max(stats.maxCount, ...(await t.app.messages.unreadCounts(s.users)).values());
      }
      tc.diagnostic(
        `${dialect}: ${STEPS} steps, ${world.users.length} users, ${world.messages.length} messages, ` +
          JSON.stringify(stats),
      );
      // The run must have reached the cases it is about.
      assert.ok(
        stats.announced > 0 && stats.pending > 0 && stats.notFound > 0 && stats.maxCount > 0,
        'coverage',
      );
    });

    /** Compares the counters, the service's counts and the inbox list with the recount. */
    async function check(where: string): Promise<Snapshot> {
      const s = await snapshot(t.app.store.db, dialect);
      const exact = recount(s, announcedLive(s));
      assert.equal(s.liveAll, exact.liveAll, `${where}: live send-to-all messages`);
      const counts = await t.app.messages.unreadCounts(s.users);
      for (const u of s.users) {
        const want = exact.perUser.get(u);
        const c = s.counters.get(u);
        assert.ok(c, `${where}: user ${u} has a counter row`);
        assert.deepEqual(
          c,
          { unreadDirect: want?.unreadDirect, seenAll: want?.seenAll },
          `${where}: user ${u}`,
        );
        assert.ok(
          c.unreadDirect >= 0 && c.seenAll >= 0 && c.seenAll <= s.liveAll,
          `${where}: user ${u} ${c}`,
        );
        assert.equal(counts.get(u), want?.count, `${where}: unreadCounts of user ${u}`);
      }
      await checkLists(s, exact.perUser, where);
      return s;
    }

    /**
     * The list drops a message at its expiresAt; the count, at its announcement. They agree but for the
     * unread messages in between, which only the count still has.
     */
    async function checkLists(
      s: Snapshot,
      exact: Map<number, { count: number }>,
      where: string,
    ): Promise<void> {
      const byClock = recount(s, (id) => {
        const e = s.messages.get(id)?.expiresAt ?? null;
        return e === null || e > clock.now();
      });
      for (const u of s.users) {
        let listed = 0;
        let cursor: string | undefined;
        do {
          const page = await t.app.messages.list(u, {
            status: 'unread',
            limit: 100,
            ...(cursor && { cursor }),
          });
          listed += page.items.length;
          cursor = page.nextCursor ?? undefined;
        } while (cursor);
        const count = exact.get(u)?.count ?? NaN;
        assert.equal(listed, byClock.perUser.get(u)?.count, `${where}: list of user ${u}`);
        assert.ok(listed <= count, `${where}: user ${u} lists ${listed}, counts ${count}`);
      }
      if (unannounced(s) === 0)
        for (const u of s.users)
          assert.equal(byClock.perUser.get(u)?.count, exact.get(u)?.count, `${where}: list = count`);
    }

    /** Messages expired by the clock whose expiry is not announced yet. */
    function unannounced(s: Snapshot): number {
      const live = announcedLive(s);
      return [...s.messages].filter(
        ([id, m]) => live(id) && m.expiresAt !== null && m.expiresAt <= clock.now(),
      ).length;
    }
  });
}
