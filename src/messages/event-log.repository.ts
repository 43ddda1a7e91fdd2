/**
 * The durable event log, read side: the tail read, a user's events for resume, the prune, and the
 * skypush_meta keys beside the log. Appending (the ordered part of a transaction, and why commit order
 * is seq order) is in event-log-append.ts (docs/decisions/0001-event-cursors.md, 0009).
 */
import { sql, type Kysely, type Selectable } from 'kysely';
import type { Dialect } from '../store/database.ts';
import { prepared } from '../store/prepared.ts';
import { PRUNED_THROUGH_KEY } from '../store/migrate.ts';
import type { DB, EventTable } from '../store/schema.ts';

export type EventRow = Selectable<EventTable>;

/** user_id of a NEW_MESSAGE to listed users: for the message's recipients (its inbox rows). */
export const RECIPIENTS = -1;

const headSeqQuery = prepared((db, _p: Record<string, never>) =>
  db.selectFrom('events').select((eb) => eb.fn.max('seq').as('m')),
);

export async function headSeq(db: Kysely<DB>): Promise<number> {
  return Number((await headSeqQuery(db, {})).rows[0]?.m ?? 0);
}

const readAfterQuery = prepared((db, p: { afterSeq: number; limit: number }) =>
  db.selectFrom('events').selectAll().where('seq', '>', p.afterSeq).orderBy('seq').limit(p.limit),
);

/** Every event after `afterSeq`, oldest first (the hub's tail read). */
export async function readAfter(db: Kysely<DB>, afterSeq: number, limit: number): Promise<EventRow[]> {
  return (await readAfterQuery(db, { afterSeq, limit })).rows;
}

// The tail read usually finds one send at a time: that statement is prepared (store/prepared.ts).
const recipientsOfOne = prepared((db, p: { id: number }) =>
  db.selectFrom('inbox').select('user_id').where('message_id', '=', p.id),
);

/** The recipients of direct messages (their inbox rows, deleted or not), by message id. */
export async function recipientsOf(
  db: Kysely<DB>,
  messageIds: readonly number[],
): Promise<Map<number, number[]>> {
  const out = new Map<number, number[]>();
  if (messageIds.length === 1) {
    const id = messageIds[0] as number;
    out.set(
      id,
      (await recipientsOfOne(db, { id })).rows.map((r) => Number(r.user_id)),
    );
    return out;
  }
  for (let i = 0; i < messageIds.length; i += 1000) {
    const rows = await db
      .selectFrom('inbox')
      .select(['message_id', 'user_id'])
      .where('message_id', 'in', messageIds.slice(i, i + 1000))
      .execute();
    for (const r of rows) {
      const id = Number(r.message_id);
      let list = out.get(id);
      if (!list) out.set(id, (list = []));
      list.push(Number(r.user_id));
    }
  }
  return out;
}

/** The mfloor of the newest event at or before `afterSeq` (0 when there is none): a resume's floor. */
const floorBefore = (db: Kysely<DB>, afterSeq: number) =>
  db.selectNoFrom((eb) =>
    eb.fn
      .coalesce(
        eb.selectFrom('events').select('mfloor').where('seq', '<=', afterSeq).orderBy('seq', 'desc').limit(1),
        eb.lit(0),
      )
      .as('floor'),
  );

/** What resume reads of a user's events: after `afterSeq`, up to `uptoSeq`, direct ones from `floor`. */
type UserRange = {
  userId: number;
  afterSeq: number;
  uptoSeq: number;
  floor: number;
};

/** The user's own events and everyone's (and rows from before the reference scheme), oldest first. */
function ownAndEveryone(db: Kysely<DB>, r: Omit<UserRange, 'floor'>) {
  return db
    .selectFrom('events')
    .where((eb) => eb.or([eb('events.user_id', '=', r.userId), eb('events.user_id', 'is', null)]))
    .where('events.seq', '>', r.afterSeq)
    .where('events.seq', '<=', r.uptoSeq);
}

/**
 * The direct messages to the user, by their inbox rows from the floor on. CROSS JOIN makes SQLite read
 * the user's inbox rows first and look each event up by message id: left to itself, without statistics
 * it walks every direct send's event in the seq range and probes the inbox for each (5.6 ms against
 * 8 µs with 40,000 sends in the range). PostgreSQL plans a cross join with these conditions as the join.
 */
function directToUser(
  db: Kysely<DB>,
  r: Omit<UserRange, 'floor'>,
  floor: number | ReturnType<typeof floorBefore>,
) {
  return db
    .selectFrom('inbox')
    .crossJoin('events')
    .whereRef('events.message_id', '=', 'inbox.message_id')
    .where('inbox.user_id', '=', r.userId)
    .where('inbox.message_id', '>=', floor)
    .where('events.user_id', '=', RECIPIENTS)
    .where('events.seq', '>', r.afterSeq)
    .where('events.seq', '<=', r.uptoSeq);
}

/** Length of a message's payload fields, in characters: what its NEW_MESSAGE weighs before JSON. */
const MESSAGE_CHARS = sql<number>`coalesce(length(messages.title) + length(messages.content) + length(messages.sender_name) + length(messages.message_type) + coalesce(length(messages.link_url), 0), 0)`;

/**
 * The next `limit` events of the user in the range with their approximate size, oldest first. Each half
 * takes its own `limit` rows first (an ORDER BY … LIMIT inside a subquery: both dialects refuse it on a
 * UNION's member), then the union takes the oldest `limit` of both.
 */
function sizesOf(
  db: Kysely<DB>,
  p: Omit<UserRange, 'floor'> & { limit: number },
  floor: number | ReturnType<typeof floorBefore>,
) {
  return db
    .selectFrom(
      ownAndEveryone(db, p)
        .leftJoin('messages', 'messages.id', 'events.message_id')
        .select(['events.seq', sql<number>`length(events.data) + ${MESSAGE_CHARS}`.as('chars')])
        .orderBy('events.seq')
        .limit(p.limit)
        .as('o'),
    )
    .selectAll()
    .unionAll(
      db
        .selectFrom(
          directToUser(db, p, floor)
            .innerJoin('messages', 'messages.id', 'inbox.message_id')
            .select(['events.seq', sql<number>`${MESSAGE_CHARS}`.as('chars')])
            .orderBy('events.seq')
            .limit(p.limit)
            .as('d'),
        )
        .selectAll(),
    )
    .orderBy('seq')
    .limit(p.limit);
}

/**
 * A resume's start, in one statement (a storm runs one per client): the floor at `afterSeq`; how many
 * events the user has in the range, each half counted up to `limit` (the caller asks max + 1); and the
 * sizes of the first `pageLimit` of them, one row each (one row with no size when there are none).
 */
const resumeStartQuery = prepared(
  (db, p: { userId: number; afterSeq: number; uptoSeq: number; limit: number; pageLimit: number }) =>
    db
      .selectFrom(
        db
          .selectNoFrom((eb) => [
            floorBefore(db, p.afterSeq).as('floor'),
            eb
              .selectFrom(ownAndEveryone(db, p).select('events.seq').limit(p.limit).as('o'))
              .select((e) => e.fn.countAll().as('n'))
              .as('own'),
            eb
              .selectFrom(
                directToUser(db, p, floorBefore(db, p.afterSeq)).select('events.seq').limit(p.limit).as('d'),
              )
              .select((e) => e.fn.countAll().as('n'))
              .as('direct'),
          ])
          .as('c'),
      )
      .leftJoin(
        // Not `{ ...p }`: the inputs here are stand-ins with no keys to spread (store/prepared.ts).
        sizesOf(
          db,
          { userId: p.userId, afterSeq: p.afterSeq, uptoSeq: p.uptoSeq, limit: p.pageLimit },
          floorBefore(db, p.afterSeq),
        ).as('s'),
        (j) => j.onTrue(),
      )
      .select(['c.floor', 'c.own', 'c.direct', 's.seq', 's.chars'])
      .orderBy('s.seq'),
);

/**
 * The floor at `afterSeq`, the user's events in (afterSeq, uptoSeq] counting at most `max` + 1, and the
 * sizes of the first `pageLimit` of them (what replaySizes would answer for the first page).
 */
export async function resumeStart(
  db: Kysely<DB>,
  r: Omit<UserRange, 'floor'>,
  max: number,
  pageLimit: number,
): Promise<{ floor: number; count: number; sizes: Array<{ seq: number; chars: number }> }> {
  const rows = (await resumeStartQuery(db, { ...r, limit: max + 1, pageLimit })).rows;
  const row = rows[0];
  return {
    floor: Number(row?.floor ?? 0),
    count: Number(row?.own ?? 0) + Number(row?.direct ?? 0),
    sizes: rows.flatMap((x) => (x.seq === null ? [] : [{ seq: Number(x.seq), chars: Number(x.chars) }])),
  };
}

const sizesQuery = prepared((db, p: UserRange & { limit: number }) => sizesOf(db, p, p.floor));

/** The next `limit` events of the user in the range with their approximate size, oldest first. */
export async function sizesForUser(
  db: Kysely<DB>,
  r: UserRange,
  limit: number,
): Promise<Array<{ seq: number; chars: number }>> {
  const rows = (await sizesQuery(db, { ...r, limit })).rows;
  return rows.map((x) => ({ seq: Number(x.seq), chars: Number(x.chars) }));
}

const readQuery = prepared((db, p: UserRange & { limit: number }) =>
  db
    .selectFrom(ownAndEveryone(db, p).selectAll('events').orderBy('events.seq').limit(p.limit).as('o'))
    .selectAll()
    .unionAll(
      db
        .selectFrom(
          directToUser(db, p, p.floor).selectAll('events').orderBy('events.seq').limit(p.limit).as('d'),
        )
        .selectAll(),
    )
    .orderBy('seq')
    .limit(p.limit),
);

/** The user's events in the range, oldest first (at most `limit`). */
export async function readForUser(db: Kysely<DB>, r: UserRange, limit: number): Promise<EventRow[]> {
  return (await readQuery(db, { ...r, limit })).rows as EventRow[];
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
    const prev = Number((await getMeta(trx, PRUNED_THROUGH_KEY)) ?? 0);
    await setMeta(trx, PRUNED_THROUGH_KEY, String(Math.max(prev, upto)));
    return rows.length;
  });
}
