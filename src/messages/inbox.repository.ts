/**
 * SQL for per-user inbox state and what a user sees of messages. A direct message has an inbox row per
 * target from the start; a send-to-all message is stored once and gets an inbox row for a user only when
 * that user reads or deletes it (docs/decisions/0002-send-to-all-stored-once.md).
 */
import { sql, type Expression, type ExpressionBuilder, type Kysely, type SqlBool } from 'kysely';
import type { Dialect } from '../store/database.ts';
import { prepared } from '../store/prepared.ts';
import type { DB, InboxTable } from '../store/schema.ts';
import { notExpired, type MessageRow } from './message.repository.ts';
import { pgIds } from './pending-counters.ts';

export type InboxItemRow = MessageRow & { read_at: number | null };
export type Status = 'unread' | 'read' | 'all';

/** INSERT … SELECT: an unread inbox row for the message for each of the users (one id or a list) that exists. */
function insertInboxQuery(db: Kysely<DB>, messageId: number, users: number | readonly number[]) {
  return db
    .insertInto('inbox')
    .columns(['user_id', 'message_id', 'read_at', 'deleted_at'])
    .expression((eb) =>
      eb
        .selectFrom('users')
        .select((s) => [
          'users.id',
          s.val(messageId).as('message_id'),
          sql<null>`null`.as('read_at'),
          sql<null>`null`.as('deleted_at'),
        ])
        .where('users.id', Array.isArray(users) ? 'in' : '=', users),
    );
}

// Every send to one user runs this statement, so the single-id case is prepared (store/prepared.ts).
const insertInboxRow = prepared((db, p: { messageId: number; userId: number }) =>
  insertInboxQuery(db, p.messageId, p.userId),
);

/**
 * Gives each of `userIds` that exists an unread inbox row for the message, checking that they exist in
 * the same statement; returns how many rows were inserted. On PostgreSQL a list is one statement with one
 * array parameter, whatever its length; SQLite takes 1,000 ids per statement.
 */
export async function insertInboxRows(
  trx: Kysely<DB>,
  messageId: number,
  userIds: readonly number[],
  dialect: Dialect = 'sqlite',
): Promise<number> {
  if (userIds.length === 1) {
    const r = await insertInboxRow(trx, { messageId, userId: userIds[0] as number });
    return Number(r.numAffectedRows ?? 0);
  }
  if (dialect === 'postgres') {
    const r = await sql`
      insert into inbox (user_id, message_id, read_at, deleted_at)
      select u.id, ${messageId}::bigint, null, null
      from users u where u.id = any(${pgIds(userIds)})`.execute(trx);
    return Number(r.numAffectedRows ?? 0);
  }
  let inserted = 0;
  for (let i = 0; i < userIds.length; i += 1000) {
    const r = await insertInboxQuery(trx, messageId, userIds.slice(i, i + 1000)).executeTakeFirst();
    inserted += Number(r.numInsertedOrUpdatedRows ?? 0);
  }
  return inserted;
}

/** How many users still have the direct message in their inbox (not deleted by them). */
export async function holderCount(db: Kysely<DB>, messageId: number): Promise<number> {
  const r = await db
    .selectFrom('inbox')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('message_id', '=', messageId)
    .where('deleted_at', 'is', null)
    .executeTakeFirstOrThrow();
  return Number(r.n);
}

/** The message as `userId` sees it, or undefined when it is not theirs, deleted by them, or expired. */
export async function findVisible(
  db: Kysely<DB>,
  userId: number,
  messageId: number,
  now: number,
): Promise<InboxItemRow | undefined> {
  const row = await db
    .selectFrom('messages')
    .leftJoin('inbox', (j) =>
      j.onRef('inbox.message_id', '=', 'messages.id').on('inbox.user_id', '=', userId),
    )
    .selectAll('messages')
    .select(['inbox.read_at', 'inbox.deleted_at', 'inbox.user_id'])
    .where('messages.id', '=', messageId)
    .where((eb) => notExpired(eb, now))
    .executeTakeFirst();
  if (!row || row.deleted_at !== null) return undefined;
  if (row.target_type === 'user' && row.user_id === null) return undefined;
  const { deleted_at: _d, user_id: _u, ...item } = row;
  return item;
}

/** What one page of the inbox asks for (the API's InboxQuery, resolved by the service). */
export interface InboxPageFilter {
  beforeId: number | undefined;
  limit: number;
  status: Status;
  messageType: string | undefined;
  now: number;
}

/**
 * What a page keeps of a user's messages, the same for direct and send-to-all ones: not deleted, not
 * expired, before the page cursor, of the asked status and type. (For send-to-all the inbox row is
 * left-joined: no row means unread and not deleted.)
 */
function pageFilter(
  eb: ExpressionBuilder<DB, 'messages' | 'inbox'>,
  q: InboxPageFilter,
): Expression<SqlBool> {
  const all: Array<Expression<SqlBool>> = [eb('inbox.deleted_at', 'is', null), notExpired(eb, q.now)];
  if (q.beforeId !== undefined) all.push(eb('messages.id', '<', q.beforeId));
  if (q.status === 'unread') all.push(eb('inbox.read_at', 'is', null));
  if (q.status === 'read') all.push(eb('inbox.read_at', 'is not', null));
  if (q.messageType !== undefined) all.push(eb('messages.message_type', '=', q.messageType));
  return eb.and(all);
}

/** One page of the inbox, newest first: direct and send-to-all messages merged by id. */
export async function listInbox(db: Kysely<DB>, userId: number, q: InboxPageFilter): Promise<InboxItemRow[]> {
  const direct = db
    .selectFrom('inbox')
    .innerJoin('messages', 'messages.id', 'inbox.message_id')
    .selectAll('messages')
    .select('inbox.read_at')
    .where('inbox.user_id', '=', userId)
    .where('messages.target_type', '=', 'user')
    .where((eb) => pageFilter(eb, q))
    .orderBy('messages.id', 'desc')
    .limit(q.limit);
  const toAll = db
    .selectFrom('messages')
    .leftJoin('inbox', (j) =>
      j.onRef('inbox.message_id', '=', 'messages.id').on('inbox.user_id', '=', userId),
    )
    .selectAll('messages')
    .select('inbox.read_at')
    .where('messages.target_type', '=', 'all')
    .where((eb) => pageFilter(eb, q))
    .orderBy('messages.id', 'desc')
    .limit(q.limit);
  const [a, b] = await Promise.all([direct.execute(), toAll.execute()]);
  return [...a, ...b].sort((x, y) => Number(y.id) - Number(x.id)).slice(0, q.limit);
}

/** Ids of every unread message `userId` can see (for read-all). */
export async function unreadIds(
  db: Kysely<DB>,
  userId: number,
  now: number,
): Promise<{ direct: number[]; toAll: number[] }> {
  const direct = await db
    .selectFrom('inbox')
    .innerJoin('messages', 'messages.id', 'inbox.message_id')
    .select('messages.id')
    .where('inbox.user_id', '=', userId)
    .where('messages.target_type', '=', 'user')
    .where('inbox.read_at', 'is', null)
    .where('inbox.deleted_at', 'is', null)
    .where((eb) => notExpired(eb, now))
    .execute();
  const toAll = await db
    .selectFrom('messages')
    .leftJoin('inbox', (j) =>
      j.onRef('inbox.message_id', '=', 'messages.id').on('inbox.user_id', '=', userId),
    )
    .select('messages.id')
    .where('messages.target_type', '=', 'all')
    .where('inbox.user_id', 'is', null)
    .where((eb) => notExpired(eb, now))
    .execute();
  return { direct: direct.map((r) => Number(r.id)), toAll: toAll.map((r) => Number(r.id)) };
}

/**
 * What a read or delete did to the user's unread count: direct messages that were unread (and not
 * deleted) before it, and send-to-all messages that got their first inbox row for the user.
 */
interface StateChange {
  directWereUnread: number;
  toAllFirstSeen: number;
}

/**
 * Sets read_at or deleted_at for (user, messages) where it is not set yet, creating rows for send-to-all
 * messages as needed, and says what changed. Each statement decides on the row as it is when it writes,
 * so of two concurrent reads of one message only one reports it (the other waits, then finds it set).
 */
export async function changeState(
  trx: Kysely<DB>,
  userId: number,
  messages: ReadonlyArray<{ id: number; target_type: string }>,
  field: keyof Pick<InboxTable, 'read_at' | 'deleted_at'>,
  t: number,
): Promise<StateChange> {
  const ids = (type: string) => messages.filter((m) => m.target_type === type).map((m) => Number(m.id));
  const change: StateChange = { directWereUnread: 0, toAllFirstSeen: 0 };
  for (const chunk of chunks(ids('user'), 1000)) {
    const rows = await trx
      .updateTable('inbox')
      .set({ [field]: t })
      .where('user_id', '=', userId)
      .where('message_id', 'in', chunk)
      .where(field, 'is', null)
      .where('deleted_at', 'is', null)
      .returning('read_at')
      .execute();
    // RETURNING gives the new row: read_at is t after a read, and unchanged by a delete.
    change.directWereUnread +=
      field === 'read_at' ? rows.length : rows.filter((r) => r.read_at === null).length;
  }
  for (const chunk of chunks(ids('all'), 1000)) {
    const row = (message_id: number) => ({
      user_id: userId,
      message_id,
      read_at: field === 'read_at' ? t : null,
      deleted_at: field === 'deleted_at' ? t : null,
    });
    const inserted = await trx
      .insertInto('inbox')
      .values(chunk.map(row))
      .onConflict((oc) => oc.columns(['user_id', 'message_id']).doNothing())
      .returning('message_id')
      .execute();
    change.toAllFirstSeen += inserted.length;
    const had = new Set(inserted.map((r) => Number(r.message_id)));
    const rest = chunk.filter((id) => !had.has(id));
    if (rest.length > 0)
      await trx
        .updateTable('inbox')
        .set({ [field]: t })
        .where('user_id', '=', userId)
        .where('message_id', 'in', rest)
        .where(field, 'is', null)
        .execute();
  }
  return change;
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** The users a send-to-all reaches: every enabled user. */
export async function countAllRecipients(db: Kysely<DB>): Promise<number> {
  const r = await db
    .selectFrom('users')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('disabled', '=', 0)
    .executeTakeFirstOrThrow();
  return Number(r.n);
}
