/** SQL for `idempotency_keys`: one row per sender × Idempotency-Key, holding the answer first given. */
import type { Kysely, Selectable } from 'kysely';
import type { DB, IdempotencyTable } from '../store/schema.ts';

export type IdempotencyRow = Selectable<IdempotencyTable>;

export function findIdempotency(
  db: Kysely<DB>,
  senderId: number,
  key: string,
): Promise<IdempotencyRow | undefined> {
  return db
    .selectFrom('idempotency_keys')
    .selectAll()
    .where('sender_id', '=', senderId)
    .where('key', '=', key)
    .executeTakeFirst();
}

export async function insertIdempotency(trx: Kysely<DB>, row: IdempotencyRow): Promise<void> {
  await trx.insertInto('idempotency_keys').values(row).execute();
}

/** Forgets one sender's key if it was stored before `before` (expired). */
export async function deleteIdempotencyBefore(
  trx: Kysely<DB>,
  senderId: number,
  key: string,
  before: number,
): Promise<void> {
  await trx
    .deleteFrom('idempotency_keys')
    .where('sender_id', '=', senderId)
    .where('key', '=', key)
    .where('created_at', '<', before)
    .execute();
}

/** Forgets every key stored before `before`. */
export async function pruneIdempotency(db: Kysely<DB>, before: number): Promise<void> {
  await db.deleteFrom('idempotency_keys').where('created_at', '<', before).execute();
}
