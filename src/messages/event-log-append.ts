/**
 * Appending to the durable event log: the ordered part at the end of the caller's transaction
 * (docs/decisions/0001-event-cursors.md, 0009-events-by-reference.md).
 *
 * Commit order equals seq order. SQLite has a single writer. On PostgreSQL the append is the *ordered
 * part* of a transaction: it comes last, takes one transaction-scoped advisory lock, inserts a constant
 * number of small rows (one per send, whatever its number of targets) and commits; the bulk of a send
 * (message, inbox rows, counters) is written before, without the lock.
 *
 * A NEW_MESSAGE names its message. For a send to listed users it is one row with user_id RECIPIENTS:
 * the recipients are the message's inbox rows. To find a user's direct messages after a cursor without
 * scanning the whole log, resume reads the user's inbox rows with message_id ≥ the `mfloor` of the
 * cursor's event. mfloor is kept so that every message ordered after an event has an id ≥ its mfloor:
 * an append whose message id is below the newest mfloor is refused (OrderingConflict, retried by the
 * writer), and each append sets mfloor to the lowest message id still in flight — on PostgreSQL every
 * send holds a shared advisory lock keyed by its message id until it ends, read from pg_locks — so the
 * refusal is (next to) never taken.
 */
import { CompiledQuery, sql, type Kysely } from 'kysely';
import pg from 'pg';
import type { Dialect } from '../store/database.ts';
import { prepared } from '../store/prepared.ts';
import type { DB } from '../store/schema.ts';
import { RECIPIENTS, type EventRow } from './event-log.repository.ts';

export type NewEvent =
  /** One event for a user, or for everyone (userId null). */
  | { userId: number | null; type: string; data: unknown }
  /** A new message, by reference: to everyone, or to the recipients listed by its inbox rows. */
  | { newMessage: number; to: 'all' | 'recipients' }
  /** One event for each user who still holds the message (inbox row not deleted), expanded in SQL. */
  | { holdersOf: number; type: string; data: unknown };

/** An append would break the mfloor rule (a message drawn long before, ordered late): retry the transaction. */
export class OrderingConflict extends Error {
  constructor() {
    super('event log ordering conflict: retry the transaction');
  }
}

/** Arbitrary constant naming the event-log lock among advisory locks. */
const EVENT_LOG_LOCK = 0x736b7970;
/** High half of the advisory-lock keys that mark a send in flight: (tag + id / 2^32, id mod 2^32). */
const IN_FLIGHT_TAG = 0x736b6d00;

/** SQL taking the shared in-flight lock of message `id` (PostgreSQL): for insertMessage's RETURNING. */
export const holdInFlight = (id: string) =>
  sql<string>`pg_advisory_xact_lock_shared((${sql.lit(IN_FLIGHT_TAG)}::bigint << 32) + ${sql.ref(id)})`;

/** The lowest message id whose send is in flight on any node (PostgreSQL), or undefined. */
async function inFlightFloor(trx: Kysely<DB>): Promise<number | undefined> {
  const r = await sql<{ f: string | null }>`
    select min(((classid::bigint - ${sql.lit(IN_FLIGHT_TAG)}) << 32) | objid::bigint) as f
    from pg_locks
    where locktype = 'advisory' and objsubid = 1
      and database = (select oid from pg_database where datname = current_database())
      and classid::bigint >= ${sql.lit(IN_FLIGHT_TAG)} and classid::bigint < ${sql.lit(IN_FLIGHT_TAG + 256)}`.execute(
    trx,
  );
  const f = r.rows[0]?.f;
  return f === null || f === undefined ? undefined : Number(f);
}

const lastFloorQuery = prepared((db, _p: Record<string, never>) =>
  db.selectFrom('events').select('mfloor').orderBy('seq', 'desc').limit(1),
);

/** JSON.stringify that serialises each object once (one payload appended for several users). */
function jsonOnce(): (data: unknown) => string {
  const texts = new Map<unknown, string>();
  return (data) => {
    let text = texts.get(data);
    if (text === undefined) texts.set(data, (text = JSON.stringify(data)));
    return text;
  };
}

/** A row of the events table as appended: every column but seq. */
type Row = Omit<EventRow, 'seq'>;

/** The rows of one event (undefined for one expanded in SQL: holdersOf). */
function rowOf(e: NewEvent, mfloor: number, t: number, json: (data: unknown) => string): Row | undefined {
  if ('holdersOf' in e) return undefined;
  if ('newMessage' in e)
    return {
      user_id: e.to === 'all' ? null : RECIPIENTS,
      type: 'NEW_MESSAGE',
      data: '',
      message_id: e.newMessage,
      mfloor,
      created_at: t,
    };
  return { user_id: e.userId, type: e.type, data: json(e.data), message_id: null, mfloor, created_at: t };
}

// Most changes append one row, so that statement is prepared (store/prepared.ts).
const insertOne = prepared((db, p: Row) =>
  db
    .insertInto('events')
    .values({
      user_id: p.user_id,
      type: p.type,
      data: p.data,
      message_id: p.message_id,
      mfloor: p.mfloor,
      created_at: p.created_at,
    })
    .returning('seq'),
);

/**
 * The rows one transaction appended, with their seqs, for the node's tail read (SQLite: see
 * AppendedRows in reader-caches.ts). `complete` turns false when some rows' contents are not known here
 * (holdersOf, expanded in SQL): then none are handed on.
 */
export interface AppendedOut {
  rows: EventRow[];
  complete: boolean;
}

/** Inserts rows (≤ 1000 per statement); returns the highest seq. */
async function insertRows(trx: Kysely<DB>, rows: Row[], out: AppendedOut | undefined): Promise<number> {
  if (rows.length === 1) {
    const row = rows[0] as Row;
    const seq = Number((await insertOne(trx, row)).rows[0]?.seq ?? 0);
    out?.rows.push({ ...row, seq });
    return seq;
  }
  let head = 0;
  for (let i = 0; i < rows.length; i += 1000) {
    const chunk = rows.slice(i, i + 1000);
    const r = await trx.insertInto('events').values(chunk).returning('seq').execute();
    // RETURNING's order is unspecified, but the rows of one INSERT take rising seqs in VALUES order.
    const seqs = r.map((x) => Number(x.seq)).sort((a, b) => a - b);
    for (const seq of seqs) head = Math.max(head, seq);
    if (out) chunk.forEach((row, k) => out.rows.push({ ...row, seq: seqs[k] as number }));
  }
  return head;
}

/**
 * The ordered part: appends `events` in the caller's transaction and returns the highest seq written
 * (0 when none). Call it last in the transaction: on PostgreSQL it holds the event-log lock until commit.
 */
export async function appendEvents(
  trx: Kysely<DB>,
  dialect: Dialect,
  events: readonly NewEvent[],
  t: number,
  out?: AppendedOut,
): Promise<number> {
  if (events.length === 0) return 0;
  if (dialect === 'postgres' && events.every((e) => !('holdersOf' in e)))
    return appendByFunction(trx, events, t, false);
  const own = ownMessageId(events);
  const floor = own === undefined ? 0 : dialect === 'postgres' ? ((await inFlightFloor(trx)) ?? own) : own;
  if (dialect === 'postgres') await sql`select pg_advisory_xact_lock(${EVENT_LOG_LOCK})`.execute(trx);
  // SQLite runs one transaction at a time and never reuses a message id (AUTOINCREMENT), so a send's own
  // id is above every mfloor written before: it is the mfloor, with nothing to read. Other changes
  // carry the newest mfloor on.
  const sqliteSend = dialect === 'sqlite' && own !== undefined;
  const prev = sqliteSend ? 0 : Number((await lastFloorQuery(trx, {})).rows[0]?.mfloor ?? 0);
  if (own !== undefined && own < prev) throw new OrderingConflict();
  const mfloor = Math.max(prev, Math.min(floor, own ?? floor));
  const json = jsonOnce();
  // In the given order: runs of plain rows, and each holdersOf expanded in its place.
  let head = 0;
  let run: Row[] = [];
  for (const e of events) {
    const row = rowOf(e, mfloor, t, json);
    if (row) {
      run.push(row);
      continue;
    }
    if (out) out.complete = false;
    head = Math.max(head, await insertRows(trx, run, out), await appendForHolders(trx, e, mfloor, t));
    run = [];
  }
  return Math.max(head, await insertRows(trx, run, out));
}

/** SQLSTATE the skypush_append function raises for an OrderingConflict (migration 0007). */
const ORDERING_CONFLICT_STATE = 'SKY01';

/** The rows skypush_append inserts, as its JSON argument (no holdersOf events). */
function rowsJson(events: readonly NewEvent[], t: number): string {
  const json = jsonOnce();
  // mfloor is set by the function (it knows the newest one); 0 here is a placeholder.
  return JSON.stringify(events.map((e, ord) => ({ ord, ...(rowOf(e, 0, t, json) as Row) })));
}

const isConflict = (err: unknown) => (err as { code?: string } | null)?.code === ORDERING_CONFLICT_STATE;

/**
 * The ordered part and the COMMIT of the transaction open on `conn` (BEGIN sent by the caller), on
 * PostgreSQL, as ONE protocol message: `select … skypush_append(…); commit`, a simple query of two
 * statements (values written in as literals, since such a query takes no parameters). PostgreSQL runs
 * the COMMIT right after the call, so the event-log lock is held for the call and the commit only —
 * never for a round trip, nor while this node's event loop is busy elsewhere (node-postgres sends a
 * query only after the previous one's answer has been read). If the call fails, PostgreSQL skips the
 * COMMIT and the transaction is rolled back here. Returns the head; throws OrderingConflict or the
 * error. Events with holdersOf take appendEvents and a plain COMMIT.
 */
export async function appendAndCommit(
  conn: Kysely<DB>,
  events: readonly NewEvent[],
  t: number,
): Promise<number> {
  if (events.length === 0 || events.some((e) => 'holdersOf' in e)) {
    const head = await appendEvents(conn, 'postgres', events, t);
    await sql`commit`.execute(conn);
    return head;
  }
  return appendByFunction(conn, events, t, true);
}

/**
 * The ordered part on PostgreSQL as one call of skypush_append (migration 0007: lock, newest mfloor,
 * refusal, insert), its arguments written into the text as literals so that `; commit` can follow in
 * the same message when `commit` is set. No holdersOf events.
 */
async function appendByFunction(
  trx: Kysely<DB>,
  events: readonly NewEvent[],
  t: number,
  commit: boolean,
): Promise<number> {
  const own = ownMessageId(events);
  // Before the lock: a look at pg_locks is not free, and any later send draws a larger id anyway.
  const floor = own === undefined ? 0 : Math.min((await inFlightFloor(trx)) ?? own, own);
  const text =
    `select head from skypush_append(${integer(EVENT_LOG_LOCK)}, ${pg.escapeLiteral(rowsJson(events, t))}::jsonb, ` +
    `${own === undefined ? 'null' : integer(own)}, ${integer(floor)})${commit ? '; commit' : ''}`;
  try {
    const r = await trx.executeQuery<{ head: number }>(CompiledQuery.raw(text));
    return Number(r.rows[0]?.head ?? 0);
  } catch (err) {
    // The COMMIT did not run (or failed): end the transaction. Outside one, this only warns.
    if (commit) await sql`rollback`.execute(trx).catch(() => {});
    throw isConflict(err) ? new OrderingConflict() : err;
  }
}

/** A number written into SQL text: only a safe integer. */
function integer(n: number): string {
  if (!Number.isSafeInteger(n)) throw new Error(`not an integer: ${n}`);
  return String(n);
}

/** The lowest message id among the events' new messages. */
function ownMessageId(events: readonly NewEvent[]): number | undefined {
  const ids = events.flatMap((e) => ('newMessage' in e ? [e.newMessage] : []));
  return ids.length > 0 ? Math.min(...ids) : undefined;
}

/** One event per holder of the message, in one INSERT … SELECT; returns the highest seq (0 if none). */
async function appendForHolders(trx: Kysely<DB>, e: NewEvent, mfloor: number, t: number): Promise<number> {
  if (!('holdersOf' in e)) return 0;
  const r = await trx
    .insertInto('events')
    .columns(['user_id', 'type', 'data', 'message_id', 'mfloor', 'created_at'])
    .expression((eb) =>
      eb
        .selectFrom('inbox')
        .select((s) => [
          'inbox.user_id',
          s.val(e.type).as('type'),
          s.val(JSON.stringify(e.data)).as('data'),
          sql<null>`null`.as('message_id'),
          s.val(mfloor).as('mfloor'),
          s.val(t).as('created_at'),
        ])
        .where('inbox.message_id', '=', e.holdersOf)
        .where('inbox.deleted_at', 'is', null)
        .orderBy('inbox.user_id'),
    )
    .returning('seq')
    .execute();
  let head = 0;
  for (const x of r) head = Math.max(head, Number(x.seq));
  return head;
}
