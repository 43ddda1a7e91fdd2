/**
 * Presence in PostgreSQL against a real database, with each node's registry faked by a set: changes
 * reach the other nodes in batched writes, a node whose lease ran out is ignored and pruned, a live node
 * whose lease was pruned puts itself back, and an unreachable database is a 503, not a guess.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import pino from 'pino';
import { AppError } from '../../src/errors.ts';
import { FLUSH_MS, MAX_PENDING, PgPresence, prunePresence } from '../../src/realtime/pg-presence.ts';
import { openStore, type Store } from '../../src/store/database.ts';
import { migrateToLatest } from '../../src/store/migrate.ts';
import type { DB } from '../../src/store/schema.ts';
import { createPgDatabase } from '../helpers/app.ts';
import { freePort } from '../helpers/node-process.ts';
import { waitUntil } from '../helpers/realtime.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const logger = pino({ level: 'silent' });

/** A node: its registry (a set), its presence, and the statements it sent to the database. */
interface Node {
  users: Set<number>;
  presence: PgPresence;
  statements: string[];
  connect(userId: number): void;
  disconnect(userId: number): void;
}

describe('presence in PostgreSQL', () => {
  let url: string;
  let drop: () => Promise<void>;
  let store: Store;
  const stops: Array<() => Promise<void>> = [];

  async function node(nodeId: string, ttlMs = 3000): Promise<Node> {
    const statements: string[] = [];
    const db = new Kysely<DB>({
      dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: url, max: 2 }) }),
      log: (e) => void statements.push(e.query.sql),
    });
    const users = new Set<number>();
    const local = {
      localUserIds: () => [...users],
      onlineUserIds: async () => [...users],
      isOnline: async (u: number) => users.has(u),
    };
    const presence = new PgPresence({ db, nodeId, ttlMs, logger, local });
    await presence.start();
    stops.push(async () => {
      await presence.stop();
      await db.destroy();
    });
    return {
      users,
      presence,
      statements,
      connect(u) {
        users.add(u);
        presence.changed(u, true);
      },
      disconnect(u) {
        users.delete(u);
        presence.changed(u, false);
      },
    };
  }
  const sorted = async (n: Node) => (await n.presence.onlineUserIds()).sort((x, y) => x - y);

  before(async () => {
    ({ url, drop } = await createPgDatabase());
    store = openStore({
      url,
      kind: 'postgres',
      poolSize: 2,
      statementTimeoutMs: 5000,
      connectTimeoutMs: 1000,
    });
    await migrateToLatest(store);
  });
  after(async () => {
    for (const stop of stops) await stop();
    await store.close();
    await drop();
  });

  it('answers cluster-wide: this node from its registry at once, the others after a batched write', async () => {
    const [a, b] = [await node('A'), await node('B')];
    a.connect(1);
    a.connect(2);
    b.connect(3);
    assert.deepEqual(await sorted(a), [1, 2], 'this node’s own users, before any write');
    assert.equal(await b.presence.isOnline(1), false, 'not written yet');
    await sleep(FLUSH_MS * 3);
    assert.deepEqual(await sorted(a), [1, 2, 3]);
    assert.deepEqual(await sorted(b), [1, 2, 3]);
    assert.equal(await b.presence.isOnline(1), true);
    a.disconnect(1);
    await sleep(FLUSH_MS * 3);
    assert.equal(await b.presence.isOnline(1), false);
    assert.deepEqual(await sorted(b), [2, 3]);
  });

  it('writes a burst of changes in a statement or two, and rewrites the whole set past its bound', async () => {
    const [a, b] = [await node('C'), await node('D')];
    const before = a.statements.length;
    for (let u = 1000; u < 3000; u++) a.connect(u);
    for (let u = 1000; u < 1500; u++) a.disconnect(u);
    await sleep(FLUSH_MS * 3);
    const burst = a.statements.slice(before).filter((q) => q.includes('presence_users'));
    assert.ok(burst.length <= 2, `${burst.length} statements`);
    assert.equal((await b.presence.onlineUserIds()).filter((u) => u >= 1000 && u < 3000).length, 1500);

    const mark = a.statements.length;
    for (let u = 10_000; u < 10_000 + MAX_PENDING + 1; u++) a.connect(u);
    const seen = async () => (await b.presence.onlineUserIds()).filter((u) => u >= 10_000).length;
    await waitUntil(async () => (await seen()) === MAX_PENDING + 1, 5000);
    const written = a.statements.slice(mark).filter((q) => q.includes('presence_users'));
    assert.equal(written.length, 1, 'one statement');
    assert.match(written[0] as string, /insert into presence_nodes/, 'the whole-set rewrite');
  });

  it('ignores a node whose lease ran out, prunes it, and a live node that was pruned puts itself back', async () => {
    const [a, b] = [await node('E', 1000), await node('F', 1000)];
    a.connect(41);
    await waitUntil(() => b.presence.isOnline(41), 2000);
    // E stops renewing as if it had died (its timers are stopped; its rows stay behind).
    await a.presence.stop();
    await sql`insert into presence_nodes values ('E', 0) on conflict (node_id) do update set expires_at = 0`.execute(
      store.db,
    );
    await sql`insert into presence_users values (41, 'E')`.execute(store.db);
    assert.equal(await b.presence.isOnline(41), false, 'a lapsed lease counts for nothing');
    assert.ok(!(await b.presence.onlineUserIds()).includes(41));
    assert.ok((await prunePresence(store.db)) >= 1);
    const left = await sql<{
      n: number;
    }>`select count(*)::int as n from presence_users where node_id = 'E'`.execute(store.db);
    assert.equal(left.rows[0]?.n, 0, 'its users went with its lease');

    // F is alive but its lease was pruned (a long pause): the next renewal writes its set again.
    b.connect(42);
    await sleep(FLUSH_MS * 3);
    await sql`delete from presence_nodes where node_id = 'F'`.execute(store.db);
    const c = await node('G');
    assert.equal(await c.presence.isOnline(42), false);
    await waitUntil(() => c.presence.isOnline(42), 2000);
  });

  it('repairs a failed write with a rewrite: a change made while the lease was gone is not lost', async () => {
    const [a, b] = [await node('H', 60_000), await node('I')];
    await sql`delete from presence_nodes where node_id = 'H'`.execute(store.db);
    a.connect(51); // its write fails (the lease row is gone), the next one rewrites
    await sleep(FLUSH_MS * 3);
    a.connect(52);
    await waitUntil(async () => (await b.presence.isOnline(51)) && (await b.presence.isOnline(52)), 2000);
  });

  it('answers 503 when the database cannot be reached', async () => {
    const db = new Kysely<DB>({
      dialect: new PostgresDialect({
        pool: new pg.Pool({
          connectionString: `postgres://postgres@127.0.0.1:${await freePort()}/none`,
          connectionTimeoutMillis: 500,
        }),
      }),
    });
    const local = {
      localUserIds: () => [9],
      onlineUserIds: async () => [9],
      isOnline: async (u: number) => u === 9,
    };
    const presence = new PgPresence({ db, nodeId: 'J', ttlMs: 3000, logger, local });
    try {
      await presence.start(); // logs, does not throw: the lease timer retries
      assert.equal(await presence.isOnline(9), true, 'this node’s own users need no database');
      await assert.rejects(
        presence.onlineUserIds(),
        (e: unknown) => e instanceof AppError && e.status === 503,
      );
      await assert.rejects(presence.isOnline(10), (e: unknown) => e instanceof AppError && e.status === 503);
    } finally {
      await presence.stop();
      await db.destroy();
    }
  });
});
