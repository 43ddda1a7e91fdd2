/**
 * The write side of the event log: every change to messages is one transaction that also appends its
 * durable events, and the bus is told only after commit, so a failed transaction publishes nothing and a
 * bus failure loses nothing. The append is the transaction's last step, its ordered part
 * (event-log.repository.ts): whatever the work before it, only that part is serialised on PostgreSQL.
 * (On PostgreSQL without Redis the wake-up is a NOTIFY sent inside the transaction, before its ordered
 * part, which PostgreSQL delivers at commit: the same rule, kept by the database.)
 */
import type { Kysely } from 'kysely';
import { WAKE_ANY, type Bus } from '../bus/bus.ts';
import type { Dialect } from '../store/database.ts';
import { retryDeadlocks } from '../store/deadlock.ts';
import type { DB } from '../store/schema.ts';
import { appendEvents, OrderingConflict, type NewEvent } from './event-log.repository.ts';

export type { NewEvent } from './event-log.repository.ts';

/** What a unit of work inside `commit` returns: the caller's result and the events to append. */
export interface Committed<T> {
  result: T;
  events: NewEvent[];
}

/**
 * Runs `work` in a transaction (at time `t`) that appends its events, then wakes every hub. A transaction
 * PostgreSQL aborts as a deadlock victim runs again, `work` included (store/deadlock.ts).
 */
export type CommitWithEvents = <T>(work: (trx: Kysely<DB>, t: number) => Promise<Committed<T>>) => Promise<T>;

/** Attempts of a transaction refused by the event log's ordering rule (OrderingConflict) before giving up. */
const ORDERING_ATTEMPTS = 5;

export function createEventLogWriter(deps: {
  db: Kysely<DB>;
  dialect: Dialect;
  bus: Bus;
  nodeId: string;
  now: () => number;
  /**
   * Wakes the hubs from inside the transaction, right after the append (PostgreSQL's NOTIFY, delivered
   * at commit); when given, it replaces the publish after commit.
   */
  inTransaction?: (trx: Kysely<DB>, head: number) => Promise<void>;
}): CommitWithEvents {
  const { db, dialect, bus, now } = deps;
  return async function commit<T>(work: (trx: Kysely<DB>, t: number) => Promise<Committed<T>>) {
    for (let attempt = 1; ; attempt++) {
      let head = 0;
      try {
        const result = await retryDeadlocks(() =>
          db.transaction().execute(async (trx) => {
            const t = now();
            const out = await work(trx, t);
            // Before the ordered part, so that it adds no round trip while the event-log lock is held;
            // the head is not known yet, so the wake-up says "read on" (WAKE_ANY).
            if (out.events.length > 0 && deps.inTransaction) await deps.inTransaction(trx, WAKE_ANY);
            head = await appendEvents(trx, dialect, out.events, t);
            return out.result;
          }),
        );
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
