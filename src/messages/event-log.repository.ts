/**
 * The durable event log: SQL for appending events inside the caller's transaction and reading them back
 * in order. Commit order equals seq order on both dialects: SQLite has a single writer; on PostgreSQL
 * appenders take one transaction-scoped advisory lock before drawing seq values, so a reader that sees
 * seq N also sees every seq below N that will ever commit (docs/decisions/0001-event-cursors.md).
 */
import { sql, type Kysely, type Selectable } from 'kysely';
import type { Dialect } from '../store/database.ts';
import { prepared } from '../store/prepared.ts';
import type { DB, EventTable } from '../store/schema.ts';

export type EventRow = Selectable<EventTable>;

export interface NewEvent {
  userId: number | null;
  type: string;
  data: unknown;
}

/** Arbitrary constant naming the event-log lock among advisory locks. */
const EVENT_LOG_LOCK = 0x736b7970;

// The statements that every send and every tail read run are prepared (store/prepared.ts).
const appendOne = prepared(
  (db, p: { user_id: number | null; type: string; data: string; created_at: number }) =>
    db
      .insertInto('events')
      .values({ user_id: p.user_id, type: p.type, data: p.data, created_at: p.created_at })
      .returning('seq'),
);

const readAfterQuery = prepared((db, p: { afterSeq: number; limit: number }) =>
  db.selectFrom('events').selectAll().where('seq', '>', p.afterSeq).orderBy('seq').limit(p.limit),
);

/** Appends events in the caller's transaction; returns the highest seq written. Call last in the transaction. */
export async function appendEvents(
  trx: Kysely<DB>,
  dialect: Dialect,
  events: readonly NewEvent[],
  now: number,
): Promise<number> {
  if (events.length === 0) return 0;
  if (dialect === 'postgres') await sql`select pg_advisory_xact_lock(${EVENT_LOG_LOCK})`.execute(trx);
  let head = 0;
  // A send to many users appends the same payload object once per target: serialise it once.
  const json = new Map<unknown, string>();
  const dataJson = (data: unknown) => {
    let text = json.get(data);
    if (text === undefined) json.set(data, (text = JSON.stringify(data)));
    return text;
  };
  if (events.length === 1) {
    const e = events[0] as NewEvent;
    const row = { user_id: e.userId, type: e.type, data: dataJson(e.data), created_at: now };
    return Number((await appendOne(trx, row)).rows[0]?.seq ?? 0);
  }
  for (let i = 0; i < events.length; i += 1000) {
    const rows = await trx
      .insertInto('events')
      .values(
        events
          .slice(i, i + 1000)
          .map((e) => ({ user_id: e.userId, type: e.type, data: dataJson(e.data), created_at: now })),
      )
      .returning('seq')
      .execute();
    for (const r of rows) head = Math.max(head, Number(r.seq));
  }
  return head;
}

const headSeqQuery = prepared((db, _p: Record<string, never>) =>
  db.selectFrom('events').select((eb) => eb.fn.max('seq').as('m')),
);

export async function headSeq(db: Kysely<DB>): Promise<number> {
  return Number((await headSeqQuery(db, {})).rows[0]?.m ?? 0);
}

/** Every event after `afterSeq`, oldest first (the hub's tail read). */
export async function readAfter(db: Kysely<DB>, afterSeq: number, limit: number): Promise<EventRow[]> {
  return (await readAfterQuery(db, { afterSeq, limit })).rows;
}

/** Events visible to one user in (afterSeq, uptoSeq], oldest first: theirs and everyone's. */
const readForUserQuery = prepared(
  (db, p: { userId: number; afterSeq: number; uptoSeq: number; limit: number }) =>
    db
      .selectFrom('events')
      .selectAll()
      .where((eb) => eb.or([eb('user_id', '=', p.userId), eb('user_id', 'is', null)]))
      .where('seq', '>', p.afterSeq)
      .where('seq', '<=', p.uptoSeq)
      .orderBy('seq')
      .limit(p.limit),
);

export async function readForUser(
  db: Kysely<DB>,
  userId: number,
  afterSeq: number,
  uptoSeq: number,
  limit: number,
): Promise<EventRow[]> {
  return (await readForUserQuery(db, { userId, afterSeq, uptoSeq, limit })).rows;
}

const getMetaQuery = prepared((db, p: { key: string }) =>
  db.selectFrom('skypush_meta').select('value').where('key', '=', p.key),
);

export async function getMeta(db: Kysely<DB>, key: string): Promise<string | undefined> {
  return (await getMetaQuery(db, { key })).rows[0]?.value;
}

/** getMeta inside a transaction, holding the row until it ends (PostgreSQL; SQLite has one writer). */
export async function getMetaLocked(
  trx: Kysely<DB>,
  dialect: Dialect,
  key: string,
): Promise<string | undefined> {
  let q = trx.selectFrom('skypush_meta').select('value').where('key', '=', key);
  if (dialect === 'postgres') q = q.forUpdate();
  return (await q.executeTakeFirst())?.value;
}

export async function setMeta(db: Kysely<DB>, key: string, value: string): Promise<void> {
  await db
    .insertInto('skypush_meta')
    .values({ key, value })
    .onConflict((oc) => oc.column('key').doUpdateSet({ value }))
    .execute();
}

/**
 * Deletes up to `limit` of the oldest events created before `before`; records the highest deleted seq
 * as `pruned_through` in the same transaction, so a cursor at or below it is known to be stale.
 */
export async function pruneEvents(db: Kysely<DB>, before: number, limit: number): Promise<number> {
  return db.transaction().execute(async (trx) => {
    const rows = await trx
      .selectFrom('events')
      .select('seq')
      .where('created_at', '<', before)
      .orderBy('seq')
      .limit(limit)
      .execute();
    const last = rows.at(-1);
    if (!last) return 0;
    const upto = Number(last.seq);
    await trx.deleteFrom('events').where('seq', '<=', upto).execute();
    const prev = Number((await getMeta(trx, 'pruned_through')) ?? 0);
    await setMeta(trx, 'pruned_through', String(Math.max(prev, upto)));
    return rows.length;
  });
}
