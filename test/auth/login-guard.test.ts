/**
 * The node-local lockout counter on a fake clock (the HTTP behaviour is in test/http/auth.test.ts, the
 * cluster-wide one in test/cluster/).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FAILURE_MEMORY_MS, createLoginGuard } from '../../src/auth/login-guard.ts';

describe('login guard (one node)', () => {
  const setup = () => {
    let t = 1_000_000;
    const guard = createLoginGuard({ maxFailures: 3, lockoutSec: 60, now: () => t });
    return { guard, advance: (ms: number) => (t += ms) };
  };

  it('locks the pair for the lockout after the limit, case-insensitively on the username', async () => {
    const { guard, advance } = setup();
    await guard.fail('Dave', '10.0.0.1');
    await guard.fail('dave', '10.0.0.1');
    assert.equal(await guard.retryAfter('dave', '10.0.0.1'), 0);
    await guard.fail('DAVE', '10.0.0.1');
    assert.equal(await guard.retryAfter('dave', '10.0.0.1'), 60);
    assert.equal(await guard.retryAfter('dave', '10.0.0.2'), 0, 'another address is not affected');
    advance(59_500);
    assert.equal(await guard.retryAfter('dave', '10.0.0.1'), 1);
    advance(500);
    assert.equal(await guard.retryAfter('dave', '10.0.0.1'), 0);
    // After a lockout the count starts again: one failure does not re-lock.
    await guard.fail('dave', '10.0.0.1');
    assert.equal(await guard.retryAfter('dave', '10.0.0.1'), 0);
  });

  it('forgets failures a day after the last one, not before', async () => {
    const { guard, advance } = setup();
    await guard.fail('erin', '10.0.0.1');
    await guard.fail('erin', '10.0.0.1');
    advance(FAILURE_MEMORY_MS);
    await guard.fail('erin', '10.0.0.1');
    assert.ok((await guard.retryAfter('erin', '10.0.0.1')) > 0, 'still within a day: locked');

    const other = setup();
    await other.guard.fail('erin', '10.0.0.1');
    await other.guard.fail('erin', '10.0.0.1');
    other.advance(FAILURE_MEMORY_MS + 1);
    await other.guard.fail('erin', '10.0.0.1');
    assert.equal(await other.guard.retryAfter('erin', '10.0.0.1'), 0, 'older failures were forgotten');
  });

  it('a success clears the count; the map stays within its bound', async () => {
    let t = 0;
    const guard = createLoginGuard({ maxFailures: 2, lockoutSec: 60, maxEntries: 2, now: () => t++ });
    await guard.fail('a', 'x');
    await guard.succeed('a', 'x');
    await guard.fail('a', 'x');
    assert.equal(await guard.retryAfter('a', 'x'), 0);
    await guard.fail('b', 'x');
    await guard.fail('c', 'x'); // evicts a, the oldest
    await guard.fail('a', 'x');
    assert.equal(await guard.retryAfter('a', 'x'), 0, 'a was evicted, its earlier failure is gone');
    await guard.fail('c', 'x');
    assert.ok((await guard.retryAfter('c', 'x')) > 0);
  });
});
