/**
 * Pending counter changes of sends to many users on PostgreSQL (docs/decisions/0014-unread-counters.md,
 * "Wide sends on PostgreSQL"): inserted by the send without touching counter rows, folded into
 * unread_counters moments later. No key and no index: rows live a fraction of a second, and the table is
 * read by sequential scan while it is small.
 */
import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('unread_deltas')
    .ifNotExists()
    .addColumn('user_id', 'bigint', (c) => c.notNull())
    .addColumn('unread_direct', 'integer', (c) => c.notNull())
    .addColumn('seen_all', 'integer', (c) => c.notNull())
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('unread_deltas').ifExists().execute();
}
