/**
 * Issue #11 item 5: `ws_tickets` cannot grow without bound. A user keeps at most
 * SKYPUSH_MAX_TICKETS_PER_USER live tickets (issuing one more evicts their oldest), housekeeping deletes
 * expired tickets in bounded batches, and the migration indexes the table by expiry — on both dialects.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import { countTickets, pruneTickets } from '../../src/auth/ticket.repository.ts';
import * as ticketExpiry from '../../src/store/migrations/2026-11-30-0003-ticket-expiry.ts';
import { DIALECTS, startApp, type TestApp } from '../helpers/app.ts';
import { refused, waitUntil } from '../helpers/realtime.ts';
import { connect } from '../helpers/ws-client.ts';

async function ticketIndexes(t: TestApp): Promise<string[]> {
  const q =
    t.app.store.dialect === 'sqlite'
      ? sql<{ name: string }>`select name from sqlite_master where type = 'index' and tbl_name = 'ws_tickets'`
      : sql<{ name: string }>`select indexname as name from pg_indexes where tablename = 'ws_tickets'`;
  return (await q.execute(t.app.store.db)).rows
    .map((r) => r.name)
    .filter((n) => n.startsWith('ws_tickets_') && !n.endsWith('_pkey'));
}

for (const dialect of DIALECTS) {
  describe(`${dialect}: ws tickets are bounded`, () => {
    let t: TestApp;
    let skewMs = 0;
    let alice: { id: number; token: string };
    let bob: { id: number; token: string };
    before(async () => {
      t = await startApp({
        dialect,
        env: { SKYPUSH_MAX_TICKETS_PER_USER: '3', SKYPUSH_EVENT_CLEANUP_INTERVAL_MS: '50' },
        now: () => Date.now() + skewMs,
      });
      alice = await t.createUser('alice', { id: 2001 });
      bob = await t.createUser('bob', { id: 2002 });
    });
    after(async () => t.close());

    const issue = async (token: string): Promise<string> => {
      // Each ticket a millisecond later than the one before, so "oldest" is well defined.
      skewMs += 1;
      const r = await t.request<{ ticket: string }>('POST', '/api/v1/ws/ticket', { token });
      assert.equal(r.status, 200);
      return r.body.data.ticket;
    };

    it('indexes ws_tickets by expiry, and the migration goes down and up again', async () => {
      assert.deepEqual((await ticketIndexes(t)).sort(), [
        'ws_tickets_expires_at',
        'ws_tickets_user_expires_at',
      ]);
      await ticketExpiry.down(t.app.store.db as never);
      assert.deepEqual(await ticketIndexes(t), []);
      await ticketExpiry.up(t.app.store.db as never);
      assert.equal((await ticketIndexes(t)).length, 2);
    });

    it('keeps a user at the cap by evicting their oldest tickets, and leaves other users alone', async () => {
      const bobs = await issue(bob.token);
      const tickets: string[] = [];
      for (let i = 0; i < 5; i++) tickets.push(await issue(alice.token));
      assert.equal(await countTickets(t.app.store.db, alice.id), 3);
      assert.equal(await countTickets(t.app.store.db, bob.id), 1);
      // The two oldest were evicted: refused before the upgrade, like any unknown ticket.
      const r = await refused(t.wsUrl, { ticket: tickets[0] as string });
      assert.equal(r.status, 401);
      assert.equal(r.body.code, 40103);
      // The newest and bob's still connect.
      for (const ticket of [tickets[4] as string, bobs]) {
        const sock = await connect(t.wsUrl, { ticket });
        assert.equal((await sock.waitFor((f) => f.type === 'CONNECTED')).type, 'CONNECTED');
        await sock.close();
      }
    });

    it('deletes expired tickets in housekeeping', async () => {
      for (let i = 0; i < 3; i++) await issue(alice.token);
      await issue(bob.token);
      assert.ok((await countTickets(t.app.store.db, alice.id)) > 0);
      skewMs += 31_000;
      await waitUntil(
        async () =>
          (await countTickets(t.app.store.db, alice.id)) + (await countTickets(t.app.store.db, bob.id)) === 0,
      );
    });

    it('prunes in batches of a bounded size', async () => {
      const db = t.app.store.db;
      const expired = Date.now() + skewMs - 1;
      await db
        .insertInto('ws_tickets')
        .values(
          Array.from({ length: 25 }, (_, i) => ({
            ticket_hash: `h${i}`,
            user_id: 3000 + i,
            role: 'user',
            token_exp: 0,
            expires_at: expired,
          })),
        )
        .execute();
      assert.equal(await pruneTickets(db, expired + 1, 2, 10), 20);
      const left = await db
        .selectFrom('ws_tickets')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .executeTakeFirstOrThrow();
      assert.equal(Number(left.n), 5);
    });
  });
}
