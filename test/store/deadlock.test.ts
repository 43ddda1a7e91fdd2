/**
 * A transaction that PostgreSQL aborts as a deadlock victim runs again (src/store/deadlock.ts), through
 * the event log writer every change commits with: a real deadlock on PostgreSQL ends with both
 * transactions committed. Other errors, and a deadlock that keeps coming back, reach the caller.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import { createMemoryBus } from '../../src/bus/memory-bus.ts';
import { createEventLogWriter, type CommitWithEvents } from '../../src/messages/event-log-writer.ts';
import { openStore, type Store } from '../../src/store/database.ts';
import { DEADLOCK_RETRIES, retryDeadlocks } from '../../src/store/deadlock.ts';
import { migrateToLatest } from '../../src/store/migrate.ts';
import { upsertUsers } from '../../src/users/user.repository.ts';
import { DIALECTS, createPgDatabase } from '../helpers/app.ts';

const deadlock = () => Object.assign(new Error('deadlock detected'), { code: '40P01' });

describe('retryDeadlocks', () => {
  it('runs a deadlock victim again, up to the limit', async () => {
    let calls = 0;
    assert.equal(
      await retryDeadlocks(async () => (++calls < 3 ? Promise.reject(deadlock()) : 'done')),
      'done',
    );
    assert.equal(calls, 3);
    calls = 0;
    await assert.rejects(
      retryDeadlocks(async () => {
        calls++;
        throw deadlock();
      }),
      /deadlock detected/,
    );
    assert.equal(calls, DEADLOCK_RETRIES + 1);
  });

  it('passes any other error through at once', async () => {
    let calls = 0;
    await assert.rejects(
      retryDeadlocks(async () => {
        calls++;
        throw Object.assign(new Error('unique'), { code: '23505' });
      }),
      /unique/,
    );
    assert.equal(calls, 1);
  });
});

if (DIALECTS.includes('postgres'))
  describe('postgres: the event log writer and a real deadlock', () => {
    let store: Store;
    let drop: () => Promise<void>;
    let commit: CommitWithEvents;
    before(async () => {
      const d = await createPgDatabase();
      drop = d.drop;
      store = openStore({
        kind: 'postgres',
        url: d.url,
        poolSize: 4,
        statementTimeoutMs: 10_000,
        connectTimeoutMs: 5000,
      });
      await migrateToLatest(store);
      const row = (id: number) => ({
        id,
        username: `u${id}`,
        display_name: 'u',
        password_hash: null,
        role: 'user' as const,
        disabled: 0,
        created_at: 0,
        updated_at: 0,
      });
      await upsertUsers(store.db, [row(1), row(2)]);
      commit = createEventLogWriter({
        db: store.db,
        dialect: 'postgres',
        bus: createMemoryBus(),
        nodeId: 'n',
        now: Date.now,
      });
    });
    after(async () => {
      await store.close();
      await drop();
    });

    it('commits both transactions of a deadlock, the victim on its second run', async () => {
      let bothHoldOne!: () => void;
      const barrier = new Promise<void>((r) => (bothHoldOne = r));
      let held = 0;
      const runs = { a: 0, b: 0 };
      /** Locks `first`, waits until the other transaction holds its first row, then locks `second`. */
      const crossing = (name: 'a' | 'b', first: number, second: number) =>
        commit(async (trx) => {
          runs[name]++;
          const lock = (id: number) =>
            sql`update unread_counters set seen_all = seen_all + 0 where user_id = ${id}`.execute(trx);
          await lock(first);
          if (++held === 2) bothHoldOne();
          await barrier;
          await lock(second);
          return { result: name, events: [{ userId: first, type: 'TEST', data: {} }] };
        });
      assert.deepEqual(await Promise.all([crossing('a', 1, 2), crossing('b', 2, 1)]), ['a', 'b']);
      assert.equal(runs.a + runs.b, 3, 'one of them ran twice');
      const events = await store.db
        .selectFrom('events')
        .select('user_id')
        .where('type', '=', 'TEST')
        .execute();
      assert.equal(events.length, 2, 'each committed once');
    });
  });
