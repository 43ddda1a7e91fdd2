/**
 * The lock wait in src/store/sqlite-driver.ts with a fake better-sqlite3 handle: what is retried (a
 * statement outside a transaction, a BEGIN IMMEDIATE) and what is not (a statement inside a
 * transaction), and that the wait ends in SQLITE_BUSY at the timeout. The real lock, held by another
 * process, is in sqlite-lock.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Kysely, sql } from 'kysely';
import { LockWaitSqliteDialect, type SqliteHandle } from '../../src/store/sqlite-driver.ts';

const busy = () => Object.assign(new Error('database is locked'), { code: 'SQLITE_BUSY' });

/** A handle whose statements fail with SQLITE_BUSY while `locked()` says so; records every SQL text run. */
function fakeHandle(locked: (sqlText: string) => boolean) {
  const ran: string[] = [];
  let inTransaction = false;
  const handle: SqliteHandle = {
    get inTransaction() {
      return inTransaction;
    },
    close() {},
    prepare(text: string) {
      const exec = () => {
        ran.push(text);
        if (locked(text)) throw busy();
        if (text === 'begin immediate') inTransaction = true;
        if (text === 'commit' || text === 'rollback') inTransaction = false;
      };
      return {
        reader: text.startsWith('select'),
        all: () => (exec(), [{ one: 1 }]),
        run: () => (exec(), { changes: 1, lastInsertRowid: 1 }),
        iterate: () => [][Symbol.iterator](),
      };
    },
  };
  return { handle, ran };
}

const kysely = (handle: SqliteHandle, lockTimeoutMs = 1000) =>
  new Kysely<Record<string, never>>({
    dialect: new LockWaitSqliteDialect({ database: handle, lockTimeoutMs }),
  });

describe('sqlite lock wait', () => {
  it('retries a statement outside a transaction until the lock is free', async () => {
    let failures = 3;
    const { handle, ran } = fakeHandle((s) => s.startsWith('update') && failures-- > 0);
    await sql`update t set x = 1`.execute(kysely(handle));
    assert.equal(ran.filter((s) => s.startsWith('update')).length, 4);
  });

  it('retries only the BEGIN IMMEDIATE of a transaction, never its statements', async () => {
    let beginFailures = 2;
    const { handle, ran } = fakeHandle((s) => s === 'begin immediate' && beginFailures-- > 0);
    await kysely(handle)
      .transaction()
      .execute(async (trx) => {
        await sql`update t set x = 1`.execute(trx);
      });
    assert.deepEqual(ran, [
      'begin immediate',
      'begin immediate',
      'begin immediate',
      'update t set x = 1',
      'commit',
    ]);
  });

  it('fails a transaction whose statement meets SQLITE_BUSY, rolling it back without a retry', async () => {
    const { handle, ran } = fakeHandle((s) => s.startsWith('update'));
    await assert.rejects(
      kysely(handle)
        .transaction()
        .execute(async (trx) => {
          await sql`insert into t values (1)`.execute(trx);
          await sql`update t set x = 1`.execute(trx);
        }),
      { code: 'SQLITE_BUSY' },
    );
    assert.deepEqual(ran, ['begin immediate', 'insert into t values (1)', 'update t set x = 1', 'rollback']);
  });

  it('gives up with SQLITE_BUSY at the lock timeout, and lets other work use the connection meanwhile', async () => {
    const { handle, ran } = fakeHandle((s) => s.startsWith('update'));
    const db = kysely(handle, 200);
    const waiting = assert.rejects(sql`update t set x = 1`.execute(db), { code: 'SQLITE_BUSY' });
    // A read issued while the update waits runs at once rather than queueing behind it.
    const read = await sql<{ one: number }>`select 1 as one`.execute(db);
    assert.deepEqual(read.rows, [{ one: 1 }]);
    assert.ok(ran.filter((s) => s.startsWith('update')).length < 3, 'the read waited for the update');
    await waiting;
    assert.ok(ran.filter((s) => s.startsWith('update')).length > 1);
  });
});
