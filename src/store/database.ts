/**
 * Database factory: one Kysely instance over better-sqlite3 (embedded default) or a pg pool. Everything
 * above this file is dialect-agnostic; the few places where the dialects must differ ask `store.dialect`.
 */
import { dirname } from 'node:path';
import SQLite from 'better-sqlite3';
import { Kysely, PostgresDialect, sql, type PostgresPool, type PostgresPoolClient } from 'kysely';
import pg from 'pg';
import type { DatabaseConfig } from '../config.ts';
import { startCheckpointer } from './checkpointer.ts';
import { ensurePrivateDir, preparePrivateDatabase } from './private-files.ts';
import { LockWaitSqliteDialect, SQLITE_BUSY_TIMEOUT_MS, type SqliteHandle } from './sqlite-driver.ts';
import type { DB } from './schema.ts';
import { allowReadsNow } from './prepared.ts';

export type Dialect = 'sqlite' | 'postgres';

export interface Store {
  readonly db: Kysely<DB>;
  readonly dialect: Dialect;
  /** Resolves when a trivial query succeeds; rejects otherwise (used by /readyz). */
  ping(): Promise<void>;
  close(): Promise<void>;
}

const INT8_OID = 20;

/** Opens the database described by `cfg`. Does not run migrations. */
export function openStore(cfg: DatabaseConfig, onWarning?: (message: string) => void): Store {
  if (cfg.kind === 'sqlite')
    return openSqlite(cfg.sqlitePath ?? ':memory:', cfg.sqliteLockTimeoutMs ?? 5000, onWarning);
  return openPostgres(cfg);
}

/** How often the worker thread checkpoints the WAL (store/checkpointer.ts). */
const CHECKPOINT_MS = 250;

function openSqlite(path: string, lockTimeoutMs: number, onWarning?: (message: string) => void): Store {
  if (path !== ':memory:') {
    ensurePrivateDir(dirname(path));
    preparePrivateDatabase(path, onWarning);
  }
  const sqlite = new SQLite(path);
  // WAL: readers never block the writer. synchronous=NORMAL survives a process crash (SIGKILL) without
  // losing a committed transaction; only an OS crash or power loss can drop the last few.
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma('synchronous = NORMAL');
  // A few milliseconds at most inside SQLite: longer waits for the lock are asynchronous (sqlite-driver.ts).
  sqlite.pragma(`busy_timeout = ${SQLITE_BUSY_TIMEOUT_MS}`);
  sqlite.pragma('foreign_keys = ON');
  // Sorts and unions build temporary b-trees; in a file they cost ~80 µs each even when tiny (a resume
  // runs three). Every such query here is bounded by a LIMIT, so they stay small in memory.
  sqlite.pragma('temp_store = MEMORY');
  // A large burst may leave a big WAL behind; it is truncated back to this size once checkpointed.
  sqlite.pragma(`journal_size_limit = ${64 * 1024 * 1024}`);
  const checkpointer =
    path === ':memory:' ? undefined : startCheckpointer(sqlite, path, CHECKPOINT_MS, onWarning);
  const dialect = new LockWaitSqliteDialect({ database: withStatementCache(sqlite), lockTimeoutMs });
  const db = new Kysely<DB>({ dialect });
  allowReadsNow(db, (query) => dialect.readNow(query));
  return {
    db,
    dialect: 'sqlite',
    async ping() {
      await sql`select 1`.execute(db);
    },
    async close() {
      // The worker's connection first: the last connection to close checkpoints and removes the WAL.
      await checkpointer?.stop();
      await db.destroy();
    },
  };
}

/** Prepared statements kept per SQL text; more distinct texts than this evict the least recently used. */
const STATEMENT_CACHE_SIZE = 256;

/**
 * better-sqlite3 behind Kysely, preparing each distinct SQL text once. Kysely's SQLite driver prepares
 * every statement it runs; on the hot paths (a send is ~10 statements) preparing cost as much as running.
 * Safe because the driver runs one statement at a time on its one connection and never leaves a
 * statement mid-iteration (nothing here streams), and SQLite re-prepares a statement by itself after a
 * schema change.
 */
function withStatementCache(sqlite: SQLite.Database): SqliteHandle {
  const cache = new Map<string, SQLite.Statement>();
  return {
    get inTransaction() {
      return sqlite.inTransaction;
    },
    close: () => sqlite.close(),
    prepare(text: string) {
      let stmt = cache.get(text);
      if (stmt) {
        // Map order is insertion order: re-inserting marks this statement as the most recently used.
        cache.delete(text);
      } else {
        stmt = sqlite.prepare(text);
        if (cache.size >= STATEMENT_CACHE_SIZE) cache.delete(cache.keys().next().value as string);
      }
      cache.set(text, stmt);
      return stmt;
    },
  };
}

/**
 * The pool as Kysely sees it: the same clients, except that the answer to a query of several statements
 * is its first statement's answer. node-postgres answers such a query (text without parameters, sent as
 * one simple-protocol message) with an array of results, which Kysely would read as no rows. The event
 * log's ordered part uses it to send its call and the COMMIT as one message (event-log-append.ts).
 */
function multiStatementPool(pool: pg.Pool): PostgresPool {
  const clients = new WeakMap<pg.PoolClient, PostgresPoolClient>();
  const first = (r: pg.QueryResult | pg.QueryResult[]) => (Array.isArray(r) ? r[0] : r);
  const wrap = (raw: pg.PoolClient): PostgresPoolClient => ({
    query: ((text: string | pg.Submittable, values?: readonly unknown[]) =>
      typeof text === 'string'
        ? raw.query(text, values as unknown[]).then(first)
        : raw.query(text)) as PostgresPoolClient['query'],
    release: () => raw.release(),
  });
  return {
    async connect() {
      const raw = await pool.connect();
      let c = clients.get(raw);
      if (!c) clients.set(raw, (c = wrap(raw)));
      return c;
    },
    end: () => pool.end(),
  };
}

function openPostgres(cfg: DatabaseConfig): Store {
  const pool = new pg.Pool({
    connectionString: cfg.url,
    max: cfg.poolSize,
    connectionTimeoutMillis: cfg.connectTimeoutMs,
    statement_timeout: cfg.statementTimeoutMs,
    query_timeout: cfg.statementTimeoutMs + 1000,
    application_name: 'skypush',
    // BIGINT columns hold unix-ms times and sequence numbers, all far below 2^53.
    types: {
      getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
        oid === INT8_OID
          ? (v: string) => Number(v)
          : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
    },
  });
  // An idle client that loses its server emits 'error' on the pool; without a listener that is fatal.
  pool.on('error', () => {});
  // So does a client checked out but between two queries (a transaction awaiting its next statement):
  // the pool listens only to idle clients. The statement that follows fails, and the pool drops the
  // client when it is released (it is no longer queryable).
  pool.on('connect', (client) => client.on('error', () => {}));
  const db = new Kysely<DB>({ dialect: new PostgresDialect({ pool: multiStatementPool(pool) }) });
  return {
    db,
    dialect: 'postgres',
    async ping() {
      await sql`select 1`.execute(db);
    },
    async close() {
      await db.destroy();
    },
  };
}
