/**
 * SQL for messages and per-user inbox state. A direct message has an inbox row per target from the
 * start; a send-to-all message is stored once and gets an inbox row for a user only when that user
 * reads or deletes it (docs/decisions/0002-send-to-all-stored-once.md).
 */
import type { Expression, ExpressionBuilder, Kysely, Selectable, SqlBool } from 'kysely';
import type { DB, IdempotencyTable, InboxTable, MessageTable } from '../store/schema.ts';

export type MessageRow = Selectable<MessageTable>;
export type InboxItemRow = MessageRow & { read_at: number | null };
export type Status = 'unread' | 'read' | 'all';

const CHUNK = 5000;

function notExpired(eb: ExpressionBuilder<DB, 'messages'>, now: number): Expression<SqlBool> {
  return eb.or([eb('messages.expires_at', 'is', null), eb('messages.expires_at', '>', now)]);
}

export async function insertMessage(trx: Kysely<DB>, row: Omit<MessageRow, 'id'>): Promise<number> {
  const r = await trx.insertInto('messages').values(row).returning('id').executeTakeFirstOrThrow();
  return Number(r.id);
}

export async function insertInboxRows(
  trx: Kysely<DB>,
  messageId: number,
  userIds: readonly number[],
): Promise<void> {
  for (let i = 0; i < userIds.length; i += 1000) {
    await trx
      .insertInto('inbox')
      .values(
        userIds
          .slice(i, i + 1000)
          .map((user_id) => ({ user_id, message_id: messageId, read_at: null, deleted_at: null })),
      )
      .execute();
  }
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

export interface InboxQuery {
  beforeId: number | undefined;
  limit: number;
  status: Status;
  messageType: string | undefined;
  now: number;
}

/** One page of the inbox, newest first: direct and send-to-all messages merged by id. */
export async function listInbox(db: Kysely<DB>, userId: number, q: InboxQuery): Promise<InboxItemRow[]> {
  const direct = db
    .selectFrom('inbox')
    .innerJoin('messages', 'messages.id', 'inbox.message_id')
    .selectAll('messages')
    .select('inbox.read_at')
    .where('inbox.user_id', '=', userId)
    .where('messages.target_type', '=', 'user')
    .where('inbox.deleted_at', 'is', null)
    .where((eb) => notExpired(eb, q.now))
    .$if(q.beforeId !== undefined, (qb) => qb.where('messages.id', '<', q.beforeId as number))
    .$if(q.status === 'unread', (qb) => qb.where('inbox.read_at', 'is', null))
    .$if(q.status === 'read', (qb) => qb.where('inbox.read_at', 'is not', null))
    .$if(q.messageType !== undefined, (qb) => qb.where('messages.message_type', '=', q.messageType as string))
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
    .where('inbox.deleted_at', 'is', null)
    .where((eb) => notExpired(eb, q.now))
    .$if(q.beforeId !== undefined, (qb) => qb.where('messages.id', '<', q.beforeId as number))
    .$if(q.status === 'unread', (qb) => qb.where('inbox.read_at', 'is', null))
    .$if(q.status === 'read', (qb) => qb.where('inbox.read_at', 'is not', null))
    .$if(q.messageType !== undefined, (qb) => qb.where('messages.message_type', '=', q.messageType as string))
    .orderBy('messages.id', 'desc')
    .limit(q.limit);
  const [a, b] = await Promise.all([direct.execute(), toAll.execute()]);
  return [...a, ...b].sort((x, y) => Number(y.id) - Number(x.id)).slice(0, q.limit);
}

/**
 * Unread counts for many users in three queries whatever their number: direct unread per user, the
 * number of live send-to-all messages, and per user how many of those they have read or deleted.
 */
export async function unreadCounts(
  db: Kysely<DB>,
  userIds: readonly number[],
  now: number,
): Promise<Map<number, number>> {
  const counts = new Map<number, number>();
  if (userIds.length === 0) return counts;
  const total = await db
    .selectFrom('messages')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('target_type', '=', 'all')
    .where((eb) => notExpired(eb, now))
    .executeTakeFirstOrThrow();
  for (const id of userIds) counts.set(id, Number(total.n));
  for (let i = 0; i < userIds.length; i += CHUNK) {
    const ids = userIds.slice(i, i + CHUNK);
    const rows = await db
      .selectFrom('inbox')
      .innerJoin('messages', 'messages.id', 'inbox.message_id')
      .select(['inbox.user_id', 'messages.target_type', (eb) => eb.fn.countAll<number>().as('n')])
      .where('inbox.user_id', 'in', ids)
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
      .groupBy(['inbox.user_id', 'messages.target_type'])
      .execute();
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

export function findIdempotency(
  db: Kysely<DB>,
  senderId: number,
  key: string,
): Promise<Selectable<IdempotencyTable> | undefined> {
  return db
    .selectFrom('idempotency_keys')
    .selectAll()
    .where('sender_id', '=', senderId)
    .where('key', '=', key)
    .executeTakeFirst();
}

export async function insertIdempotency(trx: Kysely<DB>, row: Selectable<IdempotencyTable>): Promise<void> {
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

export async function pruneIdempotency(db: Kysely<DB>, before: number): Promise<void> {
  await db.deleteFrom('idempotency_keys').where('created_at', '<', before).execute();
}

export async function countMessages(db: Kysely<DB>): Promise<number> {
  const r = await db
    .selectFrom('messages')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .executeTakeFirstOrThrow();
  return Number(r.n);
}
