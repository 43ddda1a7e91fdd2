/**
 * WebSocket tickets by expiry: housekeeping deletes expired tickets in batches, and issuing one trims the
 * user's tickets to the newest few (see auth/ticket.repository.ts).
 */
import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.createIndex('ws_tickets_expires_at').on('ws_tickets').column('expires_at').execute();
  await db.schema
    .createIndex('ws_tickets_user_expires_at')
    .on('ws_tickets')
    .columns(['user_id', 'expires_at'])
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('ws_tickets_user_expires_at').execute();
  await db.schema.dropIndex('ws_tickets_expires_at').execute();
}
