/**
 * Pending counter changes of sends to many users on PostgreSQL (docs/decisions/0014-unread-counters.md,
 * "Wide sends on PostgreSQL"): inserted by the send without touching counter rows, folded into
 * unread_counters moments later. No key (a user has as many pending changes as wide sends named them
 * since the last fold); an index on user_id, so that a count's read of one user's pending changes costs
 * the same however many other users' changes a burst of wide sends left pending.
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
  await db.schema
    .createIndex('unread_deltas_user_id')
    .ifNotExists()
    .on('unread_deltas')
    .column('user_id')
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('unread_deltas').ifExists().execute();
}
