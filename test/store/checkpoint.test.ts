/**
 * SQLite WAL checkpoints run in a worker thread (src/store/checkpointer.ts), not in the commit that
 * happens to cross the threshold: the main connection never checkpoints, yet the WAL's pages reach the
 * database file while the store is open, and nothing is lost across close and reopen.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { sql } from 'kysely';
import SQLite from 'better-sqlite3';
import { startCheckpointer } from '../../src/store/checkpointer.ts';
import { openStore } from '../../src/store/database.ts';
import { migrateToLatest } from '../../src/store/migrate.ts';
import { waitUntil } from '../helpers/realtime.ts';

const dir = mkdtempSync(join(tmpdir(), 'skypush-ckpt-'));
const file = join(dir, 'c.db');
const open = () =>
  openStore({
    url: `sqlite:${file}`,
    kind: 'sqlite',
    sqlitePath: file,
    poolSize: 1,
    statementTimeoutMs: 5000,
    connectTimeoutMs: 5000,
  });

describe('SQLite WAL checkpoints off the event loop', () => {
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('copies committed pages into the database file from the worker, and keeps them across reopen', async () => {
    const store = open();
    await migrateToLatest(store);
    const { db } = store;
    const auto = await sql<{ wal_autocheckpoint: number }>`pragma wal_autocheckpoint`.execute(db);
    assert.equal(Number(auto.rows[0]?.wal_autocheckpoint), 0, 'the main connection checkpoints by itself');

    const before = statSync(file).size;
    // ~3000 commits of ~1 KB rows: far past SQLite's default 1000-page threshold.
    for (let i = 1; i <= 3000; i++) {
      await db
        .insertInto('users')
        .values({
          id: i,
          username: `u${i}-${'x'.repeat(900)}`,
          display_name: 'd',
          password_hash: null,
          role: 'user',
          disabled: 0,
          created_at: i,
          updated_at: i,
        })
        .execute();
    }
    // Only the worker can have grown the database file while the store is open.
    await waitUntil(async () => statSync(file).size > before + 2_000_000, 10_000);
    await store.close();
    assert.ok(!existsSync(`${file}-wal`) || statSync(`${file}-wal`).size === 0, 'WAL left behind');

    const again = open();
    const n = await again.db
      .selectFrom('users')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow();
    assert.equal(Number(n.n), 3000);
    await again.close();
  });

  it('gives the checkpoints back to SQLite, with a warning, when the worker dies', async () => {
    const sqlite = new SQLite(join(dir, 'fallback.db'));
    sqlite.pragma('journal_mode = WAL');
    const warnings: string[] = [];
    // The worker cannot open a file that does not exist: it fails at once and exits.
    const ckpt = startCheckpointer(sqlite, join(dir, 'missing.db'), 50, (m) => warnings.push(m));
    assert.equal(sqlite.pragma('wal_autocheckpoint', { simple: true }), 0);
    await waitUntil(() => warnings.length > 0, 10_000);
    assert.equal(sqlite.pragma('wal_autocheckpoint', { simple: true }), 1000);
    assert.equal(warnings.length, 1, warnings.join('\n'));
    assert.match(warnings[0] as string, /WAL checkpointer stopped \(SQLITE_CANTOPEN\)/);
    await ckpt.stop();
    sqlite.close();
  });
});
