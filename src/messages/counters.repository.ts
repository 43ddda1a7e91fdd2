/**
 * SQL for unread counters (docs/decisions/0014-unread-counters.md). A user's unread count is
 * `unread_direct + live_all - seen_all`: their unread direct messages, plus the send-to-all messages
 * that are live (not yet announced as expired), minus the live send-to-all ones they have read or
 * deleted. Every change updates these rows in its own transaction, so a count costs one row read. On
 * PostgreSQL a send to several users is marked pending instead (one unread_pending row naming its
 * message), and foldPending adds its +1 to the recipients' rows moments later: a count is the row plus
 * the user's pending sends, read in one statement.
 *
 * On PostgreSQL, counter rows are locked in ascending user id order by every statement that touches more
 * than one, and message rows before counter rows, so two transactions never wait for each other in a
 * circle (the event log writer still retries a deadlock: see event-log-writer.ts).
 */
import { sql, type Kysely } from 'kysely';
import type { Dialect } from '../store/database.ts';
import { EXPIRY_CURSOR_KEY } from '../store/migrate.ts';
import { prepared } from '../store/prepared.ts';
import type { DB } from '../store/schema.ts';
import { getMeta } from './event-log.repository.ts';
import { parseExpiryCursor } from './expiry.ts';
import { countsQueryPg, markPending, pgIds } from './pending-counters.ts';

/** User ids per statement that changes counters. */
const WRITE_CHUNK = 1000;
/** User ids per statement that reads counts. */
const READ_CHUNK = 5000;
/**
 * A send whose message expires within this long of the send locks the expiry announcer's position while
 * it commits (see bornAnnounced); a send transaction lasting longer than this is not expected.
 */
const EXPIRY_LOCK_HORIZON_MS = 10 * 60_000;

/** A change to the two parts of a user's counter. */
interface CounterDelta {
  unreadDirect: number;
  seenAll: number;
}

/** A message as the counters need it. */
interface CountedMessage {
  id: number;
  target_type: string;
  expires_at?: number | null;
}

/** Gives each of the users a zero counter unless they have one (in the transaction creating the users). */
export async function createCounterRows(trx: Kysely<DB>, userIds: readonly number[]): Promise<void> {
  for (let i = 0; i < userIds.length; i += WRITE_CHUNK) {
    await trx
      .insertInto('unread_counters')
      .values(
        userIds.slice(i, i + WRITE_CHUNK).map((user_id) => ({ user_id, unread_direct: 0, seen_all: 0 })),
      )
      .onConflict((oc) => oc.column('user_id').doNothing())
      .execute();
  }
}

/**
 * A new message starts counting: +1 unread direct for each target, or +1 live send-to-all. Nothing when
 * the expiry announcer has already passed the message (see bornAnnounced).
 */
export async function countSend(
  trx: Kysely<DB>,
  dialect: Dialect,
  message: CountedMessage,
  targetIds: readonly number[],
  t: number,
): Promise<void> {
  if (await bornAnnounced(trx, dialect, message, t)) return;
  if (message.target_type === 'all') return addToTotals(trx, 1);
  const delta = { unreadDirect: 1, seenAll: 0 };
  if (targetIds.length === 1) return addToUser(trx, targetIds[0] as number, delta);
  // PostgreSQL: one pending row for the send, no counter row locked (see markPending).
  if (dialect === 'postgres') return markPending(trx, message.id);
  // SQLite: one writer, so the order rows are updated in does not matter.
  for (let i = 0; i < targetIds.length; i += WRITE_CHUNK)
    await addToUsers(trx, targetIds.slice(i, i + WRITE_CHUNK), delta);
}

/**
 * Whether the expiry announcer already passed a message that is being sent: its transaction started
 * before the message's expiry but commits more than the announcer's grace after it (decision 0005). Such
 * a message is never announced, so it must not be counted. Only a message expiring within
 * EXPIRY_LOCK_HORIZON_MS can be passed; for those, PostgreSQL locks the position (shared) until commit,
 * so an announcer either finished before this reads it or waits and then sees the message.
 */
async function bornAnnounced(
  trx: Kysely<DB>,
  dialect: Dialect,
  message: CountedMessage,
  t: number,
): Promise<boolean> {
  const expires = message.expires_at ?? null;
  if (expires === null || expires > t + EXPIRY_LOCK_HORIZON_MS) return false;
  let q = trx.selectFrom('skypush_meta').select('value').where('key', '=', EXPIRY_CURSOR_KEY);
  if (dialect === 'postgres') q = q.forKeyShare();
  const position = parseExpiryCursor((await q.executeTakeFirst())?.value);
  return passed(position, { id: message.id, expires_at: expires });
}

/** The announcer's position (expires_at, id) is at or after the message's: its expiry was announced. */
function passed([at, id]: [number, number], m: { id: number; expires_at: number | null }): boolean {
  if (m.expires_at === null) return false;
  const e = Number(m.expires_at);
  return e < at || (e === at && Number(m.id) <= id);
}

/**
 * Of the messages, the ids whose expiry has not been announced. Before a user's read or delete changes a
 * counter: on PostgreSQL the message rows are locked (key share, in id order) first, so an announcer
 * announcing one of them either committed before the position is read here or waits for this commit
 * and then counts this change.
 */
export async function liveAmong(
  trx: Kysely<DB>,
  dialect: Dialect,
  ids: readonly number[],
): Promise<Set<number>> {
  const rows: Array<{ id: number; expires_at: number | null }> = [];
  const sorted = [...ids].sort((a, b) => a - b);
  for (let i = 0; i < sorted.length; i += READ_CHUNK) {
    let q = trx
      .selectFrom('messages')
      .select(['id', 'expires_at'])
      .where('id', 'in', sorted.slice(i, i + READ_CHUNK))
      .orderBy('id');
    if (dialect === 'postgres') q = q.forKeyShare();
    rows.push(...(await q.execute()));
  }
  const position = parseExpiryCursor(await getMeta(trx, EXPIRY_CURSOR_KEY));
  return new Set(rows.filter((m) => !passed(position, m)).map((m) => Number(m.id)));
}

const addToUserQuery = prepared((db, p: { userId: number; direct: number; seen: number }) =>
  db
    .updateTable('unread_counters')
    .set((eb) => ({
      unread_direct: eb('unread_direct', '+', p.direct),
      seen_all: eb('seen_all', '+', p.seen),
    }))
    .where('user_id', '=', p.userId),
);

/** Adds the delta to one user's counter (a read, read-all or delete by that user; a one-target send). */
export async function addToUser(trx: Kysely<DB>, userId: number, delta: CounterDelta): Promise<void> {
  if (delta.unreadDirect === 0 && delta.seenAll === 0) return;
  await addToUserQuery(trx, { userId, direct: delta.unreadDirect, seen: delta.seenAll });
}

/** Adds the same delta to each of up to WRITE_CHUNK users' counter rows (SQLite). */
async function addToUsers(trx: Kysely<DB>, userIds: readonly number[], delta: CounterDelta): Promise<void> {
  await trx
    .updateTable('unread_counters')
    .set((eb) => ({
      unread_direct: eb('unread_direct', '+', delta.unreadDirect),
      seen_all: eb('seen_all', '+', delta.seenAll),
    }))
    .where('user_id', 'in', userIds)
    .execute();
}

const addToTotalsQuery = prepared((db, p: { n: number }) =>
  db
    .updateTable('inbox_totals')
    .set((eb) => ({ live_all: eb('live_all', '+', p.n) }))
    .where('id', '=', 1),
);

async function addToTotals(trx: Kysely<DB>, n: number): Promise<void> {
  await addToTotalsQuery(trx, { n });
}

/**
 * The expiry of these messages was announced (in this transaction): each holder of a direct one that
 * had it unread (not deleted) loses one unread direct message; a send-to-all one stops being live, and
 * each user with an inbox row for it (read or deleted) loses one seen_all. One statement for all the
 * holders, however many: it runs after the message rows are locked (see liveAmong).
 */
export async function countExpired(
  trx: Kysely<DB>,
  dialect: Dialect,
  messages: readonly CountedMessage[],
): Promise<void> {
  if (messages.length === 0) return;
  const ids = messages.map((m) => Number(m.id)).sort((a, b) => a - b);
  if (dialect === 'postgres')
    await sql`select id from messages where id = any(${pgIds(ids)}) order by id for update`.execute(trx);
  const toAll = messages.filter((m) => m.target_type === 'all').length;
  if (toAll > 0) await addToTotals(trx, -toAll);
  const perUser = sql`
    select i.user_id,
      sum(case when m.target_type = 'user' then 1 else 0 end) as direct,
      sum(case when m.target_type = 'all' then 1 else 0 end) as seen
    from inbox i join messages m on m.id = i.message_id
    where i.message_id in (${sql.join(ids)})
      and (m.target_type = 'all' or (i.read_at is null and i.deleted_at is null))
    group by i.user_id`;
  if (dialect === 'sqlite') {
    await sql`
      update unread_counters
      set unread_direct = unread_counters.unread_direct - d.direct, seen_all = unread_counters.seen_all - d.seen
      from (${perUser}) as d where unread_counters.user_id = d.user_id`.execute(trx);
    return;
  }
  await sql`
    with d as materialized (${perUser}),
    locked as materialized (
      select user_id from unread_counters where user_id in (select user_id from d) order by user_id for update)
    update unread_counters c
    set unread_direct = c.unread_direct - d.direct, seen_all = c.seen_all - d.seen
    from d where c.user_id = d.user_id and c.user_id in (select user_id from locked)`.execute(trx);
}

/** Counts for up to READ_CHUNK users and the live send-to-all total, read in one statement (one snapshot). */
function countsQuery(db: Kysely<DB>, users: number | readonly number[]) {
  return db
    .selectFrom('inbox_totals as t')
    .leftJoin('unread_counters as c', (j) =>
      Array.isArray(users) ? j.on('c.user_id', 'in', users) : j.on('c.user_id', '=', users as number),
    )
    .select(['t.live_all', 'c.user_id', 'c.unread_direct', 'c.seen_all', sql<number>`0`.as('pending')])
    .where('t.id', '=', 1);
}

const countsOne = prepared((db, p: { userId: number }) => countsQuery(db, p.userId));

/**
 * Unread counts: one statement per READ_CHUNK users, each reading the users' counter rows (and on
 * PostgreSQL their pending sends) and the global row together. A user without a counter row (none is
 * created outside the users repository) counts the live send-to-all messages only.
 */
export async function unreadCounts(
  db: Kysely<DB>,
  dialect: Dialect,
  userIds: readonly number[],
): Promise<Map<number, number>> {
  const counts = new Map<number, number>();
  for (let i = 0; i < userIds.length; i += READ_CHUNK) {
    const chunk = userIds.slice(i, i + READ_CHUNK);
    const rows =
      dialect === 'postgres'
        ? (await countsQueryPg(db, chunk).execute(db)).rows
        : userIds.length === 1
          ? (await countsOne(db, { userId: userIds[0] as number })).rows
          : await countsQuery(db, chunk).execute();
    const liveAll = Number(rows[0]?.live_all ?? 0);
    for (const id of chunk) counts.set(id, liveAll);
    for (const r of rows)
      if (r.user_id !== null)
        counts.set(
          Number(r.user_id),
          Number(r.unread_direct) + Number(r.pending) + liveAll - Number(r.seen_all),
        );
  }
  return counts;
}
