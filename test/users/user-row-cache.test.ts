/**
 * The user-row cache (src/users/user-row-cache.ts): a row read once is served from memory until a change
 * drops it; a read under way across a change is not kept; a missing user is not kept; bounded. The HTTP
 * side (a disable, a promotion, a demotion applies to the next request) is in test/http/auth.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { UserRowCache } from '../../src/users/user-row-cache.ts';
import type { UserRow } from '../../src/users/user.repository.ts';

const row = (id: number, role: 'user' | 'admin' = 'user'): UserRow => ({
  id,
  username: `u${id}`,
  password_hash: null,
  role,
  display_name: `U${id}`,
  disabled: 0,
  created_at: 0,
  updated_at: 0,
});

describe('user row cache', () => {
  it('reads a row once, then again only after a change to that user', async () => {
    const c = new UserRowCache();
    const db = new Map([
      [1, row(1)],
      [2, row(2)],
    ]);
    let reads = 0;
    const read = async (id: number) => (reads++, db.get(id));
    await c.get(1, read);
    await c.get(1, read);
    await c.get(2, read);
    assert.equal(reads, 2);
    db.set(1, row(1, 'admin'));
    c.changed([1]);
    assert.equal((await c.get(1, read))?.role, 'admin');
    await c.get(2, read);
    assert.equal(reads, 3, 'user 2 still from memory');
    c.changed();
    await c.get(2, read);
    assert.equal(reads, 4, 'a change to all users drops every row');
  });

  it('does not keep a missing user, nor a row whose read was under way across a change', async () => {
    const c = new UserRowCache();
    let reads = 0;
    assert.equal(await c.get(9, async () => (reads++, undefined)), undefined);
    assert.equal((await c.get(9, async () => (reads++, row(9))))?.id, 9);
    assert.equal(reads, 2, 'the miss was not kept');
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const stale = c.get(5, async () => {
      await held;
      return row(5, 'admin');
    });
    c.changed([5]);
    release();
    assert.equal((await stale)?.role, 'admin', 'the caller gets what it read');
    assert.equal((await c.get(5, async () => row(5, 'user')))?.role, 'user', 'but it was not kept');
  });

  it('keeps at most its bound, the oldest dropped first', async () => {
    const c = new UserRowCache(3);
    for (const id of [1, 2, 3, 4]) await c.get(id, async () => row(id));
    assert.equal(c.size, 3);
    let reads = 0;
    await c.get(1, async () => (reads++, row(1)));
    await c.get(4, async () => (reads++, row(4)));
    assert.equal(reads, 1, '1 was dropped, 4 kept');
  });
});
