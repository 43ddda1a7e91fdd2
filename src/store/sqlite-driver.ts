/**
 * Kysely's SQLite dialect over better-sqlite3, waiting for the write lock without blocking the event
 * loop. better-sqlite3 is synchronous: with SQLite's own `busy_timeout`, a write that meets another
 * process's write lock sleeps inside the call, and /healthz, WebSockets and every request stall with
 * it. Here SQLite waits a few milliseconds at most; past that the wait goes on asynchronously (timers
 * with backoff, the connection free for others meanwhile) until `lockTimeoutMs`, and then the SQLITE_BUSY
 * error reaches the caller (HTTP 503 with Retry-After).
 *
 * Only work that has not started yet is retried, so a retry can never half-apply anything:
 * - a transaction begins with `BEGIN IMMEDIATE`, which takes the write lock before its first statement
 *   (in WAL mode nothing inside it waits for a lock after that), and only the BEGIN is retried;
 * - a statement outside a transaction is its own transaction, and is retried whole;
 * - a SQLITE_BUSY inside a transaction is not retried: the transaction fails and is rolled back.
 * Between retries the connection is free for other work, so inside Kysely's `db.connection()` (only
 * the migrator uses it, at start-up) other statements may run between two of its own.
 * See docs/decisions/0006-sqlite-lock-wait.md.
 *
 * `readNow` runs a SELECT at once, without the lock's promise, when nobody holds the lock (prepared reads
 * use it: docs/decisions/0018-sqlite-reads-now.md); any change to the locking here must keep its check.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import {
  CompiledQuery,
  SqliteAdapter,
  SqliteIntrospector,
  SqliteQueryCompiler,
  type DatabaseConnection,
  type Dialect,
  type Driver,
  type Kysely,
  type QueryResult,
  type SqliteDatabase,
} from 'kysely';

/** The slice of better-sqlite3 used here (plus whether a transaction is open). */
export interface SqliteHandle extends SqliteDatabase {
  readonly inTransaction: boolean;
}

export interface LockWaitOptions {
  database: SqliteHandle;
  /** How long a write may wait for another process's write lock before failing with SQLITE_BUSY. */
  lockTimeoutMs: number;
  /** Monotonic milliseconds (tests). */
  now?: () => number;
}

/** The busy_timeout to give the connection: the longest SQLite may block the event loop on a lock. */
export const SQLITE_BUSY_TIMEOUT_MS = 2;
const FIRST_DELAY_MS = 2;
const MAX_DELAY_MS = 50;

/** SQLITE_BUSY and its extended codes (SQLITE_BUSY_SNAPSHOT, SQLITE_BUSY_RECOVERY, …). */
export function isSqliteBusy(e: unknown): boolean {
  const code = (e as { code?: unknown })?.code;
  return typeof code === 'string' && code.startsWith('SQLITE_BUSY');
}

/** A FIFO lock on the one connection (Kysely's own is private to its driver). */
class Mutex {
  #held = false;
  readonly #waiters: Array<() => void> = [];

  async lock(): Promise<void> {
    if (!this.#held) {
      this.#held = true;
      return;
    }
    await new Promise<void>((resolve) => this.#waiters.push(resolve));
  }

  unlock(): void {
    const next = this.#waiters.shift();
    if (next) next();
    else this.#held = false;
  }

  /** Nobody holds the lock, so nobody waits for it either. */
  get free(): boolean {
    return !this.#held;
  }
}

class LockWaitConnection implements DatabaseConnection {
  constructor(
    private readonly db: SqliteHandle,
    private readonly mutex: Mutex,
    private readonly opts: Required<Pick<LockWaitOptions, 'lockTimeoutMs' | 'now'>>,
  ) {}

  get inTransaction(): boolean {
    return this.db.inTransaction;
  }

  /** Runs `attempt`; while it fails with SQLITE_BUSY outside a transaction, retries it asynchronously. */
  async withLockWait<T>(attempt: () => T): Promise<T> {
    const deadline = this.opts.now() + this.opts.lockTimeoutMs;
    let delay = FIRST_DELAY_MS;
    for (;;) {
      try {
        return attempt();
      } catch (e) {
        if (!isSqliteBusy(e) || this.db.inTransaction || this.opts.now() + delay > deadline) throw e;
      }
      // The connection is in no transaction: others may use it (reads, other writers) meanwhile.
      this.mutex.unlock();
      try {
        await sleep(delay);
      } finally {
        await this.mutex.lock();
      }
      delay = Math.min(delay * 2, MAX_DELAY_MS);
    }
  }

  run<R>(query: CompiledQuery): QueryResult<R> {
    const stmt = this.db.prepare(query.sql);
    if (stmt.reader) return { rows: stmt.all(query.parameters) as R[] };
    const { changes, lastInsertRowid } = stmt.run(query.parameters);
    return { numAffectedRows: BigInt(changes), insertId: BigInt(lastInsertRowid), rows: [] };
  }

  executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>> {
    return this.withLockWait(() => this.run<R>(query));
  }

  // eslint-disable-next-line require-yield -- nothing here streams; the interface requires the method
  async *streamQuery<R>(): AsyncIterableIterator<QueryResult<R>> {
    throw new Error('streaming is not supported on SQLite here');
  }
}

class LockWaitDriver implements Driver {
  readonly #mutex = new Mutex();
  readonly #connection: LockWaitConnection;
  readonly #db: SqliteHandle;

  constructor(opts: LockWaitOptions) {
    this.#db = opts.database;
    this.#connection = new LockWaitConnection(opts.database, this.#mutex, {
      lockTimeoutMs: opts.lockTimeoutMs,
      now: opts.now ?? (() => performance.now()),
    });
  }

  async init(): Promise<void> {}

  async acquireConnection(): Promise<DatabaseConnection> {
    await this.#mutex.lock();
    return this.#connection;
  }

  async beginTransaction(connection: LockWaitConnection): Promise<void> {
    await connection.withLockWait(() => connection.run(CompiledQuery.raw('begin immediate')));
  }

  async commitTransaction(connection: LockWaitConnection): Promise<void> {
    connection.run(CompiledQuery.raw('commit'));
  }

  async rollbackTransaction(connection: LockWaitConnection): Promise<void> {
    // A failed statement may already have ended the transaction (SQLite rolls back on some errors).
    if (connection.inTransaction) connection.run(CompiledQuery.raw('rollback'));
  }

  async releaseConnection(): Promise<void> {
    this.#mutex.unlock();
  }

  /**
   * Runs a read at once when the connection is free (no statement, transaction or waiter holds it: so
   * nothing queued is overtaken and no open transaction's rows are seen); undefined when it is not, or
   * when the statement writes or meets a lock (the caller then goes through Kysely as usual).
   */
  readNow<R>(query: CompiledQuery): QueryResult<R> | undefined {
    if (!this.#mutex.free || this.#db.inTransaction) return undefined;
    // A SELECT only: an INSERT … RETURNING is a "reader" to SQLite too.
    if (query.query.kind !== 'SelectQueryNode') return undefined;
    try {
      return this.#connection.run<R>(query);
    } catch (e) {
      if (isSqliteBusy(e)) return undefined;
      throw e;
    }
  }

  async destroy(): Promise<void> {
    this.#db.close();
  }
}

/** Kysely's SQLite dialect with the lock wait above. */
export class LockWaitSqliteDialect implements Dialect {
  #driver: LockWaitDriver | undefined;

  constructor(private readonly opts: LockWaitOptions) {}

  createDriver(): Driver {
    this.#driver = new LockWaitDriver(this.opts);
    return this.#driver;
  }

  /** The driver's readNow, once Kysely has created the driver. */
  readNow<R>(query: CompiledQuery): QueryResult<R> | undefined {
    return this.#driver?.readNow<R>(query);
  }

  createQueryCompiler() {
    return new SqliteQueryCompiler();
  }

  createAdapter() {
    return new SqliteAdapter();
  }

  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- Kysely's Dialect signature
  createIntrospector(db: Kysely<any>) {
    return new SqliteIntrospector(db);
  }
}
