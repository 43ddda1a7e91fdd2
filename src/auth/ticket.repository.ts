/**
 * The only SQL on `ws_tickets`: one-time WebSocket tickets, stored as SHA-256 hashes. The table is
 * bounded twice: a user keeps at most `maxPerUser` tickets (issuing one evicts the oldest), and
 * housekeeping deletes expired tickets in batches through the `ws_tickets_expires_at` index.
 */
import type { Kysely } from 'kysely';
import type { DB, TicketTable } from '../store/schema.ts';

/**
 * Stores a ticket, then drops the user's expired tickets and all but their `maxPerUser` newest. The
 * oldest unused ticket is the one a client is least likely to still redeem, so evicting it never
 * refuses a client that asks again.
 */
export async function insertTicket(db: Kysely<DB>, row: TicketTable, maxPerUser: number, now: number) {
  await db.insertInto('ws_tickets').values(row).execute();
  await db
    .deleteFrom('ws_tickets')
    .where('user_id', '=', row.user_id)
    .where((w) =>
      w.or([
        w('expires_at', '<', now),
        w(
          'ticket_hash',
          'not in',
          w
            .selectFrom('ws_tickets')
            .select('ticket_hash')
            .where('user_id', '=', row.user_id)
            .orderBy('expires_at', 'desc')
            .orderBy('ticket_hash')
            .limit(maxPerUser),
        ),
      ]),
    )
    .execute();
}

/** Deletes the ticket with this hash and returns what it carried: a ticket is redeemed once. */
export async function takeTicket(db: Kysely<DB>, ticketHash: string) {
  return db
    .deleteFrom('ws_tickets')
    .where('ticket_hash', '=', ticketHash)
    .returning(['user_id', 'token_exp', 'expires_at'])
    .executeTakeFirst();
}

/** Deletes up to `limit` tickets that expired before `now`; returns how many. */
export async function deleteExpiredTickets(db: Kysely<DB>, now: number, limit: number): Promise<number> {
  const r = await db
    .deleteFrom('ws_tickets')
    .where('ticket_hash', 'in', (eb) =>
      eb.selectFrom('ws_tickets').select('ticket_hash').where('expires_at', '<', now).limit(limit),
    )
    .executeTakeFirst();
  return Number(r.numDeletedRows);
}

/** Housekeeping: expired tickets in `batches` batches of `batchSize` at most; returns how many. */
export async function pruneTickets(db: Kysely<DB>, now: number, batches = 10, batchSize = 1000) {
  let total = 0;
  for (let i = 0; i < batches; i++) {
    const n = await deleteExpiredTickets(db, now, batchSize);
    total += n;
    if (n < batchSize) break;
  }
  return total;
}

/** Live tickets of one user (tests and diagnostics). */
export async function countTickets(db: Kysely<DB>, userId: number): Promise<number> {
  const r = await db
    .selectFrom('ws_tickets')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('user_id', '=', userId)
    .executeTakeFirstOrThrow();
  return Number(r.n);
}
