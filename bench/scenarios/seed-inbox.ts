/**
 * Fills every user's inbox with `perUser` direct messages, fast: set-based SQL straight into the
 * database (a minute for 10 million inbox rows, where the API would take hours). Half of each inbox is
 * read. Written against the schema of src/store/migrations, old and new: where the per-user unread
 * counters exist (migration 0005), they are raised by the unread messages seeded, as sends would have.
 * When the schema changes again, this file is the one place to adapt — whatever a real send would have
 * written for these messages must be written here too, or the "full inbox" is not what a server would
 * hold. The events of these old messages are left out: a send-to-all never reads them.
 */
import Database from 'better-sqlite3';
import pg from 'pg';

/** The seeded messages' fixed columns: a direct notice from the admin (id 1 is not checked: no FK). */
const MESSAGE_COLUMNS =
  'title, content, message_type, priority, sender_id, sender_name, link_url, target_type, created_at, expires_at';

/** Every (role 'user') user gets one inbox row per seeded message in [first, last]; even ids are read. */
const INBOX_ROWS = `
  insert into inbox (user_id, message_id, read_at, deleted_at)
  select u.id, m.id, case when m.id % 2 = 0 then $now else null end, null
    from users u cross join messages m
   where u.role = 'user' and m.id between $first and $last
   order by u.id, m.id`;

/** The unread ones (odd ids) added to each user's counter, creating the row where there is none. */
const COUNTERS = `
  insert into unread_counters (user_id, unread_direct, seen_all)
  select u.id, $unread, 0 from users u where u.role = 'user'
  on conflict (user_id) do update set unread_direct = unread_counters.unread_direct + excluded.unread_direct`;

/** Odd ids in [first, last]: the messages left unread. */
const unreadIn = (first: number, last: number) => Math.floor((last + 1) / 2) - Math.floor(first / 2);

/**
 * Inserts `perUser` messages and one inbox row per (user, message) for every role-'user' user; returns
 * how many inbox rows were written. `databaseUrl` as SKYPUSH_DATABASE_URL.
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
    const counters = db.prepare(
      `select 1 from sqlite_master where type = 'table' and name = 'unread_counters'`,
    );
    const rows = db.transaction(() => {
      const first = Number(db.prepare('select coalesce(max(id), 0) + 1 from messages').pluck().get());
      db.prepare(
        `with recursive k(i) as (select 1 union all select i + 1 from k where i < $n)
         insert into messages (${MESSAGE_COLUMNS})
         select 'seeded ' || i, 'seeded message ' || i, 'notice', 1, 1, 'Administrator', null, 'user',
                $t - ($n - i) * 1000, null
           from k`,
      ).run({ n: perUser, t: now - 86_400_000 });
      const last = first + perUser - 1;
      const rows = db.prepare(INBOX_ROWS).run({ now, first, last }).changes;
      if (counters.get() !== undefined) db.prepare(COUNTERS).run({ unread: unreadIn(first, last) });
      return rows;
    })();
    // The seed's WAL (about a gigabyte) is copied into the database here, not by the server's
    // checkpointer thread during the measured sends, whose CPU it would add to the server's.
    db.pragma('wal_checkpoint(TRUNCATE)');
    return rows;
  } finally {
    db.close();
  }
}

/** `$name` placeholders → PostgreSQL's `$1, $2, …` with the values in that order. */
function positional(text: string, values: Record<string, number>): [string, number[]] {
  const names = Object.keys(values);
  const sql = text.replace(/\$(\w+)/g, (_, name: string) => `$${names.indexOf(name) + 1}::bigint`);
  return [sql, names.map((n) => values[n] as number)];
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
    const [first, last] = [Math.min(...list), Math.max(...list)];
    const r = await c.query(...positional(INBOX_ROWS, { now, first, last }));
    const counters = await c.query<{ t: string | null }>(`select to_regclass('unread_counters')::text as t`);
    if (counters.rows[0]?.t) await c.query(...positional(COUNTERS, { unread: unreadIn(first, last) }));
    await c.query('commit');
    // What autovacuum would do soon after such a load: without statistics the planner guesses.
    await c.query('analyze');
    return r.rowCount ?? 0;
  } finally {
    await c.end();
  }
}
