/**
 * The lockout counter on a fake clock: one node's map, and the shared ones against real Redis and real
 * PostgreSQL (the HTTP behaviour is in test/http/auth.test.ts and test/http/login-flood.test.ts, the
 * cluster in test/cluster/).
 */
import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { sql } from 'kysely';
import pino from 'pino';
import { createPgLoginGuard, pruneLoginFailures } from '../../src/auth/login-guard.pg.ts';
import {
  FAILURE_MEMORY_MS,
  IN_FLIGHT_RETRY_SEC,
  createLoginGuard,
  pairKey,
  type LoginAttempt,
  type LoginGuard,
} from '../../src/auth/login-guard.ts';
import { createSharedLoginGuard } from '../../src/auth/login-guard.redis.ts';
import { openStore, type Store } from '../../src/store/database.ts';
import { migrateToLatest } from '../../src/store/migrate.ts';
import { REDIS_URL, createPgDatabase } from '../helpers/app.ts';
import { freePort } from '../helpers/node-process.ts';

/** The key a pair's row has in PostgreSQL. */
const pairHash = (u: string, ip: string) => createHash('sha256').update(pairKey(u, ip)).digest('hex');

/** One whole failed attempt. */
async function fail(guard: LoginGuard, u: string, ip: string): Promise<void> {
  const a = await guard.begin(u, ip);
  if (a.admitted) await a.attempt.end('failure');
}

/** Seconds the pair must wait now (0: it may try), without leaving an attempt behind. */
async function retryAfter(guard: LoginGuard, u: string, ip: string): Promise<number> {
  const a = await guard.begin(u, ip);
  if (!a.admitted) return a.retryAfter;
  await a.attempt.end('unchecked');
  return 0;
}

async function admitted(guard: LoginGuard, u: string, ip: string): Promise<LoginAttempt> {
  const a = await guard.begin(u, ip);
  assert.ok(a.admitted, `${u}@${ip} admitted`);
  return a.attempt;
}

describe('login guard (one node)', () => {
  const setup = () => {
    let t = 1_000_000;
    const guard = createLoginGuard({ maxFailures: 3, lockoutSec: 60, now: () => t });
    return { guard, advance: (ms: number) => (t += ms) };
  };

  it('locks the pair for the lockout after the limit, case-insensitively on the username', async () => {
    const { guard, advance } = setup();
    await fail(guard, 'Dave', '10.0.0.1');
    await fail(guard, 'dave', '10.0.0.1');
    assert.equal(await retryAfter(guard, 'dave', '10.0.0.1'), 0);
    await fail(guard, 'DAVE', '10.0.0.1');
    assert.equal(await retryAfter(guard, 'dave', '10.0.0.1'), 60);
    assert.equal(await retryAfter(guard, 'dave', '10.0.0.2'), 0, 'another address is not affected');
    advance(59_500);
    assert.equal(await retryAfter(guard, 'dave', '10.0.0.1'), 1);
    advance(500);
    assert.equal(await retryAfter(guard, 'dave', '10.0.0.1'), 0);
    // After a lockout the count starts again: one failure does not re-lock.
    await fail(guard, 'dave', '10.0.0.1');
    assert.equal(await retryAfter(guard, 'dave', '10.0.0.1'), 0);
  });

  it('forgets failures a day after the last one, not before', async () => {
    const { guard, advance } = setup();
    await fail(guard, 'erin', '10.0.0.1');
    await fail(guard, 'erin', '10.0.0.1');
    advance(FAILURE_MEMORY_MS);
    await fail(guard, 'erin', '10.0.0.1');
    assert.ok((await retryAfter(guard, 'erin', '10.0.0.1')) > 0, 'still within a day: locked');

    const other = setup();
    await fail(other.guard, 'erin', '10.0.0.1');
    await fail(other.guard, 'erin', '10.0.0.1');
    other.advance(FAILURE_MEMORY_MS + 1);
    await fail(other.guard, 'erin', '10.0.0.1');
    assert.equal(await retryAfter(other.guard, 'erin', '10.0.0.1'), 0, 'older failures were forgotten');
  });

  it('a success clears the count; the map stays within its bound', async () => {
    let t = 0;
    const guard = createLoginGuard({ maxFailures: 2, lockoutSec: 60, maxEntries: 2, now: () => t++ });
    await fail(guard, 'a', 'x');
    await (await admitted(guard, 'a', 'x')).end('success');
    await fail(guard, 'a', 'x');
    assert.equal(await retryAfter(guard, 'a', 'x'), 0);
    await fail(guard, 'b', 'x');
    await fail(guard, 'c', 'x'); // evicts a, the oldest
    await fail(guard, 'a', 'x');
    assert.equal(await retryAfter(guard, 'a', 'x'), 0, 'a was evicted, its earlier failure is gone');
    await fail(guard, 'c', 'x');
    assert.ok((await retryAfter(guard, 'c', 'x')) > 0);
  });
});

/** The in-flight rules, the same for both guards. */
function inFlightSuite(name: string, make: () => LoginGuard) {
  describe(`${name}: attempts count before they are checked`, () => {
    it('admits at most maxFailures concurrent attempts for a pair; the rest are refused at once', async () => {
      const guard = make();
      const results = await Promise.all(Array.from({ length: 50 }, () => guard.begin('zoe', '10.9.0.1')));
      const ok = results.filter((r) => r.admitted);
      assert.equal(ok.length, 3);
      for (const r of results)
        if (!r.admitted) assert.equal(r.retryAfter, IN_FLIGHT_RETRY_SEC, 'not locked yet: retry soon');
      assert.equal((await guard.begin('zoe', '10.9.0.2')).admitted, true, 'another address is free');
      for (const r of ok) if (r.admitted) await r.attempt.end('failure');
      const locked = await guard.begin('zoe', '10.9.0.1');
      assert.ok(!locked.admitted && locked.retryAfter > 50, 'three failures lock the pair for the lockout');
    });

    it('gives back attempts that were never checked, and ends an attempt only once', async () => {
      const guard = make();
      const a = await admitted(guard, 'yan', '10.9.0.1');
      const b = await admitted(guard, 'yan', '10.9.0.1');
      await admitted(guard, 'yan', '10.9.0.1');
      assert.equal((await guard.begin('yan', '10.9.0.1')).admitted, false);
      await a.end('unchecked');
      await a.end('unchecked');
      await a.end('failure'); // ignored: already ended
      const c = await admitted(guard, 'yan', '10.9.0.1');
      assert.equal((await guard.begin('yan', '10.9.0.1')).admitted, false, 'only one slot came back');
      await b.end('failure');
      await c.end('unchecked');
      assert.equal(await retryAfter(guard, 'yan', '10.9.0.1'), 0, 'one failure, one attempt in flight');
    });

    it('lets the right password in after fewer failures than the limit, and a success clears in-flight ones', async () => {
      const guard = make();
      await fail(guard, 'xia', '10.9.0.1');
      await fail(guard, 'xia', '10.9.0.1');
      const pending = await admitted(guard, 'xia', '10.9.0.1');
      assert.equal((await guard.begin('xia', '10.9.0.1')).admitted, false);
      await pending.end('success');
      for (let i = 0; i < 3; i++) await admitted(guard, 'xia', '10.9.0.1');
    });
  });
}

inFlightSuite('one node', () => createLoginGuard({ maxFailures: 3, lockoutSec: 60 }));

describe('shared login guard (real Redis)', () => {
  const redis = new Redis(REDIS_URL);
  const prefix = `test-guard-${randomUUID()}:`;
  const logger = pino({ level: 'silent' });
  const make = () => createSharedLoginGuard({ maxFailures: 3, lockoutSec: 60, redis, prefix, logger });
  after(async () => {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
  });

  inFlightSuite('shared', make);

  it('counts in-flight attempts across nodes: two guards together admit maxFailures', async () => {
    const [a, b] = [make(), make()];
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) => (i % 2 ? a : b).begin('wen', '10.8.0.1')),
    );
    assert.equal(results.filter((r) => r.admitted).length, 3);
    const keys = await redis.keys(`${prefix}login:*`);
    assert.ok(
      keys.every((k) => !k.includes('wen') && !k.includes('10.8.0.1')),
      'keys name no one',
    );
  });
});

describe('shared login guard (real PostgreSQL)', () => {
  let store: Store;
  let drop: () => Promise<void>;
  const logger = pino({ level: 'silent' });
  const make = (o: { maxFailures?: number; lockoutSec?: number } = {}) =>
    createPgLoginGuard({ maxFailures: 3, lockoutSec: 60, ...o, db: store.db, logger });
  const rows = () => store.db.selectFrom('login_failures').selectAll().execute();

  before(async () => {
    const db = await createPgDatabase();
    drop = db.drop;
    store = openStore({
      url: db.url,
      kind: 'postgres',
      poolSize: 4,
      statementTimeoutMs: 5000,
      connectTimeoutMs: 1000,
    });
    await migrateToLatest(store);
  });
  after(async () => {
    await store.close();
    await drop();
  });

  inFlightSuite('postgres', () => make());

  it('counts in-flight attempts across nodes: two guards together admit maxFailures; rows name no one', async () => {
    const [a, b] = [make(), make()];
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) => (i % 2 ? a : b).begin('wen', '10.8.0.1')),
    );
    assert.equal(results.filter((r) => r.admitted).length, 3);
    const all = JSON.stringify(await rows());
    assert.ok(!all.includes('wen') && !all.includes('10.8.0.1'), all);
  });

  it('locks across nodes for the lockout, then starts a new count', async () => {
    const [a, b] = [make({ lockoutSec: 1 }), make({ lockoutSec: 1 })];
    await fail(a, 'lee', '10.7.0.1');
    await fail(b, 'lee', '10.7.0.1');
    await fail(a, 'lee', '10.7.0.1');
    assert.equal(await retryAfter(b, 'lee', '10.7.0.1'), 1, 'locked on the node that saw one failure');
    await new Promise((r) => setTimeout(r, 1100));
    assert.equal(await retryAfter(b, 'lee', '10.7.0.1'), 0, 'the lock ran out');
    await fail(b, 'lee', '10.7.0.1');
    assert.equal(await retryAfter(a, 'lee', '10.7.0.1'), 0, 'one failure after a lockout does not re-lock');
  });

  it('forgets failures past their memory and attempts past their deadline (a node that died mid-check)', async () => {
    const [dead, guard] = [make(), make()];
    await fail(dead, 'kim', '10.6.0.1');
    await fail(dead, 'kim', '10.6.0.1');
    await admitted(dead, 'kim', '10.6.0.1'); // never ended: its node died
    assert.equal((await guard.begin('kim', '10.6.0.1')).admitted, false, 'another node sees all three');
    // Move the pair's clock forward: the failures' memory and the attempt's deadline are behind us.
    await sql`update login_failures set failures_until = 0,
      attempts = (select jsonb_object_agg(key, 0) from jsonb_each(attempts))
      where pair_hash = ${pairHash('kim', '10.6.0.1')}`.execute(store.db);
    for (let i = 0; i < 3; i++) await admitted(guard, 'kim', '10.6.0.1');
  });

  it('housekeeping deletes pairs that hold nothing live, and keeps the rest', async () => {
    const guard = make();
    await fail(guard, 'old', '10.5.0.1');
    await fail(guard, 'live', '10.5.0.1');
    await admitted(guard, 'inflight', '10.5.0.1');
    await (await admitted(guard, 'done', '10.5.0.1')).end('success');
    for (let i = 0; i < 3; i++) await fail(guard, 'locked', '10.5.0.1');
    await sql`update login_failures set failures_until = 0 where pair_hash = ${pairHash('old', '10.5.0.1')}`.execute(
      store.db,
    );
    const kept = async () => new Set((await rows()).map((r) => r.pair_hash));
    const before = await kept();
    await pruneLoginFailures(store.db);
    const after = await kept();
    for (const u of ['old', 'done']) {
      assert.ok(before.has(pairHash(u, '10.5.0.1')), `${u} was there`);
      assert.ok(!after.has(pairHash(u, '10.5.0.1')), `${u} was pruned`);
    }
    for (const u of ['live', 'inflight', 'locked'])
      assert.ok(after.has(pairHash(u, '10.5.0.1')), `${u} kept`);
  });

  it('counts on this node alone while the database does not answer', async () => {
    const away = openStore({
      url: `postgres://postgres@127.0.0.1:${await freePort()}/none`,
      kind: 'postgres',
      poolSize: 1,
      statementTimeoutMs: 1000,
      connectTimeoutMs: 300,
    });
    const lines: string[] = [];
    const guard = createPgLoginGuard({
      maxFailures: 3,
      lockoutSec: 60,
      db: away.db,
      logger: pino({ level: 'warn' }, { write: (l: string) => void lines.push(l) }),
    });
    try {
      for (let i = 0; i < 3; i++) await fail(guard, 'solo', '10.4.0.1');
      assert.ok((await retryAfter(guard, 'solo', '10.4.0.1')) > 50, 'locked by this node’s own count');
      assert.equal(lines.filter((l) => l.includes('counts on this node only')).length, 1, 'logged once');
    } finally {
      await away.close();
    }
  });
});
