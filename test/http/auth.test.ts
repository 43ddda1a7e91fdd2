import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SignJWT } from 'jose';
import { DIALECTS, JWT_SECRET, startApp, type TestApp } from '../helpers/app.ts';

const LOGIN = '/api/v1/auth/login';
const ME = '/api/v1/auth/me';

interface LoginData {
  accessToken: string;
  tokenType: string;
  expiresIn: number;
  user: { id: number; username: string; role: string; displayName: string };
}

/** A token as a host platform would mint it: HS256 with the shared secret. */
async function hostToken(
  claims: Record<string, unknown>,
  o: { sub?: string; exp?: number | null; secret?: string; alg?: string } = {},
): Promise<string> {
  let jwt = new SignJWT(claims).setProtectedHeader({ alg: o.alg ?? 'HS256', typ: 'JWT' }).setIssuedAt();
  if (o.sub !== undefined) jwt = jwt.setSubject(o.sub);
  if (o.exp !== null) jwt = jwt.setExpirationTime(o.exp ?? Math.floor(Date.now() / 1000) + 600);
  return jwt.sign(new TextEncoder().encode(o.secret ?? JWT_SECRET));
}

const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');

describe('client address behind a proxy (SKYPUSH_TRUST_PROXY)', () => {
  // Four failures from one real address (loopback) under four different X-Forwarded-For values.
  async function rotatingFailures(trustProxy: string): Promise<number[]> {
    const t = await startApp({
      env: { SKYPUSH_TRUST_PROXY: trustProxy },
      patch: (c) => ({ ...c, auth: { ...c.auth, loginMaxFailures: 3, loginLockoutSec: 60 } }),
    });
    try {
      const statuses: number[] = [];
      for (let i = 1; i <= 4; i++) {
        const r = await t.request('POST', LOGIN, {
          body: { username: 'proxy-probe', password: 'wrong-password' },
          headers: { 'x-forwarded-for': `203.0.113.${i}` },
        });
        statuses.push(r.status);
      }
      return statuses;
    } finally {
      await t.close();
    }
  }

  it('ignores X-Forwarded-For from a peer that is not a listed proxy: rotating it does not dodge the lockout', async () => {
    assert.deepEqual(await rotatingFailures('10.9.9.9'), [401, 401, 401, 429]);
  });

  it('believes X-Forwarded-For from a listed proxy (here loopback): each forwarded address counts apart', async () => {
    assert.deepEqual(await rotatingFailures('127.0.0.1/8'), [401, 401, 401, 401]);
    assert.deepEqual(await rotatingFailures('loopback'), [401, 401, 401, 401]);
  });
});

for (const dialect of DIALECTS) {
  describe(`${dialect}: login`, () => {
    let t: TestApp;
    before(async () => {
      t = await startApp({
        dialect,
        env: { SKYPUSH_TRUST_PROXY: 'true' },
        patch: (c) => ({ ...c, auth: { ...c.auth, loginMaxFailures: 3, loginLockoutSec: 60 } }),
      });
      await t.createUser('carol', { id: 2001, password: 'carol-password' });
      await t.createUser('dave', { id: 2002, password: 'dave-password' });
      await t.createUser('erin', { id: 2003, password: 'erin-password' });
      await t.createUser('frank', { id: 2004, password: 'frank-password' });
    });
    after(async () => t.close());

    const login = (username: string, password: string, ip = '10.0.0.1') =>
      t.request<LoginData>('POST', LOGIN, {
        body: { username, password },
        headers: { 'x-forwarded-for': ip },
      });

    it('returns a bearer token and the user for the right password', async () => {
      const r = await login('carol', 'carol-password');
      assert.equal(r.status, 200);
      assert.equal(r.body.code, 0);
      assert.equal(r.body.data.tokenType, 'Bearer');
      assert.equal(r.body.data.expiresIn, t.config.auth.tokenTtlSec);
      assert.deepEqual(r.body.data.user, { id: 2001, username: 'carol', role: 'user', displayName: 'carol' });
      const me = await t.request<LoginData['user']>('GET', ME, { token: r.body.data.accessToken });
      assert.equal(me.status, 200);
      assert.deepEqual(me.body.data, { id: 2001, username: 'carol', role: 'user', displayName: 'carol' });
    });

    it('answers a wrong password and an unknown user with byte-identical 401 bodies', async () => {
      const wrong = await fetch(t.url + LOGIN, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-forwarded-for': '10.0.0.2' },
        body: JSON.stringify({ username: 'carol', password: 'not-her-password' }),
      });
      const unknown = await fetch(t.url + LOGIN, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-forwarded-for': '10.0.0.2' },
        body: JSON.stringify({ username: 'nobody-here', password: 'not-her-password' }),
      });
      assert.equal(wrong.status, 401);
      assert.equal(unknown.status, 401);
      const [a, b] = [await wrong.text(), await unknown.text()];
      assert.equal(a, b);
      assert.equal(JSON.parse(a).code, 40101);
    });

    it('refuses a disabled user with the same 401 body as a wrong password', async () => {
      await t.createUser('gina', { id: 2005, password: 'gina-password' });
      const patch = await t.request('PATCH', '/api/v1/users/2005', {
        token: t.adminToken,
        body: { disabled: true },
      });
      assert.equal(patch.status, 200);
      const disabled = await login('gina', 'gina-password', '10.0.0.3');
      const wrong = await login('gina', 'wrong-password', '10.0.0.3');
      assert.equal(disabled.status, 401);
      assert.deepEqual(disabled.body, wrong.body);
    });

    it('locks an account out from one address with 429 and Retry-After after N failures', async () => {
      for (let i = 0; i < 3; i++) assert.equal((await login('dave', 'bad-password', '10.1.0.1')).status, 401);
      const locked = await login('dave', 'bad-password', '10.1.0.1');
      assert.equal(locked.status, 429);
      assert.equal(locked.body.code, 42901);
      const retry = Number(locked.headers.get('retry-after'));
      assert.ok(Number.isInteger(retry) && retry > 0 && retry <= 60, `Retry-After ${retry}`);
      // Even the right password waits out the lockout from that address.
      assert.equal((await login('dave', 'dave-password', '10.1.0.1')).status, 429);
    });

    it('does not block the same account from another address while one address is locked out', async () => {
      for (let i = 0; i < 4; i++) await login('erin', 'bad-password', '10.2.0.1');
      assert.equal((await login('erin', 'erin-password', '10.2.0.1')).status, 429);
      const elsewhere = await login('erin', 'erin-password', '10.2.0.2');
      assert.equal(elsewhere.status, 200);
      // And the locked address is not stopped from logging into other accounts.
      assert.equal((await login('carol', 'carol-password', '10.2.0.1')).status, 200);
    });

    it('counts failures for unknown usernames too, so a lockout does not reveal whether an account exists', async () => {
      for (let i = 0; i < 3; i++) await login('ghost', 'bad-password', '10.3.0.1');
      const r = await login('ghost', 'bad-password', '10.3.0.1');
      assert.equal(r.status, 429);
      assert.equal(r.body.code, 42901);
    });

    it('resets the failure count after a successful login', async () => {
      for (let i = 0; i < 2; i++) await login('frank', 'bad-password', '10.4.0.1');
      assert.equal((await login('frank', 'frank-password', '10.4.0.1')).status, 200);
      for (let i = 0; i < 2; i++) await login('frank', 'bad-password', '10.4.0.1');
      assert.equal((await login('frank', 'frank-password', '10.4.0.1')).status, 200);
    });

    it('rejects a password over 1024 characters with 400 before checking it', async () => {
      const r = await login('carol', 'x'.repeat(1025), '10.5.0.1');
      assert.equal(r.status, 400);
      assert.equal(r.body.code, 40005);
    });

    it('refuses login for a user without a password (host-minted tokens only)', async () => {
      await t.createUser('hank', { id: 2006 });
      const r = await login('hank', 'any-password', '10.6.0.1');
      assert.equal(r.status, 401);
      assert.equal(r.body.code, 40101);
    });
  });

  describe(`${dialect}: bearer tokens`, () => {
    let t: TestApp;
    before(async () => {
      t = await startApp({ dialect });
      await t.createUser('ivan', { id: 3001 });
      await t.createUser('judy', { id: 3002 });
    });
    after(async () => t.close());

    const me = (token: string) => t.request<{ id: number; role: string }>('GET', ME, { token });

    it('accepts a host-minted token with sub, role and exp signed with the shared secret', async () => {
      const r = await me(await hostToken({ role: 'user' }, { sub: '3001' }));
      assert.equal(r.status, 200);
      assert.equal(r.body.data.id, 3001);
    });

    it('takes the role from the database, not from the token', async () => {
      const token = await hostToken({ role: 'admin' }, { sub: '3001' });
      assert.equal((await me(token)).body.data.role, 'user');
      const r = await t.request('GET', '/api/v1/users', { token });
      assert.equal(r.status, 403);
    });

    it('rejects a token signed with another secret', async () => {
      const r = await me(await hostToken({ role: 'user' }, { sub: '3001', secret: 'x'.repeat(48) }));
      assert.equal(r.status, 401);
      assert.equal(r.body.code, 401);
    });

    it('rejects an unsigned alg:none token', async () => {
      const exp = Math.floor(Date.now() / 1000) + 600;
      const token = `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ sub: '3001', role: 'admin', exp })}.`;
      const r = await me(token);
      assert.equal(r.status, 401);
    });

    it('rejects a token signed with the right secret but another algorithm (HS512)', async () => {
      const r = await me(await hostToken({ role: 'user' }, { sub: '3001', alg: 'HS512' }));
      assert.equal(r.status, 401);
    });

    it('rejects an expired token with code 40102', async () => {
      const exp = Math.floor(Date.now() / 1000) - 30;
      const r = await me(await hostToken({ role: 'user' }, { sub: '3001', exp }));
      assert.equal(r.status, 401);
      assert.equal(r.body.code, 40102);
    });

    it('rejects a token whose sub is not a numeric user id', async () => {
      for (const sub of ['ivan', '3001abc', '-1', '0', '1e3']) {
        const r = await me(await hostToken({ role: 'user' }, { sub }));
        assert.equal(r.status, 401, `sub ${sub}`);
      }
    });

    it('rejects a token without exp', async () => {
      const r = await me(await hostToken({ role: 'user' }, { sub: '3001', exp: null }));
      assert.equal(r.status, 401);
    });

    it('rejects a token without sub', async () => {
      const r = await me(await hostToken({ role: 'user' }));
      assert.equal(r.status, 401);
    });

    it('rejects a valid token for a user id that does not exist', async () => {
      const r = await me(await hostToken({ role: 'user' }, { sub: '999999' }));
      assert.equal(r.status, 401);
    });

    it('rejects a garbage token and a missing one', async () => {
      assert.equal((await me('not.a.jwt')).status, 401);
      const none = await t.request('GET', ME);
      assert.equal(none.status, 401);
      assert.equal(none.body.code, 401);
      const basic = await t.request('GET', ME, { headers: { authorization: 'Basic YWRtaW46eA==' } });
      assert.equal(basic.status, 401);
    });

    it("stops accepting a user's tokens once disabled, and accepts them again when re-enabled", async () => {
      const token = await hostToken({ role: 'user' }, { sub: '3002' });
      assert.equal((await me(token)).status, 200);
      const off = await t.request('PATCH', '/api/v1/users/3002', {
        token: t.adminToken,
        body: { disabled: true },
      });
      assert.equal(off.status, 200);
      assert.equal((await me(token)).status, 401);
      await t.request('PATCH', '/api/v1/users/3002', { token: t.adminToken, body: { disabled: false } });
      assert.equal((await me(token)).status, 200);
    });

    it('applies a promotion, a demotion and a bulk disable to the next request at once', async () => {
      await t.createUser('kim', { id: 3003 });
      const token = await hostToken({ role: 'user' }, { sub: '3003' });
      const users = () => t.request('GET', '/api/v1/users', { token });
      assert.equal((await users()).status, 403);
      const patch = (body: Record<string, unknown>) =>
        t.request('PATCH', '/api/v1/users/3003', { token: t.adminToken, body });
      assert.equal((await patch({ role: 'admin' })).status, 200);
      assert.equal((await users()).status, 200, 'promoted at once');
      assert.equal((await patch({ role: 'user' })).status, 200);
      assert.equal((await users()).status, 403, 'demoted at once');
      const bulk = (disabled: boolean) =>
        t.request('POST', '/api/v1/users/bulk', {
          token: t.adminToken,
          body: { users: [{ id: 3003, username: 'kim', disabled }] },
        });
      assert.equal((await bulk(true)).status, 200);
      assert.equal((await me(token)).status, 401, 'disabled in bulk at once');
      assert.equal((await bulk(false)).status, 200);
      assert.equal((await me(token)).status, 200);
    });
  });
}
