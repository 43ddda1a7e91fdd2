/**
 * Sends to several users whose +1 is not in their unread counters yet (PostgreSQL;
 * docs/decisions/0014-unread-counters.md, "Wide sends on PostgreSQL"): one row per send, naming its
 * message; its recipients are the message's inbox rows. `folded_through`: the recipients up to this user
 * id have had their +1 added to unread_counters by the fold. Created on SQLite too (always empty there),
 * so that the statements that look at it are the same on both.
 */
import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('unread_pending')
    .ifNotExists()
    .addColumn('message_id', 'bigint', (c) => c.primaryKey())
    .addColumn('folded_through', 'bigint', (c) => c.notNull().defaultTo(0))
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('unread_pending').ifExists().execute();
}
