/**
 * The limits in front of the hasher, over real HTTP: a full hash queue answers 503 with Retry-After
 * (logins and password changes alike) without hashing, a client that hangs up while queued is never
 * hashed for, and a per-source rate limit that a forged X-Forwarded-For does not dodge.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { ADMIN_PASSWORD, REDIS_URL, startApp, type TestApp } from '../helpers/app.ts';
import { heldKdf, until } from '../auth/held-kdf.ts';

const LOGIN = '/api/v1/auth/login';

const login = (t: TestApp, username: string, password: string, headers: Record<string, string> = {}) =>
  t.request<{ accessToken: string }>('POST', LOGIN, { body: { username, password }, headers });

/** A login written on a raw socket, so the test can hang up while it waits. */
async function rawLogin(t: TestApp, username: string, password: string): Promise<Socket> {
  const { port } = new URL(t.url);
  const socket = connect(Number(port), '127.0.0.1');
  socket.on('error', () => {});
  await new Promise((r) => socket.once('connect', r));
  const body = JSON.stringify({ username, password });
  socket.write(
    `POST ${LOGIN} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
  return socket;
}

describe('login limits: a full hash queue', () => {
  it('answers logins, user creation and password changes with 503 50304 and Retry-After, without hashing', async () => {
    const k = heldKdf();
    const t = await startApp({
      kdf: k.kdf,
      env: { SKYPUSH_HASH_CONCURRENCY: '2', SKYPUSH_HASH_QUEUE: '3' },
    });
    try {
      const users = [];
      for (let i = 0; i < 6; i++) users.push(await t.createUser(`q${i}`, { password: `password-q${i}` }));
      k.reset();
      k.hold();
      // Five different accounts: 2 hashing, 3 waiting; no lockout is involved.
      const waiting = [0, 1, 2, 3, 4].map((i) => login(t, `q${i}`, `password-q${i}`));
      await until(() => t.app.hasher.load().queued === 3, 'a full queue');
      const busy = [
        await login(t, 'q5', 'password-q5'),
        await t.request('POST', '/api/v1/users', {
          token: t.adminToken,
          body: { username: 'late', password: 'late-password' },
        }),
        await t.request('PATCH', `/api/v1/users/${users[5]?.id}`, {
          token: t.adminToken,
          body: { password: 'another-password' },
        }),
      ];
      for (const r of busy) {
        assert.equal(r.status, 503);
        assert.equal(r.body.code, 50304);
        assert.equal(r.body.message, 'login service busy; try again shortly');
        const retry = Number(r.headers.get('retry-after'));
        assert.ok(Number.isInteger(retry) && retry >= 1 && retry <= 30, `Retry-After ${retry}`);
      }
      assert.equal(k.runs, 2, 'only the two running hashes started');
      k.release();
      for (const r of await Promise.all(waiting)) assert.equal(r.status, 200);
      assert.equal(k.runs, 5);
      // Nothing was changed by the refused requests, and the busy answer did not count as a failure.
      assert.equal((await login(t, 'q5', 'password-q5')).status, 200);
      const late = await t.request<{ items: unknown[] }>('GET', '/api/v1/users?q=late', {
        token: t.adminToken,
      });
      assert.equal(late.body.data.items.length, 0);
    } finally {
      k.release();
      await t.close();
    }
  });
});

describe('login limits: clients that hang up', () => {
  it('never hashes for a queued login whose client has gone, and gives its attempt back', async () => {
    const k = heldKdf();
    const t = await startApp({
      kdf: k.kdf,
      env: { SKYPUSH_HASH_CONCURRENCY: '2', SKYPUSH_HASH_QUEUE: '10' },
    });
    try {
      await t.createUser('busy-a', { password: 'password-a' });
      await t.createUser('busy-b', { password: 'password-b' });
      await t.createUser('quitter', { password: 'quitter-password' });
      k.reset();
      k.hold();
      const slow = [login(t, 'busy-a', 'password-a'), login(t, 'busy-b', 'password-b')];
      await until(() => t.app.hasher.load().running === 2, 'a busy hasher');
      // As many as the lockout admits for one pair: if they were not given back, the pair stays blocked.
      const sockets: Socket[] = [];
      for (let i = 0; i < t.config.auth.loginMaxFailures; i++)
        sockets.push(await rawLogin(t, 'quitter', 'wrong-password'));
      await until(() => t.app.hasher.load().queued === sockets.length, 'the hang-ups queued');
      for (const s of sockets) s.destroy();
      await until(() => t.app.hasher.load().queued === 0, 'the queue to drop them');
      k.release();
      for (const r of await Promise.all(slow)) assert.equal(r.status, 200);
      assert.equal(k.runs, 2, 'no hash ran for a client that had gone');
      assert.equal((await login(t, 'quitter', 'quitter-password')).status, 200, 'no attempt was kept');
      assert.equal(k.runs, 3);
      assert.ok(!t.logs.some((l) => /unhandled error/.test(l)), 'a hang-up is not an error');
    } finally {
      k.release();
      await t.close();
    }
  });
});

describe('login limits: attempts per source', () => {
  const start = (trustProxy: string) =>
    startApp({
      env: { SKYPUSH_LOGIN_RATE_LIMIT: '4', SKYPUSH_TRUST_PROXY: trustProxy },
      patch: (c) => ({ ...c, auth: { ...c.auth, loginMaxFailures: 100 } }),
    });

  it('refuses a source over SKYPUSH_LOGIN_RATE_LIMIT with 429, the envelope and Retry-After; a forged X-Forwarded-For does not dodge it', async () => {
    const k = heldKdf();
    const t = await startApp({
      kdf: k.kdf,
      env: { SKYPUSH_LOGIN_RATE_LIMIT: '4', SKYPUSH_TRUST_PROXY: '10.9.9.9' },
      patch: (c) => ({ ...c, auth: { ...c.auth, loginMaxFailures: 100 } }),
    });
    try {
      await t.createUser('rl-user', { password: 'rl-password' });
      k.reset();
      // startApp's own admin login used one of loopback's four: three more pass, whatever they forward.
      const statuses: number[] = [];
      for (let i = 1; i <= 5; i++)
        statuses.push(
          (await login(t, 'rl-user', 'rl-password', { 'x-forwarded-for': `203.0.113.${i}` })).status,
        );
      assert.deepEqual(statuses, [200, 200, 200, 429, 429]);
      const refused = await login(t, 'rl-user', 'rl-password', { 'x-forwarded-for': '198.51.100.7' });
      assert.equal(refused.status, 429);
      assert.equal(refused.body.code, 429);
      assert.match(refused.body.message, /too many requests/);
      const retry = Number(refused.headers.get('retry-after'));
      assert.ok(retry >= 1 && retry <= 60, `Retry-After ${retry}`);
      assert.equal(k.runs, 3, 'refused attempts are not hashed');
      assert.equal((await t.request('GET', '/healthz')).status, 200, 'other routes are not limited');
    } finally {
      await t.close();
    }
  });

  it('shares the count across nodes through Redis', async () => {
    const prefix = `test-login-rl-${randomUUID()}:`;
    const env = { SKYPUSH_LOGIN_RATE_LIMIT: '4', SKYPUSH_REDIS_URL: REDIS_URL, SKYPUSH_REDIS_PREFIX: prefix };
    const nodes = [await startApp({ env }), await startApp({ env })];
    const redis = new Redis(REDIS_URL);
    try {
      // Each node's startApp logged its admin in from loopback: two of the four are used already.
      const statuses: number[] = [];
      for (const n of [0, 1, 0, 1]) {
        const t = nodes[n] as TestApp;
        statuses.push((await login(t, t.config.auth.adminUsername, ADMIN_PASSWORD)).status);
      }
      assert.deepEqual(statuses, [200, 200, 429, 429]);
    } finally {
      for (const n of nodes) await n.close();
      const keys = await redis.keys(`${prefix}*`);
      if (keys.length > 0) await redis.del(...keys);
      await redis.quit();
    }
  });

  it('counts each forwarded address apart behind a trusted proxy', async () => {
    const t = await start('loopback');
    try {
      await t.createUser('rl-user', { password: 'rl-password' });
      const statuses: number[] = [];
      for (let i = 1; i <= 6; i++)
        statuses.push(
          (await login(t, 'rl-user', 'rl-password', { 'x-forwarded-for': '203.0.113.9' })).status,
        );
      assert.deepEqual(statuses, [200, 200, 200, 200, 429, 429], 'one forwarded source has four a minute');
      const other = await login(t, 'rl-user', 'rl-password', { 'x-forwarded-for': '203.0.113.10' });
      assert.equal(other.status, 200, 'another forwarded source is not affected');
    } finally {
      await t.close();
    }
  });
});
