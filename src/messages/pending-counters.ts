/**
 * Pending sends (PostgreSQL; docs/decisions/0014-unread-counters.md, "Wide sends on PostgreSQL"): a send
 * to several users inserts one unread_pending row naming its message instead of locking its recipients'
 * counter rows; foldPending adds its +1 to their counters moments later, and counts read the pending
 * sends with the counters (countsQueryPg). The rest of the counters is in counters.repository.ts.
 */
import { sql, type Kysely, type RawBuilder } from 'kysely';
import type { DB } from '../store/schema.ts';

/**
 * On PostgreSQL a send to several users does not touch their counter rows: it inserts one row naming its
 * message (its recipients are the message's inbox rows), so it locks nothing a one-user send or another
 * wide send needs, and writes the same few bytes whatever its number of recipients. foldPending adds the
 * +1 to the recipients' counters moments later; until then counts add the pending sends (unreadCounts).
 */
export async function markPending(trx: Kysely<DB>, messageId: number): Promise<void> {
  await trx.insertInto('unread_pending').values({ message_id: messageId }).execute();
}

/** Recipients of one pending send folded per statement: the counter rows one statement locks. */
const FOLD_CHUNK = 1000;
/** Statements one fold runs at most (so up to FOLD_STATEMENTS × FOLD_CHUNK recipients per run). */
const FOLD_STATEMENTS = 20;

/**
 * Adds pending sends' +1 to their recipients' counters, FOLD_CHUNK recipients per statement, until none
 * is pending or FOLD_STATEMENTS statements ran. Each statement is its own transaction: it adds to the
 * next recipients (by user id) of the oldest pending send and moves its `folded_through` past them (or
 * deletes the row once all are done), so a count read before it sees those recipients pending and one
 * read after sees them in their counters, never both or neither. Several nodes may fold at once: a
 * pending row is locked by the statement folding it, and the others skip it. Returns the recipients
 * folded.
 */
export async function foldPending(db: Kysely<DB>, statements = FOLD_STATEMENTS): Promise<number> {
  let folded = 0;
  for (let i = 0; i < statements; i++) {
    const r = await foldChunk(db);
    if (r === undefined) break;
    folded += r;
  }
  return folded;
}

/** One fold statement; undefined when no pending send was free to fold. */
async function foldChunk(db: Kysely<DB>): Promise<number | undefined> {
  // The counter rows are locked in ascending user id order (the insert's ORDER BY), as every other
  // statement that locks several of them does; the pending row first, as nobody else locks it.
  const r = await sql<{ message_id: number | null; n: number }>`
    with m as (
      select message_id, folded_through from unread_pending
      order by message_id limit 1 for update skip locked),
    u as (
      select i.user_id from inbox i join m on i.message_id = m.message_id
      where i.user_id > m.folded_through
      order by i.user_id limit ${FOLD_CHUNK}),
    added as (
      insert into unread_counters (user_id, unread_direct, seen_all)
      select user_id, 1, 0 from u order by user_id
      on conflict (user_id) do update set unread_direct = unread_counters.unread_direct + 1
      returning 1),
    moved as (
      update unread_pending p set folded_through = (select max(user_id) from u)
      from m where p.message_id = m.message_id and (select count(*) from u) = ${FOLD_CHUNK}
      returning 1),
    done as (
      delete from unread_pending p using m
      where p.message_id = m.message_id and (select count(*) from u) < ${FOLD_CHUNK}
      returning 1)
    select (select message_id from m) as message_id, (select count(*) from added)::integer as n`.execute(db);
  const row = r.rows[0];
  return row?.message_id === null || row?.message_id === undefined ? undefined : Number(row.n);
}

/** A bigint[] parameter (one parameter whatever the number of ids). */
export function pgIds(ids: readonly number[]): RawBuilder<unknown> {
  return sql`${ids.map(String)}::bigint[]`;
}

/**
 * The same on PostgreSQL, with each user's pending sends (unread_pending: those whose +1 the fold has not
 * added to this user's counter yet), all in one statement.
 */
export function countsQueryPg(db: Kysely<DB>, users: readonly number[]) {
  const ids = pgIds(users);
  return sql<{
    live_all: number;
    user_id: number | null;
    unread_direct: number;
    seen_all: number;
    pending: number;
  }>`
    select t.live_all, c.user_id, c.unread_direct, c.seen_all, coalesce(p.n, 0)::integer as pending
    from inbox_totals t
    left join unread_counters c on c.user_id = any(${ids})
    left join (
      select i.user_id, count(*) as n
      from unread_pending q
      join inbox i on i.message_id = q.message_id and i.user_id > q.folded_through
      join unnest(${ids}) as u(id) on u.id = i.user_id
      group by i.user_id) p on p.user_id = c.user_id
    where t.id = 1`;
}
