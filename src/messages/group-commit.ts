/**
 * Group commit on SQLite (docs/decisions/0017-group-commit.md): the changes asked for in one turn of
 * the event loop run in ONE transaction, each inside its own savepoint, and each caller is answered
 * only after that transaction's COMMIT. A COMMIT writes every page the transaction dirtied to the WAL;
 * sends that follow each other dirty the same pages (the newest leaf of each table and index), so N
 * changes in one transaction cost about one COMMIT instead of N.
 *
 * A batch is the queue at the moment it runs: requests parsed in the same turn run their handlers up to
 * commit() and wait for the next check phase (setImmediate), with no timer. A lone change (the usual
 * case at low rates) takes no savepoint and costs what it did before. A change that fails is rolled back
 * to its savepoint alone and its caller gets its error; the others commit. If SQLite abandoned the whole
 * transaction (an I/O error, a full disk), or the COMMIT fails, every caller of the batch gets the
 * error and nothing of the batch was written.
 */
import { setImmediate as nextTurn } from 'node:timers';
import { sql, type Kysely } from 'kysely';
import type { DB } from '../store/schema.ts';
import { appendEvents, type AppendedOut, type NewEvent } from './event-log-append.ts';
import type { EventRow } from './event-log.repository.ts';

/** Changes in one transaction at most (the rest wait for the next batch, right after it). */
export const GROUP_COMMIT_MAX = 64;

/** What a unit of work returns (event-log-writer.ts's Committed). */
export interface GroupWorkResult<T> {
  result: T;
  events: NewEvent[];
  committed?: () => void;
}

export type GroupWork<T> = (trx: Kysely<DB>, t: number) => Promise<GroupWorkResult<T>>;

export interface GroupCommitDeps {
  db: Kysely<DB>;
  now: () => number;
  /**
   * Told, right after the COMMIT and before any caller is answered, of the rows each change appended
   * (with their seqs), when all of them are known here.
   */
  appended?: ((rows: EventRow[]) => void) | undefined;
  /** Runs inside the transaction between a change's work and its append (the writer's wake-up). */
  beforeAppend?: ((trx: Kysely<DB>, out: GroupWorkResult<unknown>) => Promise<void>) | undefined;
  /** Changes per transaction at most. */
  maxBatch?: number;
  /** Told of each transaction's number of changes (the commit-batch metric). */
  onBatch?: ((n: number) => void) | undefined;
}

interface Pending {
  work: GroupWork<unknown>;
  resolve: (r: { result: unknown; head: number }) => void;
  reject: (err: unknown) => void;
  /** Filled when the work and its append succeeded (inside the transaction, not yet committed). */
  done?: { result: unknown; head: number; committed?: () => void; rows: AppendedOut };
  error?: unknown;
}

/** Returns `run(work)`: runs `work` in the next batch and resolves with its result and head once committed. */
export function createGroupCommit(deps: GroupCommitDeps) {
  const max = deps.maxBatch ?? GROUP_COMMIT_MAX;
  const queue: Pending[] = [];
  let scheduled = false;

  async function runOne(trx: Kysely<DB>, p: Pending): Promise<void> {
    const t = deps.now();
    const out = await p.work(trx, t);
    await deps.beforeAppend?.(trx, out);
    const rows: AppendedOut = { rows: [], complete: true };
    const head = await appendEvents(trx, 'sqlite', out.events, t, rows);
    p.done = { result: out.result, head, rows, ...(out.committed && { committed: out.committed }) };
  }

  /** One change in its savepoint: a failure rolls back that change only. */
  async function runSaved(trx: Kysely<DB>, p: Pending): Promise<void> {
    await sql`savepoint skypush_group`.execute(trx);
    try {
      await runOne(trx, p);
    } catch (err) {
      p.done = undefined;
      try {
        await sql`rollback to skypush_group`.execute(trx);
      } catch {
        // SQLite ended the whole transaction (its savepoints with it): the batch fails with this error.
        throw err;
      }
      p.error = err;
    }
    await sql`release skypush_group`.execute(trx);
  }

  async function flush(): Promise<void> {
    const batch = queue.splice(0, max);
    deps.onBatch?.(batch.length);
    try {
      await deps.db.transaction().execute(async (trx) => {
        if (batch.length === 1) await runOne(trx, batch[0] as Pending);
        else for (const p of batch) await runSaved(trx, p);
      });
    } catch (err) {
      // Rolled back as a whole: nobody's change was written.
      for (const p of batch) {
        p.done = undefined;
        p.error ??= err;
      }
    }
    // Committed: what the node's tail read will need, then the answers, in commit (seq) order.
    for (const p of batch) {
      if (!p.done) continue;
      try {
        if (p.done.rows.complete && p.done.rows.rows.length > 0) deps.appended?.(p.done.rows.rows);
        p.done.committed?.();
      } catch {
        // What runs here only helps (cache hints): the change is committed whatever it does.
      }
    }
    for (const p of batch) {
      if (p.done) p.resolve({ result: p.done.result, head: p.done.head });
      else p.reject(p.error);
    }
  }

  function schedule(): void {
    if (scheduled) return;
    scheduled = true;
    nextTurn(() => {
      // flush hands every failure to its callers; the catch is for a defect in flush itself.
      flush()
        .catch(() => {})
        .finally(() => {
          scheduled = false;
          if (queue.length > 0) schedule();
        });
    });
  }

  return function run<T>(work: GroupWork<T>): Promise<{ result: T; head: number }> {
    return new Promise((resolve, reject) => {
      queue.push({
        work: work as GroupWork<unknown>,
        resolve: resolve as Pending['resolve'],
        reject,
      });
      schedule();
    });
  };
}
