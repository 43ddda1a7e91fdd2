/**
 * Fills every user's inbox with `perUser` direct messages, fast: set-based SQL straight into the
 * database (seconds for 10 million inbox rows, where the API would take hours). Half of each inbox is
 * read. Written against the schema of src/store/migrations: when the schema changes (per-user counters,
 * events by reference), this function is the one place to adapt — whatever a real send would have
 * written for these messages must be written here too, or the "full inbox" is not what a server would
 * hold. The events of these old messages are left out: a send-to-all never reads them.
 */
import Database from 'better-sqlite3';
import pg from 'pg';

/** The seeded messages' fixed columns: a direct notice from the admin (id 1 is not checked: no FK). */
const MESSAGE_COLUMNS =
  'title, content, message_type, priority, sender_id, sender_name, link_url, target_type, created_at, expires_at';

/**
 * Inserts `perUser` messages and one inbox row per (user, message) for every role-'user' user, even
 * message ids read; returns how many inbox rows were written. `databaseUrl` as SKYPUSH_DATABASE_URL.
 */
export async function seedInboxes(databaseUrl: string, perUser: number, now = Date.now()): Promise<number> {
  return databaseUrl.startsWith('sqlite:')
    ? seedSqlite(databaseUrl.slice(7), perUser, now)
    : seedPostgres(databaseUrl, perUser, now);
}

function seedSqlite(file: string, perUser: number, now: number): number {
  const db = new Database(file, { fileMustExist: true });
  try {
    db.pragma('busy_timeout = 30000');
    return db.transaction(() => {
      const first = Number(db.prepare('select coalesce(max(id), 0) + 1 as n from messages').pluck().get());
      db.prepare(
        `with recursive k(i) as (select 1 union all select i + 1 from k where i < ?)
         insert into messages (${MESSAGE_COLUMNS})
         select 'seeded ' || i, 'seeded message ' || i, 'notice', 1, 1, 'Administrator', null, 'user',
                ? - (? - i) * 1000, null
           from k`,
      ).run(perUser, now - 86_400_000, perUser);
      const r = db
        .prepare(
          `insert into inbox (user_id, message_id, read_at, deleted_at)
           select u.id, m.id, case when m.id % 2 = 0 then ? else null end, null
             from users u cross join messages m
            where u.role = 'user' and m.id between ? and ?
            order by u.id, m.id`,
        )
        .run(now, first, first + perUser - 1);
      return r.changes;
    })();
  } finally {
    db.close();
  }
}

async function seedPostgres(url: string, perUser: number, now: number): Promise<number> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await c.query('begin');
    const ids = await c.query<{ id: string }>(
      `insert into messages (${MESSAGE_COLUMNS})
       select 'seeded ' || i, 'seeded message ' || i, 'notice', 1, 1, 'Administrator', null, 'user',
              $1::bigint - ($2::bigint - i) * 1000, null
         from generate_series(1, $2::int) as i
       returning id`,
      [now - 86_400_000, perUser],
    );
    const list = ids.rows.map((r) => Number(r.id));
    const r = await c.query(
      `insert into inbox (user_id, message_id, read_at, deleted_at)
       select u.id, m.id, case when m.id % 2 = 0 then $1::bigint else null end, null
         from users u cross join messages m
        where u.role = 'user' and m.id between $2 and $3
        order by u.id, m.id`,
      [now, Math.min(...list), Math.max(...list)],
    );
    await c.query('commit');
    // What autovacuum would do soon after such a load: without statistics the planner guesses.
    await c.query('analyze');
    return r.rowCount ?? 0;
  } finally {
    await c.end();
  }
}
