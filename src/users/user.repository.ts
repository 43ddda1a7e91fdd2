/**
 * SQL for the users table. Plain functions taking `db` (or a transaction) first. Inserting a user also
 * gives them their unread counter row (messages/counters.repository.ts), in the same transaction.
 */
import { sql, type Kysely, type Selectable, type Updateable } from 'kysely';
import { createCounterRows } from '../messages/counters.repository.ts';
import { prepared } from '../store/prepared.ts';
import type { DB, UserTable } from '../store/schema.ts';

export type UserRow = Selectable<UserTable>;

// Every authenticated request runs this one.
const userById = prepared((db, p: { id: number }) =>
  db.selectFrom('users').selectAll().where('id', '=', p.id),
);

export async function findUserById(db: Kysely<DB>, id: number): Promise<UserRow | undefined> {
  return (await userById(db, { id })).rows[0];
}

export function findUserByUsername(db: Kysely<DB>, username: string): Promise<UserRow | undefined> {
  return db.selectFrom('users').selectAll().where('username', '=', username).executeTakeFirst();
}

export async function countUsers(db: Kysely<DB>): Promise<number> {
  const r = await db
    .selectFrom('users')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .executeTakeFirstOrThrow();
  return Number(r.n);
}

/** The next free id for a user created without an explicit one. */
export async function nextUserId(db: Kysely<DB>): Promise<number> {
  const r = await db
    .selectFrom('users')
    .select((eb) => eb.fn.max('id').as('m'))
    .executeTakeFirst();
  return Number(r?.m ?? 0) + 1;
}

/** Inserts a user and their zero unread counter (call inside a transaction). */
export async function insertUser(db: Kysely<DB>, row: UserRow): Promise<void> {
  await db.insertInto('users').values(row).execute();
  await createCounterRows(db, [row.id]);
}

export async function updateUser(db: Kysely<DB>, id: number, patch: Updateable<UserTable>): Promise<number> {
  const r = await db.updateTable('users').set(patch).where('id', '=', id).executeTakeFirst();
  return Number(r.numUpdatedRows);
}

/**
 * Users after `afterId` by id. With `q`: those whose username or display name contains it, ignoring case
 * (ASCII letters only on SQLite), or whose id it is. A scan of the table: fine for an admin console.
 */
export function listUsers(db: Kysely<DB>, afterId: number, limit: number, q?: string): Promise<UserRow[]> {
  let query = db.selectFrom('users').selectAll().where('id', '>', afterId);
  if (q !== undefined) {
    const pattern = `%${q.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
    query = query.where((eb) =>
      eb.or([
        sql<boolean>`lower(username) like ${pattern} escape '\\'`,
        sql<boolean>`lower(display_name) like ${pattern} escape '\\'`,
        ...(/^[0-9]{1,15}$/.test(q) ? [eb('id', '=', Number(q))] : []),
      ]),
    );
  }
  return query.orderBy('id').limit(limit).execute();
}

/** Which of `ids` are disabled users. */
export function disabledUserIds(db: Kysely<DB>, ids: readonly number[]): Promise<number[]> {
  return idsAmong(db, ids, true);
}

/** The subset of `ids` that exist. */
export async function existingUserIds(db: Kysely<DB>, ids: readonly number[]): Promise<Set<number>> {
  return new Set(await idsAmong(db, ids, false));
}

/** The ids among `ids` that name users (only disabled ones if asked), in chunks of 5,000. */
async function idsAmong(db: Kysely<DB>, ids: readonly number[], disabledOnly: boolean): Promise<number[]> {
  const found: number[] = [];
  for (let i = 0; i < ids.length; i += 5000) {
    let q = db
      .selectFrom('users')
      .select('id')
      .where('id', 'in', ids.slice(i, i + 5000));
    if (disabledOnly) q = q.where('disabled', '=', 1);
    for (const r of await q.execute()) found.push(Number(r.id));
  }
  return found;
}

/** Usernames among `names` held by users whose id is not the one given beside it. */
export async function usernameOwners(db: Kysely<DB>, names: readonly string[]): Promise<Map<string, number>> {
  const owners = new Map<string, number>();
  for (let i = 0; i < names.length; i += 5000) {
    const rows = await db
      .selectFrom('users')
      .select(['id', 'username'])
      .where('username', 'in', names.slice(i, i + 5000))
      .execute();
    for (const r of rows) owners.set(r.username, Number(r.id));
  }
  return owners;
}

/**
 * Inserts or updates password-less mirrored users by id. Existing password hashes and creation times
 * are kept; username, display name, role and disabled flag follow the host platform. New users get a
 * zero unread counter (call inside a transaction).
 */
export async function upsertUsers(db: Kysely<DB>, rows: readonly UserRow[]): Promise<void> {
  for (let i = 0; i < rows.length; i += 500) {
    await db
      .insertInto('users')
      .values(rows.slice(i, i + 500))
      .onConflict((oc) =>
        oc.column('id').doUpdateSet((eb) => ({
          username: eb.ref('excluded.username'),
          display_name: eb.ref('excluded.display_name'),
          role: eb.ref('excluded.role'),
          disabled: eb.ref('excluded.disabled'),
          updated_at: eb.ref('excluded.updated_at'),
        })),
      )
      .execute();
  }
  await createCounterRows(
    db,
    rows.map((r) => r.id),
  );
}
