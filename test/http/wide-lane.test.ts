/**
 * The wide lane over real HTTP on PostgreSQL: sends listing more than SKYPUSH_WIDE_SEND_TARGETS users run
 * one at a time per node (SKYPUSH_WIDE_SEND_CONCURRENCY=1), a one-user send passes a wide send that is
 * stuck in its transaction, and a queued wide send whose client hangs up is dropped and stores nothing.
 * A wide send is held in its transaction by locking the table only wide sends write on PostgreSQL
 * (unread_pending, decision 0014).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { startApp, type TestApp } from '../helpers/app.ts';
import { waitUntil } from '../helpers/realtime.ts';

describe('postgres: the wide lane', () => {
  let t: TestApp;
  let users: number[];
  before(async () => {
    t = await startApp({ dialect: 'postgres', env: { SKYPUSH_WIDE_SEND_TARGETS: '2' } });
    users = [];
    for (const name of ['wl1', 'wl2', 'wl3']) users.push((await t.createUser(name)).id);
  });
  after(async () => t.close());

  const body = (title: string, targetIds: number[]) =>
    JSON.stringify({ title, content: 'c', targetType: 'user', targetIds });
  const post = (title: string, targetIds: number[], signal?: AbortSignal) =>
    fetch(`${t.url}/api/v1/messages/send`, {
      method: 'POST',
      headers: { authorization: `Bearer ${t.adminToken}`, 'content-type': 'application/json' },
      body: body(title, targetIds),
      ...(signal && { signal }),
    });
  const stored = async (title: string) =>
    (await t.app.store.db.selectFrom('messages').select('id').where('title', '=', title).execute()).length;
  /**
   * Wide sends waiting on the held lock: sessions waiting for unread_pending that have written inbox rows
   * (the fold waits for the table too, but writes no inbox rows; and a statement waiting at its parse
   * step still shows its previous text in pg_stat_activity, so locks are what is counted).
   */
  const waitingOnLock = async (c: pg.Client) =>
    Number(
      (
        await c.query<{ n: string }>(
          `select count(distinct w.pid) as n
             from pg_locks w
             join pg_locks h on h.pid = w.pid and h.granted and h.relation = 'inbox'::regclass and h.mode = 'RowExclusiveLock'
            where not w.granted and w.relation = 'unread_pending'::regclass`,
        )
      ).rows[0]?.n,
    );

  it('runs one wide send at a time; a one-user send passes; a hung-up queued one is dropped', async () => {
    const holder = new pg.Client({ connectionString: t.config.database.url });
    await holder.connect();
    try {
      await holder.query('begin');
      await holder.query('lock table unread_pending in exclusive mode');
      const first = post('wide-1', users);
      // The first wide send reaches its transaction and waits on the lock.
      await waitUntil(async () => (await waitingOnLock(holder)) === 1);
      const gone = new AbortController();
      const second = post('wide-2', users, gone.signal);
      const third = post('wide-3', users);
      // A one-user send commits while the wide send is stuck (it adds to the counter row directly).
      assert.equal((await post('narrow', [users[0] as number])).status, 200);
      assert.equal(
        await waitingOnLock(holder),
        1,
        'the other wide sends wait in the lane, not in the database',
      );
      gone.abort();
      await assert.rejects(second);
      await holder.query('rollback');
      assert.equal((await first).status, 200);
      assert.equal((await third).status, 200);
      assert.equal(await stored('wide-1'), 1);
      assert.equal(await stored('wide-3'), 1);
      assert.equal(await stored('wide-2'), 0, 'the send whose client hung up stored nothing');
    } finally {
      await holder.query('rollback').catch(() => {});
      await holder.end();
    }
  });
});
