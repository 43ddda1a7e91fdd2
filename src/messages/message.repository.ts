/**
 * SQL for the `messages` table: storing a message, and finding and deleting expired ones for the expiry
 * announcer (expiry.ts). What a user sees of a message is in inbox.repository.ts.
 */
import type { Expression, ExpressionBuilder, Kysely, Selectable, SqlBool } from 'kysely';
import type { Dialect } from '../store/database.ts';
import { prepared } from '../store/prepared.ts';
import type { DB, MessageTable } from '../store/schema.ts';
import { holdInFlight } from './event-log-append.ts';

export type MessageRow = Selectable<MessageTable>;
export type NewMessageRow = Omit<MessageRow, 'id'>;

/** The message has no expiry or it is still ahead of `now`. */
export function notExpired(eb: ExpressionBuilder<DB, 'messages'>, now: number): Expression<SqlBool> {
  return eb.or([eb('messages.expires_at', 'is', null), eb('messages.expires_at', '>', now)]);
}

/** INSERT of a message returning its id; on PostgreSQL also marking the send in flight until it ends. */
function insertMessageQuery(db: Kysely<DB>, p: NewMessageRow, inFlight: boolean) {
  const q = db.insertInto('messages').values({
    title: p.title,
    content: p.content,
    message_type: p.message_type,
    priority: p.priority,
    sender_id: p.sender_id,
    sender_name: p.sender_name,
    link_url: p.link_url,
    target_type: p.target_type,
    created_at: p.created_at,
    expires_at: p.expires_at,
  });
  return inFlight ? q.returning(['id', holdInFlight('id').as('in_flight')]) : q.returning('id');
}

// Every send runs this statement, so it is prepared (store/prepared.ts).
const insertPlain = prepared((db, p: NewMessageRow) => insertMessageQuery(db, p, false));
const insertInFlight = prepared((db, p: NewMessageRow) => insertMessageQuery(db, p, true));

/**
 * Stores a message; returns its id. On PostgreSQL the transaction holds a shared advisory lock keyed by
 * the id until it ends, so that the event log's ordered part sees which sends are in flight
 * (event-log-append.ts).
 */
export async function insertMessage(trx: Kysely<DB>, dialect: Dialect, row: NewMessageRow): Promise<number> {
  const r = (await (dialect === 'postgres' ? insertInFlight : insertPlain)(trx, row)).rows[0];
  if (!r) throw new Error('insert into messages returned no id');
  return Number(r.id);
}

/** An expired message as the announcer needs it. */
export interface ExpiredMessageRow {
  id: number;
  target_type: string;
  expires_at: number | null;
}

/**
 * Messages that expired after the position (`afterAt`, `afterId`) and at or before `upto`, in expiry
 * order: what the expiry announcer has still to announce.
 */
export function expiredAfter(
  db: Kysely<DB>,
  afterAt: number,
  afterId: number,
  upto: number,
  limit: number,
): Promise<ExpiredMessageRow[]> {
  return db
    .selectFrom('messages')
    .select(['id', 'target_type', 'expires_at'])
    .where((eb) =>
      eb.or([
        eb('expires_at', '>', afterAt),
        eb.and([eb('expires_at', '=', afterAt), eb('id', '>', afterId)]),
      ]),
    )
    .where('expires_at', '<=', upto)
    .orderBy('expires_at')
    .orderBy('id')
    .limit(limit)
    .execute();
}

/**
 * Deletes up to `limit` messages that expired at or before the position (`at`, `id`), oldest first, and
 * by ON DELETE CASCADE their inbox rows; returns how many. A message stays while an event of the log
 * still names it (until the event is pruned), so that replay can show it.
 */
export async function deleteAnnounced(
  db: Kysely<DB>,
  at: number,
  id: number,
  limit: number,
): Promise<number> {
  const r = await db
    .deleteFrom('messages')
    .where('id', 'in', (eb) =>
      eb
        .selectFrom('messages')
        .select('id')
        .where((w) => w.or([w('expires_at', '<', at), w.and([w('expires_at', '=', at), w('id', '<=', id)])]))
        // Kept while its +1 is not in every recipient's counter yet (the fold reads its inbox rows).
        .where((w) =>
          w.not(
            w.exists(
              w
                .selectFrom('unread_pending')
                .select('unread_pending.message_id')
                .whereRef('unread_pending.message_id', '=', 'messages.id'),
            ),
          ),
        )
        // Kept while an event names it: a replayed NEW_MESSAGE is built from the message.
        .where((w) =>
          w.not(
            w.exists(
              w.selectFrom('events').select('events.seq').whereRef('events.message_id', '=', 'messages.id'),
            ),
          ),
        )
        .orderBy('expires_at')
        .limit(limit),
    )
    .executeTakeFirst();
  return Number(r.numDeletedRows);
}
