/**
 * Prepared queries (src/store/prepared.ts) and the SQLite statement cache (src/store/database.ts), on
 * real SQLite and PostgreSQL databases open side by side in one process: each dialect gets its own SQL,
 * inputs are bound afresh on every call, constants stay, and transactions use the same compiled query.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import { openStore, type Store } from '../../src/store/database.ts';
import { migrateToLatest } from '../../src/store/migrate.ts';
import { prepared } from '../../src/store/prepared.ts';
import { createPgDatabase } from '../helpers/app.ts';

const byName = prepared((db, p: { username: string }) =>
  db.selectFrom('users').select(['id', 'username', 'role']).where('username', '=', p.username),
);
// A constant ('admin') among the inputs, in a different position from them.
const adminsAbove = prepared((db, p: { minId: number; limit: number }) =>
  db
    .selectFrom('users')
    .select('id')
    .where('role', '=', 'admin')
    .where('id', '>', p.minId)
    .orderBy('id')
    .limit(p.limit),
);
const insertUser = prepared((db, p: { id: number; username: string; createdAt: number }) =>
  db
    .insertInto('users')
    .values({
      id: p.id,
      username: p.username,
      display_name: p.username,
      password_hash: null,
      role: 'user',
      disabled: 0,
      created_at: p.createdAt,
      updated_at: p.createdAt,
    })
    .returning('id'),
);

const adminRow = (id: number, username: string) => ({
  id,
  username,
  display_name: 'a',
  password_hash: null,
  role: 'admin' as const,
  disabled: 0,
  created_at: 0,
  updated_at: 0,
});

function openDialect(name: 'sqlite' | 'postgres', url: string): Store {
  return openStore({
    url,
    kind: name,
    ...(name === 'sqlite' && { sqlitePath: url.slice('sqlite:'.length) }),
    poolSize: 2,
    statementTimeoutMs: 5000,
    connectTimeoutMs: 5000,
  });
}

describe('prepared queries on SQLite and PostgreSQL in one process', () => {
  const stores: Array<[string, Store]> = [];
  const cleanups: Array<() => Promise<void>> = [];

  before(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'skypush-prepared-'));
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
    const pg = await createPgDatabase();
    cleanups.push(pg.drop);
    for (const [name, url] of [
      ['sqlite', `sqlite:${join(dir, 'p.db')}`],
      ['postgres', pg.url],
    ] as const) {
      const store = openDialect(name, url);
      await migrateToLatest(store);
      stores.push([name, store]);
    }
  });
  after(async () => {
    for (const [, s] of stores) await s.close();
    for (const c of cleanups.reverse()) await c();
  });

  it('binds new inputs on every call, on each dialect, and in transactions', async () => {
    // Interleave the dialects so a compiled query of one would be used for the other if they were shared.
    for (let round = 0; round < 3; round++) {
      for (const [name, { db }] of stores) {
        const id = 1000 + round;
        const inserted = await db
          .transaction()
          .execute(async (trx) =>
            insertUser(trx, { id, username: `${name}-u${round}`, createdAt: Date.now() }),
          );
        assert.equal(Number(inserted.rows[0]?.id), id, name);
        const found = await byName(db, { username: `${name}-u${round}` });
        assert.deepEqual(
          found.rows.map((r) => [Number(r.id), r.username, r.role]),
          [[id, `${name}-u${round}`, 'user']],
          name,
        );
        assert.deepEqual((await byName(db, { username: 'nobody' })).rows, [], name);
      }
    }
  });

  it('keeps the constants of the query beside the bound inputs', async () => {
    for (const [name, { db }] of stores) {
      for (const id of [2001, 2002, 2003]) {
        await db
          .insertInto('users')
          .values(adminRow(id, `${name}-admin${id}`))
          .execute();
      }
      const ids = async (minId: number, limit: number) =>
        (await adminsAbove(db, { minId, limit })).rows.map((r) => Number(r.id));
      assert.deepEqual(await ids(2000, 10), [2001, 2002, 2003], name);
      assert.deepEqual(await ids(2001, 1), [2002], name);
      assert.deepEqual(await ids(2003, 10), [], name);
    }
  });

  it('refuses a builder that ignores its inputs (it would run the same query whatever the call)', async () => {
    const [, { db }] = stores[0] as [string, Store];
    const ignores = prepared((d, _p: { id: number }) =>
      d.selectFrom('users').select('id').where('id', '=', 1),
    );
    await assert.rejects(() => ignores(db, { id: 5 }), /uses none of its inputs/);
  });

  it('refuses a builder that spreads its input (the stand-in has no keys: every field would bind undefined)', async () => {
    const [, { db }] = stores[0] as [string, Store];
    const inner = (d: typeof db, r: { id: number; role: 'admin' | 'user' }) =>
      d.selectFrom('users').select('id').where('id', '=', r.id).where('role', '=', r.role);
    const spreads = prepared((d, p: { id: number; role: 'admin' | 'user' }) => inner(d, { ...p }));
    await assert.rejects(() => spreads(db, { id: 5, role: 'admin' }), /binds an undefined value/);
    const names = prepared((d, p: { id: number; role: 'admin' | 'user' }) =>
      inner(d, { id: p.id, role: p.role }),
    );
    assert.deepEqual((await names(db, { id: 1, role: 'user' })).rows, []);
  });

  it('SQLite: a cached statement still sees a schema change and later rows', async () => {
    const [, { db }] = stores[0] as [string, Store];
    const q = sql<{ n: number }>`select count(*) as n from users where role = 'admin'`;
    assert.equal(Number((await q.execute(db)).rows[0]?.n), 3);
    await sql`alter table users add column extra integer`.execute(db);
    await db.insertInto('users').values(adminRow(2004, 'late-admin')).execute();
    // Same SQL text, so the same cached statement: it must count the new row.
    assert.equal(Number((await q.execute(db)).rows[0]?.n), 4);
    const found = await byName(db, { username: 'late-admin' });
    assert.deepEqual(
      found.rows.map((r) => Number(r.id)),
      [2004],
    );
  });
});

describe('SQLite: prepared reads at once on a free connection', () => {
  let dir: string;
  let store: Store;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'skypush-read-now-'));
    store = openDialect('sqlite', `sqlite:${join(dir, 'r.db')}`);
    await migrateToLatest(store);
  });
  after(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers a free connection in one step, and waits behind an open transaction without seeing its rows', async () => {
    const { db } = store;
    await db.insertInto('users').values(adminRow(1, 'first')).execute();
    // Free: the answer is there after one microtask (through Kysely it takes several).
    let early: unknown;
    void byName(db, { username: 'first' }).then((r) => (early = r.rows));
    await Promise.resolve();
    await Promise.resolve();
    assert.deepEqual(early, [{ id: 1, username: 'first', role: 'admin' }]);

    // A transaction holds the one connection across its awaits: a read meanwhile waits for it.
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let inserted!: () => void;
    const wrote = new Promise<void>((r) => (inserted = r));
    const trx = db.transaction().execute(async (t) => {
      await t.insertInto('users').values(adminRow(2, 'second')).execute();
      inserted();
      await gate;
      throw new Error('rolled back');
    });
    await wrote;
    let seen: unknown;
    const read = byName(db, { username: 'second' }).then((r) => (seen = r.rows));
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
    assert.equal(seen, undefined, 'the read waits while the transaction is open');
    release();
    await assert.rejects(trx, /rolled back/);
    await read;
    assert.deepEqual(seen, [], 'and never saw the row the transaction rolled back');
    assert.deepEqual(
      (await adminsAbove(db, { minId: 0, limit: 10 })).rows.map((r) => Number(r.id)),
      [1],
    );
  });
});
