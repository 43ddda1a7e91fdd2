/**
 * Group commit on SQLite (src/messages/group-commit.ts) against a real database file read by a second
 * connection: changes asked for in one turn share one transaction, nobody is answered before its COMMIT
 * is visible to another reader, a failing change is rolled back alone, a transaction SQLite abandons fails
 * the whole batch with nothing written, and the rows handed to the tail read are the rows in the log.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { sql, type Kysely } from 'kysely';
import { createGroupCommit } from '../../src/messages/group-commit.ts';
import type { EventRow } from '../../src/messages/event-log.repository.ts';
import { openStore, type Store } from '../../src/store/database.ts';
import { migrateToLatest } from '../../src/store/migrate.ts';
import type { DB } from '../../src/store/schema.ts';

describe('group commit (SQLite)', () => {
  let dir: string;
  let store: Store;
  let other: Database.Database;
  const appended: EventRow[][] = [];
  let run: ReturnType<typeof createGroupCommit>;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'skypush-group-'));
    const path = join(dir, 'db.sqlite');
    store = openStore({
      kind: 'sqlite',
      url: `sqlite:${path}`,
      sqlitePath: path,
      poolSize: 1,
      statementTimeoutMs: 5000,
      connectTimeoutMs: 5000,
    });
    await migrateToLatest(store);
    other = new Database(path, { readonly: true });
    run = createGroupCommit({ db: store.db, now: Date.now, appended: (rows) => void appended.push(rows) });
  });
  after(async () => {
    other.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Events with this type, as another connection sees them (only what is committed). */
  const committedOfType = (type: string) =>
    Number((other.prepare('select count(*) as n from events where type = ?').get(type) as { n: number }).n);

  /** A change appending one event of `type` for user `u`. */
  const change = (type: string, u: number, seen?: Array<Kysely<DB>>) => async (trx: Kysely<DB>) => {
    seen?.push(trx);
    return { result: u, events: [{ userId: u, type, data: { u } }] };
  };

  it('runs the changes of one turn in one transaction and answers each only after its COMMIT', async () => {
    const seen: Array<Kysely<DB>> = [];
    const visibleAtAnswer: number[] = [];
    const answers = [1, 2, 3, 4, 5].map((u) =>
      run(change('G1', u, seen)).then((r) => {
        visibleAtAnswer.push(committedOfType('G1'));
        return r;
      }),
    );
    const results = await Promise.all(answers);
    assert.deepEqual(
      results.map((r) => r.result),
      [1, 2, 3, 4, 5],
    );
    assert.equal(new Set(seen).size, 1, 'one transaction object for the five changes');
    assert.deepEqual(visibleAtAnswer, [5, 5, 5, 5, 5], 'every answer came after all five were committed');
    const heads = results.map((r) => r.head);
    assert.deepEqual(
      heads,
      [...heads].sort((a, b) => a - b),
      'seq follows the order of the calls',
    );
    assert.equal(new Set(heads).size, 5);
  });

  it('runs changes of different turns in different transactions', async () => {
    const seen: Array<Kysely<DB>> = [];
    await run(change('G2', 1, seen));
    await run(change('G2', 2, seen));
    assert.equal(new Set(seen).size, 2);
  });

  it('rolls a failing change back alone: its caller gets its error, the others commit', async () => {
    const boom = new Error('refused');
    const failing = async (trx: Kysely<DB>) => {
      await sql`insert into events (user_id, type, data, mfloor, created_at) values (7, 'G3', '{}', 0, 0)`.execute(
        trx,
      );
      throw boom;
    };
    const [a, b, c] = await Promise.allSettled([run(change('G3', 1)), run(failing), run(change('G3', 3))]);
    assert.equal(a.status, 'fulfilled');
    assert.equal(c.status, 'fulfilled');
    assert.equal(b.status, 'rejected');
    assert.equal((b as PromiseRejectedResult).reason, boom);
    assert.equal(committedOfType('G3'), 2, 'the failing change left nothing');
  });

  it('fails the whole batch when SQLite abandons the transaction, with nothing written', async () => {
    const abandon = async (trx: Kysely<DB>) => {
      await sql`rollback`.execute(trx);
      throw new Error('the transaction is gone');
    };
    const settled = await Promise.allSettled([run(change('G4', 1)), run(abandon), run(change('G4', 3))]);
    assert.deepEqual(
      settled.map((s) => s.status),
      ['rejected', 'rejected', 'rejected'],
    );
    assert.equal(committedOfType('G4'), 0);
    // The writer is usable afterwards.
    await run(change('G4', 9));
    assert.equal(committedOfType('G4'), 1);
  });

  it('hands on the appended rows exactly as the log holds them, and none for rows expanded in SQL', async () => {
    appended.length = 0;
    const many = async () => ({
      result: 0,
      events: [1, 2, 3].map((u) => ({ userId: u, type: 'G5', data: { n: u } })),
    });
    const holders = async () => ({ result: 0, events: [{ holdersOf: 999_999, type: 'G6', data: {} }] });
    await Promise.all([run(change('G5', 4)), run(many), run(holders)]);
    const handed = appended.flat();
    assert.equal(handed.length, 4, 'one row, then three; nothing for holdersOf');
    const inLog = other.prepare(`select * from events where type = 'G5' order by seq`).all() as Array<
      Record<string, unknown>
    >;
    assert.deepEqual(
      handed.map((r) => ({ ...r, seq: Number(r.seq) })),
      inLog.map((r) => ({ ...r, seq: Number(r.seq) })),
    );
  });
});
