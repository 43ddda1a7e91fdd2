/**
 * The write side of the event log: every change to messages is one transaction that also appends its
 * durable events, and the bus is told only after commit, so a failed transaction publishes nothing and a
 * bus failure loses nothing. (On PostgreSQL without Redis the wake-up is a NOTIFY sent inside the
 * transaction, which PostgreSQL delivers at commit: the same rule, kept by the database.)
 */
import type { Kysely } from 'kysely';
import type { Bus } from '../bus/bus.ts';
import type { Dialect } from '../store/database.ts';
import type { DB } from '../store/schema.ts';
import { appendEvents, type NewEvent } from './event-log.repository.ts';

export type { NewEvent } from './event-log.repository.ts';

/** What a unit of work inside `commit` returns: the caller's result and the events to append. */
export interface Committed<T> {
  result: T;
  events: NewEvent[];
}

/** Runs `work` in a transaction (at time `t`) that appends its events, then wakes every hub. */
export type CommitWithEvents = <T>(work: (trx: Kysely<DB>, t: number) => Promise<Committed<T>>) => Promise<T>;

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
    let head = 0;
    const result = await db.transaction().execute(async (trx) => {
      const t = now();
      const out = await work(trx, t);
      head = await appendEvents(trx, dialect, out.events, t);
      if (head > 0 && deps.inTransaction) await deps.inTransaction(trx, head);
      return out.result;
    });
    if (head > 0 && !deps.inTransaction) {
      // After commit. A publish failure is not the caller's failure: the hubs' periodic tail read and
      // clients' resume deliver the committed events anyway.
      await bus.publish({ type: 'events', origin: deps.nodeId, head }).catch(() => {});
    }
    return result;
  };
}
