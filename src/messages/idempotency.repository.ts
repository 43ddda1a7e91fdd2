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

/** Forgets up to `limit` keys stored before `before` (oldest first, by the created_at index); returns how many. */
export async function deleteIdempotencyBatch(db: Kysely<DB>, before: number, limit: number): Promise<number> {
  const r = await db
    .deleteFrom('idempotency_keys')
    .where((eb) =>
      eb(
        eb.refTuple('sender_id', 'key'),
        'in',
        eb
          .selectFrom('idempotency_keys')
          .select(['sender_id', 'key'])
          .where('created_at', '<', before)
          .orderBy('created_at')
          .limit(limit)
          .$asTuple('sender_id', 'key'),
      ),
    )
    .executeTakeFirst();
  return Number(r.numDeletedRows);
}

/**
 * Housekeeping: keys stored before `before`, in at most `batches` batches of `batchSize`, yielding between
 * batches so a large backlog never holds the database (or SQLite's one connection) for long.
 */
export async function pruneIdempotency(
  db: Kysely<DB>,
  before: number,
  batches = 10,
  batchSize = 1000,
): Promise<number> {
  let total = 0;
  for (let i = 0; i < batches; i++) {
    const n = await deleteIdempotencyBatch(db, before, batchSize);
    total += n;
    if (n < batchSize) break;
    await new Promise((r) => setImmediate(r));
  }
  return total;
}
