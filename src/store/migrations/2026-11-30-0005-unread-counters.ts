/**
 * Unread counters (docs/decisions/0014-unread-counters.md): a narrow per-user row and one global row that
 * every change keeps in its own transaction, backfilled here from the inbox as it is. A message counts
 * until its expiry is announced: "live" below is the announcer's position in skypush_meta.
 */
import { sql, type Kysely, type RawBuilder } from 'kysely';
import type { Dialect } from '../database.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- migrations must not depend on today's schema types
type AnyDB = Kysely<any>;

/** skypush_meta key of the expiry announcer's position (as store/migrate.ts names it in 2026-11). */
const EXPIRY_CURSOR_KEY = 'expiry_announced_through';
/** Users backfilled per statement: each statement reads those users' inbox rows only. */
export const BACKFILL_BATCH = 1000;

export async function up(db: AnyDB, dialect: Dialect): Promise<void> {
  await createTables(db, dialect);
  // PostgreSQL runs the migrations in one transaction: the backfill of a large database may take longer
  // than the statement timeout the pool sets for requests, so it is lifted for this transaction only.
  if (dialect === 'postgres') await sql`set local statement_timeout = 0`.execute(db);
  const live = await liveCondition(db);
  await backfillTotals(db, live);
  await backfillCounters(db, live);
}

export async function down(db: AnyDB): Promise<void> {
  await db.schema.dropTable('inbox_totals').ifExists().execute();
  await db.schema.dropTable('unread_counters').ifExists().execute();
}

/**
 * The tables. On PostgreSQL the counters leave half of each page free (fillfactor 50): every change
 * rewrites a counter row, and a new row version that fits on its page is a HOT update (no index write).
 * `if not exists` and the upserts below let SQLite, whose migrations run outside a transaction, redo a
 * migration that stopped half way.
 */
async function createTables(db: AnyDB, dialect: Dialect): Promise<void> {
  await db.schema
    .createTable('unread_counters')
    .ifNotExists()
    .addColumn('user_id', 'bigint', (c) => c.primaryKey())
    .addColumn('unread_direct', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('seen_all', 'integer', (c) => c.notNull().defaultTo(0))
    .$call((qb) => (dialect === 'postgres' ? qb.modifyEnd(sql`with (fillfactor = 50)`) : qb))
    .execute();
  await db.schema
    .createTable('inbox_totals')
    .ifNotExists()
    .addColumn('id', 'integer', (c) => c.primaryKey())
    .addColumn('live_all', 'integer', (c) => c.notNull())
    .execute();
}

/**
 * `m` (a message) is live: no expiry, or after the announcer's position (expires_at, id). Messages at or
 * before it were announced, or expired before the database was first migrated and are never announced.
 * The position is seeded here when missing, as store/migrate.ts would seed it right after.
 */
async function liveCondition(db: AnyDB): Promise<RawBuilder<boolean>> {
  await db
    .insertInto('skypush_meta')
    .values({ key: EXPIRY_CURSOR_KEY, value: `${Date.now()}:0` })
    .onConflict((oc) => oc.column('key').doNothing())
    .execute();
  const row = await db
    .selectFrom('skypush_meta')
    .select('value')
    .where('key', '=', EXPIRY_CURSOR_KEY)
    .executeTakeFirstOrThrow();
  const [at = 0, id = 0] = String(row.value).split(':').map(Number);
  return sql<boolean>`(m.expires_at is null or m.expires_at > ${at} or (m.expires_at = ${at} and m.id > ${id}))`;
}

async function backfillTotals(db: AnyDB, live: RawBuilder<boolean>): Promise<void> {
  await sql`
    insert into inbox_totals (id, live_all)
    select 1, count(*) from messages m where m.target_type = 'all' and ${live}
    on conflict (id) do update set live_all = excluded.live_all`.execute(db);
}

/** Every user gets a row, BACKFILL_BATCH users per statement in id order, each counted from their inbox. */
async function backfillCounters(db: AnyDB, live: RawBuilder<boolean>): Promise<void> {
  let after = Number.MIN_SAFE_INTEGER;
  for (;;) {
    const ids = await db
      .selectFrom('users')
      .select('id')
      .where('id', '>', after)
      .orderBy('id')
      .limit(BACKFILL_BATCH)
      .execute();
    const last = ids.at(-1);
    if (!last) return;
    const upto = Number(last.id);
    await sql`
      insert into unread_counters (user_id, unread_direct, seen_all)
      select u.id,
        (select count(*) from inbox i join messages m on m.id = i.message_id
          where i.user_id = u.id and m.target_type = 'user'
            and i.read_at is null and i.deleted_at is null and ${live}),
        (select count(*) from inbox i join messages m on m.id = i.message_id
          where i.user_id = u.id and m.target_type = 'all' and ${live})
      from users u where u.id > ${after} and u.id <= ${upto}
      on conflict (user_id) do update
        set unread_direct = excluded.unread_direct, seen_all = excluded.seen_all`.execute(db);
    after = upto;
  }
}
