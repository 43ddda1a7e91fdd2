/**
 * SQL of the history guard (history-guard.ts): the cursor epoch and the history token kept beside it in
 * skypush_meta, the epoch's conditional rotation, and the log's head as a position that never goes back
 * while the history stays the same.
 */
import type { Kysely } from 'kysely';
import { EPOCH_KEY, PRUNED_THROUGH_KEY } from '../store/migrate.ts';
import type { DB } from '../store/schema.ts';

/** skypush_meta keys: the cursor epoch (seeded by store/migrate.ts) and the history token beside it. */
export const HISTORY_TOKEN_KEY = 'history_token';

/** The epoch and the stored token, read in one statement (so one snapshot: they were stored together). */
export async function readEpochAndToken(
  db: Kysely<DB>,
): Promise<{ epoch: string | undefined; token: string | undefined }> {
  const rows = await db
    .selectFrom('skypush_meta')
    .select(['key', 'value'])
    .where('key', 'in', [EPOCH_KEY, HISTORY_TOKEN_KEY])
    .execute();
  const value = (key: string) => rows.find((r) => r.key === key)?.value;
  return { epoch: value(EPOCH_KEY), token: value(HISTORY_TOKEN_KEY) };
}

export async function storeToken(db: Kysely<DB>, token: string): Promise<void> {
  await db
    .insertInto('skypush_meta')
    .values({ key: HISTORY_TOKEN_KEY, value: token })
    .onConflict((oc) => oc.column('key').doUpdateSet({ value: token }))
    .execute();
}

/**
 * Replaces the epoch `from` by `to`, and stores `token` when given, in one transaction — only if the
 * epoch is still `from`. Resolves false when it is not (another node rotated first; the caller re-reads).
 */
export async function rotateEpoch(
  db: Kysely<DB>,
  from: string,
  to: string,
  token?: string,
): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    const r = await trx
      .updateTable('skypush_meta')
      .set({ value: to })
      .where('key', '=', EPOCH_KEY)
      .where('value', '=', from)
      .executeTakeFirst();
    if (Number(r.numUpdatedRows) !== 1) return false;
    if (token !== undefined) await storeToken(trx, token);
    return true;
  });
}

/**
 * The highest seq the log has ever held: its newest row, or the prune mark when retention emptied it.
 * One statement, so a prune cannot commit between the two reads and make the head look lower.
 */
export async function everHeldHead(db: Kysely<DB>): Promise<number> {
  const row = await db
    .selectFrom('events')
    .select((eb) => [
      eb.fn.max('seq').as('head'),
      eb.selectFrom('skypush_meta').select('value').where('key', '=', PRUNED_THROUGH_KEY).as('pruned'),
    ])
    .executeTakeFirst();
  return Math.max(Number(row?.head ?? 0), Number(row?.pruned ?? 0));
}
