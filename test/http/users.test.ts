import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DIALECTS, startApp, type Res, type TestApp } from '../helpers/app.ts';
import { rowCounts } from '../helpers/store.ts';

interface UserData {
  id: number;
  username: string;
  role: string;
  displayName: string;
  disabled: boolean;
  hasPassword: boolean;
  createdAt: string;
}

/** Every admin-only route with a body that would be valid for an admin. */
const ADMIN_ROUTES: Array<{ method: string; path: string; body?: unknown }> = [
  { method: 'POST', path: '/api/v1/users', body: { username: 'would-be', password: 'password-123' } },
  { method: 'GET', path: '/api/v1/users' },
  { method: 'GET', path: '/api/v1/users/1' },
  { method: 'PATCH', path: '/api/v1/users/1', body: { disabled: true } },
  { method: 'POST', path: '/api/v1/users/bulk', body: { users: [{ id: 77, username: 'mirrored' }] } },
  { method: 'GET', path: '/api/v1/ws/online/users' },
  { method: 'POST', path: '/api/v1/ws/broadcast', body: { data: { title: 'hi', content: 'all' } } },
  { method: 'POST', path: '/api/v1/messages/send', body: { title: 't', content: 'c', targetType: 'all' } },
];

for (const dialect of DIALECTS) {
  describe(`${dialect}: admin-only routes`, () => {
    let t: TestApp;
    let user: { id: number; token: string };
    before(async () => {
      t = await startApp({ dialect });
      user = await t.createUser('plain', { id: 100 });
    });
    after(async () => t.close());

    for (const r of ADMIN_ROUTES) {
      it(`answers ${r.method} ${r.path} with 403 for a plain user and 401 without a token, changing nothing`, async () => {
        const before = await rowCounts(t.app.store.db);
        const asUser = await t.request(r.method, r.path, {
          token: user.token,
          ...(r.body !== undefined && { body: r.body }),
        });
        assert.equal(asUser.status, 403, JSON.stringify(asUser.body));
        assert.equal(asUser.body.code, 40301);
        const anonymous = await t.request(r.method, r.path, r.body === undefined ? {} : { body: r.body });
        assert.equal(anonymous.status, 401, JSON.stringify(anonymous.body));
        assert.equal(anonymous.body.code, 401);
        assert.deepEqual(await rowCounts(t.app.store.db), before);
      });
    }

    it('checks the credentials before validating the body (401/403, not 400, for a bad body)', async () => {
      const bad = { nonsense: true };
      const anonymous = await t.request('POST', '/api/v1/users', { body: bad });
      assert.equal(anonymous.status, 401);
      const asUser = await t.request('POST', '/api/v1/users', { token: user.token, body: bad });
      assert.equal(asUser.status, 403);
      const send = await t.request('POST', '/api/v1/messages/send', { body: bad });
      assert.equal(send.status, 401);
    });

    it('lets a plain user check only their own online status', async () => {
      const own = await t.request<{ userID: number }>('GET', '/api/v1/ws/online/check', {
        token: user.token,
      });
      assert.equal(own.status, 200);
      assert.equal(own.body.data.userID, 100);
      const other = await t.request('GET', '/api/v1/ws/online/check?userId=1', { token: user.token });
      assert.equal(other.status, 403);
    });
  });

  describe(`${dialect}: user management`, () => {
    let t: TestApp;
    before(async () => {
      t = await startApp({ dialect });
    });
    after(async () => t.close());

    const admin = <T>(method: string, path: string, body?: unknown) =>
      t.request<T>(method, path, { token: t.adminToken, ...(body !== undefined && { body }) });

    it('creates a user with 201, keeping an explicit host id, and never returns the password', async () => {
      const r = await admin<UserData>('POST', '/api/v1/users', {
        id: 5000,
        username: 'kim',
        password: 'kim-password',
        displayName: 'Kim K',
      });
      assert.equal(r.status, 201);
      assert.equal(r.body.code, 0);
      assert.equal(r.body.data.id, 5000);
      assert.equal(r.body.data.displayName, 'Kim K');
      assert.equal(r.body.data.hasPassword, true);
      assert.equal(JSON.stringify(r.body).includes('kim-password'), false);
      assert.equal(JSON.stringify(r.body).includes('scrypt'), false);
      const stored = await t.app.store.db
        .selectFrom('users')
        .select('password_hash')
        .where('id', '=', 5000)
        .executeTakeFirstOrThrow();
      assert.match(stored.password_hash ?? '', /^scrypt\$\d+\$8\$1\$/);
    });

    it('answers a taken username with 409 40901 and a taken id with 409 40902, writing nothing', async () => {
      const before = await rowCounts(t.app.store.db);
      const name = await admin('POST', '/api/v1/users', { username: 'kim' });
      assert.equal(name.status, 409);
      assert.equal(name.body.code, 40901);
      const id = await admin('POST', '/api/v1/users', { id: 5000, username: 'kim2' });
      assert.equal(id.status, 409);
      assert.equal(id.body.code, 40902);
      assert.deepEqual(await rowCounts(t.app.store.db), before);
    });

    it('rejects a password shorter than 8 or longer than 1024 characters with 400 and stores nothing', async () => {
      const before = await rowCounts(t.app.store.db);
      for (const password of ['short', 'y'.repeat(1025), 'z'.repeat(100_000)]) {
        const r = await admin('POST', '/api/v1/users', { username: 'pw-test', password });
        assert.equal(r.status, 400, `length ${password.length}`);
        assert.ok([40001, 40005].includes(r.body.code));
      }
      assert.deepEqual(await rowCounts(t.app.store.db), before);
    });

    it('lists users by id with a cursor', async () => {
      for (let i = 0; i < 5; i++)
        await admin('POST', '/api/v1/users', { id: 6000 + i, username: `list${i}` });
      const seen: number[] = [];
      let cursor: string | null = '0';
      while (cursor !== null) {
        const r: Res<{ items: UserData[]; nextCursor: string | null }> = await admin(
          'GET',
          `/api/v1/users?limit=2&cursor=${cursor}`,
        );
        assert.equal(r.status, 200);
        assert.ok(r.body.data.items.length <= 2);
        seen.push(...r.body.data.items.map((u) => u.id));
        cursor = r.body.data.nextCursor;
      }
      assert.deepEqual(
        seen,
        [...seen].sort((a, b) => a - b),
      );
      for (let i = 0; i < 5; i++) assert.ok(seen.includes(6000 + i));
      assert.equal(new Set(seen).size, seen.length);
    });

    it('finds users by part of the username or display name, ignoring case, or by id (q=)', async () => {
      const made = [
        { id: 6100, username: 'Alice_Smith', displayName: 'Accounts' },
        { id: 6101, username: 'alicia', displayName: 'Sales 100% team' },
        { id: 6102, username: 'bobby', displayName: 'Bob (ALICE’s deputy)' },
        { id: 6103, username: 'carl', displayName: 'Carl' },
      ];
      for (const u of made) assert.equal((await admin('POST', '/api/v1/users', u)).status, 201);
      const find = async (q: string, extra = '') => {
        const r: Res<{ items: UserData[]; nextCursor: string | null }> = await admin(
          'GET',
          `/api/v1/users?q=${encodeURIComponent(q)}${extra}`,
        );
        assert.equal(r.status, 200, JSON.stringify(r.body));
        return r.body.data;
      };
      const ids = async (q: string) => (await find(q)).items.map((u) => u.id);
      assert.deepEqual(await ids('alic'), [6100, 6101, 6102]);
      assert.deepEqual(await ids('ALIC'), [6100, 6101, 6102]);
      assert.deepEqual(await ids('%'), [6101], 'a % is a character, not a wildcard');
      assert.deepEqual(await ids('e_s'), [6100], 'nor is _');
      assert.deepEqual(await ids('6103'), [6103], 'an id finds its user');
      assert.deepEqual(await ids('nobody-like-this'), []);
      // Paging works inside a search.
      const first = await find('alic', '&limit=2');
      assert.deepEqual(
        first.items.map((u) => u.id),
        [6100, 6101],
      );
      assert.equal(first.nextCursor, '6101');
      const rest = await find('alic', '&limit=2&cursor=6101');
      assert.deepEqual(
        rest.items.map((u) => u.id),
        [6102],
      );
      assert.equal(rest.nextCursor, null);
      for (const bad of ['', 'x'.repeat(101)]) {
        const r = await admin('GET', `/api/v1/users?q=${bad}`);
        assert.equal(r.status, 400);
        assert.equal(r.body.code, 40001);
      }
    });

    it('changes role, display name and password with PATCH; the new password logs in', async () => {
      await admin('POST', '/api/v1/users', { id: 7000, username: 'lou', password: 'lou-password' });
      const r = await admin<UserData>('PATCH', '/api/v1/users/7000', {
        role: 'admin',
        displayName: 'Lou',
        password: 'lou-new-password',
      });
      assert.equal(r.status, 200);
      assert.equal(r.body.data.role, 'admin');
      assert.equal(r.body.data.displayName, 'Lou');
      const old = await t.request('POST', '/api/v1/auth/login', {
        body: { username: 'lou', password: 'lou-password' },
      });
      assert.equal(old.status, 401);
      const fresh = await t.request('POST', '/api/v1/auth/login', {
        body: { username: 'lou', password: 'lou-new-password' },
      });
      assert.equal(fresh.status, 200);
    });

    it('answers PATCH and GET of a missing user with 404', async () => {
      assert.equal((await admin('PATCH', '/api/v1/users/987654', { disabled: true })).status, 404);
      assert.equal((await admin('GET', '/api/v1/users/987654')).status, 404);
    });

    it('refuses to let an admin disable or demote themselves', async () => {
      const me = await admin<{ id: number }>('GET', '/api/v1/auth/me');
      const path = `/api/v1/users/${me.body.data.id}`;
      for (const change of [{ disabled: true }, { role: 'user' }, { role: 'user', disabled: true }]) {
        const r = await admin('PATCH', path, change);
        assert.equal(r.status, 409, JSON.stringify(change));
      }
      const after = await admin<{ role: string; disabled: boolean }>('GET', path);
      assert.equal(after.status, 200, 'still an enabled admin');
      assert.equal(after.body.data.role, 'admin');
      assert.equal(after.body.data.disabled, false);
    });
  });

  describe(`${dialect}: bulk mirroring`, () => {
    let t: TestApp;
    before(async () => {
      t = await startApp({ dialect });
    });
    after(async () => t.close());

    const users = Array.from({ length: 10_000 }, (_, i) => ({
      id: 100_000 + i,
      username: `host-${i}`,
      displayName: `Host User ${i}`,
    }));
    const bulk = (body: unknown) =>
      t.request<{ created: number; updated: number }>('POST', '/api/v1/users/bulk', {
        token: t.adminToken,
        body,
      });
    const countUsers = async () => (await rowCounts(t.app.store.db)).users;

    it('upserts 10,000 users in one call', async () => {
      const before = await countUsers();
      const r = await bulk({ users });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.deepEqual(r.body.data, { created: 10_000, updated: 0 });
      assert.equal(await countUsers(), before + 10_000);
    });

    it('is idempotent: the same 10,000 again create nothing', async () => {
      const before = await countUsers();
      const r = await bulk({ users });
      assert.equal(r.status, 200);
      assert.deepEqual(r.body.data, { created: 0, updated: 10_000 });
      assert.equal(await countUsers(), before);
    });

    it('lets a mirrored user (no password) in with a token, and updates follow the host', async () => {
      const r = await bulk({ users: [{ id: 100_001, username: 'host-1', displayName: 'Renamed' }] });
      assert.deepEqual(r.body.data, { created: 0, updated: 1 });
      const got = await t.request<UserData>('GET', '/api/v1/users/100001', { token: t.adminToken });
      assert.equal(got.body.data.displayName, 'Renamed');
      assert.equal(got.body.data.hasPassword, false);
      const token = (await t.app.tokens.issue(100_001, 'user')).token;
      assert.equal((await t.request('GET', '/api/v1/auth/me', { token })).status, 200);
    });

    it('answers a username held by another id with 409 and writes nothing of the batch', async () => {
      const before = await rowCounts(t.app.store.db);
      const r = await bulk({
        users: [
          { id: 200_000, username: 'brand-new' },
          { id: 200_001, username: 'host-5' },
        ],
      });
      assert.equal(r.status, 409);
      assert.equal(r.body.code, 40901);
      assert.deepEqual(r.body.data, { usernames: ['host-5'] });
      assert.deepEqual(await rowCounts(t.app.store.db), before);
    });

    it('rejects a duplicate id or username inside one batch and over 10,000 users with 400', async () => {
      const before = await rowCounts(t.app.store.db);
      const dupId = await bulk({
        users: [
          { id: 300_000, username: 'a1' },
          { id: 300_000, username: 'a2' },
        ],
      });
      assert.equal(dupId.status, 400);
      const dupName = await bulk({
        users: [
          { id: 300_001, username: 'b1' },
          { id: 300_002, username: 'b1' },
        ],
      });
      assert.equal(dupName.status, 400);
      const tooMany = await bulk({
        users: Array.from({ length: 10_001 }, (_, i) => ({ id: 400_000 + i, username: `x${i}` })),
      });
      assert.equal(tooMany.status, 400);
      assert.equal(tooMany.body.code, 40001);
      assert.deepEqual(await rowCounts(t.app.store.db), before);
    });
  });
}
