/**
 * The lockout counter on a fake clock: one node's map, and the Redis-shared one against real Redis (the
 * HTTP behaviour is in test/http/auth.test.ts and test/http/login-flood.test.ts, the cluster in test/cluster/).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import pino from 'pino';
import {
  FAILURE_MEMORY_MS,
  IN_FLIGHT_RETRY_SEC,
  createLoginGuard,
  type LoginAttempt,
  type LoginGuard,
} from '../../src/auth/login-guard.ts';
import { createSharedLoginGuard } from '../../src/auth/login-guard.redis.ts';
import { REDIS_URL } from '../helpers/app.ts';

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
