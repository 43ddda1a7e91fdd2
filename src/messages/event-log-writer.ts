/**
 * The write side of the event log: every change to messages is one transaction that also appends its
 * durable events, and the bus is told only after commit, so a failed transaction publishes nothing and a
 * bus failure loses nothing. The append is the transaction's last step, its ordered part
 * (event-log-append.ts): whatever the work before it, only that part is serialised on PostgreSQL.
 * (On PostgreSQL without Redis the wake-up is a NOTIFY sent inside the transaction, before its ordered
 * part, which PostgreSQL delivers at commit: the same rule, kept by the database.) On SQLite the changes
 * of one turn share a transaction (group-commit.ts, docs/decisions/0017-group-commit.md).
 */
import { sql, type Kysely } from 'kysely';
import { WAKE_ANY, type Bus } from '../bus/bus.ts';
import type { Dialect } from '../store/database.ts';
import { retryDeadlocks } from '../store/deadlock.ts';
import type { DB } from '../store/schema.ts';
import { appendAndCommit, OrderingConflict, type NewEvent } from './event-log-append.ts';
import type { EventRow } from './event-log.repository.ts';
import { createGroupCommit } from './group-commit.ts';

export type { NewEvent } from './event-log-append.ts';

/** What a unit of work inside `commit` returns: the caller's result and the events to append. */
export interface Committed<T> {
  result: T;
  events: NewEvent[];
  /** Runs once the transaction has committed (never after a rollback), before the bus is told. */
  committed?: () => void;
}

/**
 * Runs `work` in a transaction (at time `t`) that appends its events, then wakes every hub. A transaction
 * PostgreSQL aborts as a deadlock victim runs again, `work` included (store/deadlock.ts).
 */
export type CommitWithEvents = <T>(work: (trx: Kysely<DB>, t: number) => Promise<Committed<T>>) => Promise<T>;

type Work<T> = (trx: Kysely<DB>, t: number) => Promise<Committed<T>>;
interface WriterDeps {
  now: () => number;
  inTransaction?: ((trx: Kysely<DB>, head: number) => Promise<void>) | undefined;
}

/** Before the ordered part, so that it adds no round trip while the event-log lock is held. */
async function wake<T>(trx: Kysely<DB>, out: Committed<T>, deps: WriterDeps): Promise<void> {
  // The head is not known yet, so the wake-up says "read on" (WAKE_ANY).
  if (out.events.length > 0 && deps.inTransaction) await deps.inTransaction(trx, WAKE_ANY);
}

/**
 * PostgreSQL: the transaction on one connection, BEGIN and COMMIT sent here, so that the ordered part
 * and the COMMIT go out together (appendAndCommit). Anything that fails before rolls back.
 */
function runPostgres<T>(db: Kysely<DB>, work: Work<T>, deps: WriterDeps) {
  return db.connection().execute(async (conn) => {
    await sql`begin`.execute(conn);
    let ended = false;
    try {
      const t = deps.now();
      const out = await work(conn, t);
      await wake(conn, out, deps);
      // From here the transaction ends whatever happens: committed, or rolled back by the COMMIT.
      ended = true;
      const head = await appendAndCommit(conn, out.events, t);
      return { result: out.result, head, committed: out.committed };
    } finally {
      if (!ended) await sql`rollback`.execute(conn).catch(() => {});
    }
  });
}

/** Attempts of a transaction refused by the event log's ordering rule (OrderingConflict) before giving up. */
const ORDERING_ATTEMPTS = 5;

export function createEventLogWriter(deps: {
  db: Kysely<DB>;
  dialect: Dialect;
  bus: Bus;
  nodeId: string;
  now: () => number;
  /**
   * Wakes the hubs from inside the transaction, before its ordered part (PostgreSQL's NOTIFY, delivered
   * at commit); when given, it replaces the publish after commit.
   */
  inTransaction?: (trx: Kysely<DB>, head: number) => Promise<void>;
  /** SQLite: told of the rows each commit appended, before its bus message (the node's tail read). */
  appended?: (rows: EventRow[]) => void;
  /** SQLite: told of each transaction's number of changes. */
  onBatch?: (n: number) => void;
}): CommitWithEvents {
  const { db, dialect, bus } = deps;
  // SQLite's single writer orders the appends; its changes are grouped per turn (group-commit.ts), which
  // also runs each change's `committed` right after the COMMIT.
  const sqlite =
    dialect === 'sqlite'
      ? createGroupCommit({
          db,
          now: deps.now,
          appended: deps.appended,
          onBatch: deps.onBatch,
          beforeAppend: (trx, out) => wake(trx, out, deps),
        })
      : undefined;
  return async function commit<T>(work: (trx: Kysely<DB>, t: number) => Promise<Committed<T>>) {
    for (let attempt = 1; ; attempt++) {
      let head = 0;
      try {
        const result = await retryDeadlocks(async () => {
          const r: { result: T; head: number; committed?: (() => void) | undefined } = sqlite
            ? await sqlite(work)
            : await runPostgres(db, work, deps);
          head = r.head;
          try {
            r.committed?.();
          } catch {
            // What runs here only helps (a cache hint): the change is committed whatever it does.
          }
          return r.result;
        });
        if (head > 0 && !deps.inTransaction) {
          // After commit. A publish failure is not the caller's failure: the hubs' periodic tail read and
          // clients' resume deliver the committed events anyway.
          await bus.publish({ type: 'events', origin: deps.nodeId, head }).catch(() => {});
        }
        return result;
      } catch (err) {
        // Rolled back as a whole: the work runs again from the start, drawing a new message id.
        if (!(err instanceof OrderingConflict) || attempt >= ORDERING_ATTEMPTS) throw err;
      }
    }
  };
}
