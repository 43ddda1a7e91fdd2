/**
 * Events by reference (docs/decisions/0009-events-by-reference.md): an event of a new message names the
 * message instead of carrying its payload, and a send to many users is one event (user_id -1: "the
 * message's recipients", read from the inbox) instead of one per recipient. `mfloor` is the message-id
 * floor that resume uses to look up a user's direct messages (see event-log.repository.ts).
 *
 * Rows written before this migration keep their payload in `data` (message_id null) and are replayed as
 * they are: old cursors keep working.
 */
import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('events').addColumn('message_id', 'bigint').execute();
  await db.schema
    .alterTable('events')
    .addColumn('mfloor', 'bigint', (c) => c.notNull().defaultTo(0))
    .execute();
  await db.schema.createIndex('events_message_id').on('events').column('message_id').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('events_message_id').execute();
  await db.schema.alterTable('events').dropColumn('mfloor').execute();
  await db.schema.alterTable('events').dropColumn('message_id').execute();
}
