/**
 * SQL for per-user inbox state and what a user sees of messages. A direct message has an inbox row per
 * target from the start; a send-to-all message is stored once and gets an inbox row for a user only when
 * that user reads or deletes it (docs/decisions/0002-send-to-all-stored-once.md).
 */
import { sql, type Expression, type ExpressionBuilder, type Kysely, type SqlBool } from 'kysely';
import { prepared } from '../store/prepared.ts';
import type { DB, InboxTable } from '../store/schema.ts';
import { notExpired, type MessageRow } from './message.repository.ts';

export type InboxItemRow = MessageRow & { read_at: number | null };
export type Status = 'unread' | 'read' | 'all';

const CHUNK = 5000;

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
 * the same statement; returns how many rows were inserted.
 */
export async function insertInboxRows(
  trx: Kysely<DB>,
  messageId: number,
  userIds: readonly number[],
): Promise<number> {
  if (userIds.length === 1) {
    const r = await insertInboxRow(trx, { messageId, userId: userIds[0] as number });
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

const liveToAllCount = prepared((db, p: { now: number }) =>
  db
    .selectFrom('messages')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('target_type', '=', 'all')
    .where((eb) => notExpired(eb, p.now)),
);

/**
 * Per user (one id or a list) and target type: unread direct messages, and send-to-all messages read or
 * deleted (which count against the number of live send-to-all messages).
 */
function countAdjustmentsQuery(db: Kysely<DB>, users: number | readonly number[], now: number) {
  return db
    .selectFrom('inbox')
    .innerJoin('messages', 'messages.id', 'inbox.message_id')
    .select(['inbox.user_id', 'messages.target_type', (eb) => eb.fn.countAll<number>().as('n')])
    .where('inbox.user_id', Array.isArray(users) ? 'in' : '=', users)
    .where((eb) => notExpired(eb, now))
    .where((eb) =>
      eb.or([
        eb.and([
          eb('messages.target_type', '=', 'user'),
          eb('inbox.read_at', 'is', null),
          eb('inbox.deleted_at', 'is', null),
        ]),
        eb.and([
          eb('messages.target_type', '=', 'all'),
          eb.or([eb('inbox.read_at', 'is not', null), eb('inbox.deleted_at', 'is not', null)]),
        ]),
      ]),
    )
    .groupBy(['inbox.user_id', 'messages.target_type']);
}

const countAdjustmentsOne = prepared((db, p: { userId: number; now: number }) =>
  countAdjustmentsQuery(db, p.userId, p.now),
);

/**
 * Unread counts for many users in two queries per 5000 users whatever their number: the number of live
 * send-to-all messages, then per user their unread direct messages and the send-to-all messages they
 * have read or deleted.
 */
export async function unreadCounts(
  db: Kysely<DB>,
  userIds: readonly number[],
  now: number,
): Promise<Map<number, number>> {
  const counts = new Map<number, number>();
  if (userIds.length === 0) return counts;
  const total = Number((await liveToAllCount(db, { now })).rows[0]?.n ?? 0);
  for (const id of userIds) counts.set(id, total);
  for (let i = 0; i < userIds.length; i += CHUNK) {
    const rows =
      userIds.length === 1
        ? (await countAdjustmentsOne(db, { userId: userIds[0] as number, now })).rows
        : await countAdjustmentsQuery(db, userIds.slice(i, i + CHUNK), now).execute();
    for (const r of rows) {
      const uid = Number(r.user_id);
      const n = Number(r.n);
      counts.set(uid, (counts.get(uid) ?? 0) + (r.target_type === 'user' ? n : -n));
    }
  }
  return counts;
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

/** Sets read_at or deleted_at for (user, messages), creating rows for send-to-all messages as needed. */
export async function upsertState(
  trx: Kysely<DB>,
  userId: number,
  messageIds: readonly number[],
  field: keyof Pick<InboxTable, 'read_at' | 'deleted_at'>,
  t: number,
): Promise<void> {
  for (let i = 0; i < messageIds.length; i += 1000) {
    await trx
      .insertInto('inbox')
      .values(
        messageIds.slice(i, i + 1000).map((message_id) => ({
          user_id: userId,
          message_id,
          read_at: field === 'read_at' ? t : null,
          deleted_at: field === 'deleted_at' ? t : null,
        })),
      )
      .onConflict((oc) => oc.columns(['user_id', 'message_id']).doUpdateSet({ [field]: t }))
      .execute();
  }
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
