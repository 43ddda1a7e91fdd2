/**
 * Issue #13 item 5, the history guard on PostgreSQL with several nodes and restricted roles: nodes that
 * notice a replaced history at once (at start-up or while running) rotate the epoch once and all adopt
 * it; a role that may not execute pg_control_system() and friends still gets a working check.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import pg from 'pg';
import { createLogger } from '../../src/logger.ts';
import { openHistoryGuard } from '../../src/messages/history-guard.ts';
import { HISTORY_TOKEN_KEY } from '../../src/messages/history.repository.ts';
import { openStore, type Store } from '../../src/store/database.ts';
import { migrateToLatest } from '../../src/store/migrate.ts';
import { createPgDatabase, PG_ADMIN_URL, startApp, testConfig, type TestApp } from '../helpers/app.ts';
import { connect } from '../helpers/ws-client.ts';

/** A token no live database has: as if the database had been restored elsewhere. */
const RESTORED_ELSEWHERE = 'database=1;system=1;table=1;timeline=1';

function capture() {
  const lines: string[] = [];
  const logger = createLogger(
    'info',
    new Writable({
      write(chunk: Buffer, _e, cb) {
        lines.push(chunk.toString());
        cb();
      },
    }),
  );
  return { lines, logger };
}

const rotations = (lines: string[]) => lines.filter((l) => l.includes('cursor epoch rotated')).length;

async function meta(store: Store, key: string): Promise<string | undefined> {
  const row = await store.db
    .selectFrom('skypush_meta')
    .select('value')
    .where('key', '=', key)
    .executeTakeFirst();
  return row?.value;
}

async function setToken(store: Store, token: string): Promise<void> {
  await store.db
    .updateTable('skypush_meta')
    .set({ value: token })
    .where('key', '=', HISTORY_TOKEN_KEY)
    .execute();
}

describe('postgres: several nodes and the history token', () => {
  it('stores system, database, table and timeline; nodes starting at once on a restored database rotate once', async () => {
    const d = await createPgDatabase();
    const stores = [0, 1, 2].map(() => openStore(testConfig({ SKYPUSH_DATABASE_URL: d.url }).database));
    try {
      await Promise.all(stores.map((s) => migrateToLatest(s)));
      const first = stores[0] as Store;
      await openHistoryGuard({
        db: first.db,
        dialect: 'postgres',
        intervalMs: 60_000,
        logger: capture().logger,
      });
      assert.match(
        (await meta(first, HISTORY_TOKEN_KEY)) ?? '',
        /^database=\d+;system=\d+;table=\d+;timeline=\d+$/,
      );

      for (let round = 0; round < 3; round++) {
        const before = await meta(first, 'epoch');
        await setToken(first, RESTORED_ELSEWHERE);
        const logs = stores.map(() => capture());
        const guards = await Promise.all(
          stores.map((s, i) =>
            openHistoryGuard({ db: s.db, dialect: 'postgres', intervalMs: 60_000, logger: logs[i]!.logger }),
          ),
        );
        const epochs = new Set(guards.map((g) => g.epoch));
        assert.equal(epochs.size, 1, `round ${round}: every node adopts one epoch`);
        assert.notEqual([...epochs][0], before);
        assert.equal([...epochs][0], await meta(first, 'epoch'));
        assert.equal(rotations(logs.flatMap((l) => l.lines)), 1, `round ${round}: rotated exactly once`);
        assert.notEqual(await meta(first, HISTORY_TOKEN_KEY), RESTORED_ELSEWHERE);
      }
    } finally {
      await Promise.all(stores.map((s) => s.close()));
      await d.drop();
    }
  });

  it('running nodes that see the change at once rotate once, close their sockets and follow the new epoch', async () => {
    const a = await startApp({ dialect: 'postgres' });
    let b: TestApp | undefined;
    try {
      b = await startApp({ dialect: 'postgres', env: { SKYPUSH_DATABASE_URL: a.config.database.url } });
      const u = await a.createUser('nodes');
      const onA = await connect(a.wsUrl, { token: u.token });
      const onB = await connect(b.wsUrl, { token: u.token });
      const old = (await onA.waitFor((f) => f.type === 'CONNECTED')).data['cursor'] as string;
      await onB.waitFor((f) => f.type === 'CONNECTED');

      await setToken(a.app.store, RESTORED_ELSEWHERE);
      const [ea, eb] = await Promise.all([a.app.history.check(), b.app.history.check()]);
      assert.equal(ea, eb);
      assert.notEqual(ea, old.split('.')[0]);
      assert.equal(rotations([...a.logs, ...b.logs]), 1);
      assert.equal((await onA.closed).code, 1012);
      assert.equal((await onB.closed).code, 1012);

      // A cursor minted on one node resumes on the other: both serve the new epoch.
      const s = await connect(a.wsUrl, { token: u.token });
      const minted = (await s.waitFor((f) => f.type === 'CONNECTED')).data['cursor'] as string;
      await s.close();
      assert.equal(minted.split('.')[0], ea);
      const r = await connect(b.wsUrl, { token: u.token, since: minted });
      const connected = await r.waitFor((f) => f.type === 'CONNECTED');
      assert.deepEqual(connected.data['resume'], { requested: true, ok: true, replayed: 0 });
      await r.close();
      const old2 = await connect(b.wsUrl, { token: u.token, since: old });
      assert.equal((await old2.waitFor((f) => f.type === 'RESYNC')).data['reason'], 'foreign');
      await old2.close();

      // Nothing changed since: further checks rotate nothing.
      await Promise.all([a.app.history.check(), b.app.history.check()]);
      assert.equal(rotations([...a.logs, ...b.logs]), 1);
    } finally {
      await b?.close();
      await a.close();
    }
  });
});

describe('postgres: a role that may not read the control functions', () => {
  it('checks with the parts it can read, says once at info which it cannot, and still catches a restore', async () => {
    const suffix = `${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
    const role = `skypush_t_role_${suffix}`;
    const dbName = `skypush_t_limited_${suffix}`;
    const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
    await admin.connect();
    await admin.query(`CREATE ROLE ${role} LOGIN`);
    await admin.query(`CREATE DATABASE ${dbName} OWNER ${role}`);
    const url = new URL(PG_ADMIN_URL);
    url.pathname = `/${dbName}`;
    const asAdmin = new pg.Client({ connectionString: url.toString() });
    await asAdmin.connect();
    // Function privileges are per database: this affects the test's database only.
    for (const fn of ['pg_control_system()', 'pg_control_checkpoint()', 'pg_walfile_name(pg_lsn)'])
      await asAdmin.query(`REVOKE EXECUTE ON FUNCTION ${fn} FROM PUBLIC`);
    await asAdmin.end();
    url.username = role;
    const store = openStore(testConfig({ SKYPUSH_DATABASE_URL: url.toString() }).database);
    try {
      await migrateToLatest(store);
      const { lines, logger } = capture();
      const guard = await openHistoryGuard({ db: store.db, dialect: 'postgres', intervalMs: 60_000, logger });
      await guard.check();
      await guard.check();
      assert.match((await meta(store, HISTORY_TOKEN_KEY)) ?? '', /^database=\d+;table=\d+$/);
      const unreadable = lines.filter((l) => l.includes('this part cannot be read here'));
      assert.deepEqual(
        unreadable.map((l) => [JSON.parse(l).level, JSON.parse(l).part]),
        [
          [30, 'system'],
          [30, 'timeline'],
        ],
        'each unreadable part said once, at info',
      );
      const before = guard.epoch;
      await setToken(store, 'database=1');
      assert.notEqual(await guard.check(), before, 'a different database OID still rotates the epoch');
      await guard.stop();
    } finally {
      await store.close();
      await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
      await admin.query(`DROP ROLE IF EXISTS ${role}`);
      await admin.end();
    }
  });
});
