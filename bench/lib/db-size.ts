/**
 * How many bytes skypush's database holds, read from outside the server, so a scenario can charge the
 * growth to what it did:
 * - SQLite: (page_count − freelist_count) × page_size on a connection of our own. In WAL mode a fresh read
 *   sees the last commit whether or not it was checkpointed, so this is the logical size, WAL included.
 * - PostgreSQL: the sum of pg_total_relation_size (heap, TOAST and indexes) over the database's tables,
 *   and the WAL position (pg_current_wal_lsn). The WAL is the server's, shared by every database on it:
 *   other work on the same PostgreSQL shows up in its difference.
 */
import Database from 'better-sqlite3';
import pg from 'pg';

export interface DbSize {
  /** Bytes of tables and indexes. */
  bytes: number;
  /** PostgreSQL only: the WAL position in bytes. */
  walLsn?: number;
}

export interface DbMeter {
  read(): Promise<DbSize>;
  close(): Promise<void>;
}

/** `sqlite:<file>` or `postgres://…`, as SKYPUSH_DATABASE_URL. */
export async function dbMeter(databaseUrl: string): Promise<DbMeter> {
  return databaseUrl.startsWith('sqlite:') ? sqliteMeter(databaseUrl.slice(7)) : pgMeter(databaseUrl);
}

function sqliteMeter(file: string): DbMeter {
  const db = new Database(file, { fileMustExist: true });
  db.pragma('busy_timeout = 10000');
  const pragma = (name: string) => Number(db.pragma(name, { simple: true }));
  return {
    read: () =>
      Promise.resolve({ bytes: (pragma('page_count') - pragma('freelist_count')) * pragma('page_size') }),
    close: () => {
      db.close();
      return Promise.resolve();
    },
  };
}

/** "16/B374D848" → bytes. */
function lsnBytes(lsn: string): number {
  const [hi, lo] = lsn.split('/');
  return parseInt(hi ?? '0', 16) * 2 ** 32 + parseInt(lo ?? '0', 16);
}

async function pgMeter(url: string): Promise<DbMeter> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  return {
    async read() {
      const r = await c.query<{ bytes: string; lsn: string }>(
        `select coalesce(sum(pg_total_relation_size(c.oid)), 0)::text as bytes,
                pg_current_wal_lsn()::text as lsn
           from pg_class c join pg_namespace n on n.oid = c.relnamespace
          where c.relkind = 'r' and n.nspname not in ('pg_catalog', 'information_schema')`,
      );
      const row = r.rows[0];
      return { bytes: Number(row?.bytes ?? 0), walLsn: lsnBytes(row?.lsn ?? '0/0') };
    },
    close: () => c.end(),
  };
}
