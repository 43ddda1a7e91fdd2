/**
 * A Redis that stops answering without dropping the connection (a stalled server, a black-holed
 * network path) must not hold requests that count through it: the send quota, the login lockout and
 * the publish after commit each give up after about a second and the request is answered.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { REDIS_URL, startApp, type TestApp } from '../helpers/app.ts';
import { freePort } from '../helpers/node-process.ts';
import { TcpProxy } from '../helpers/tcp-proxy.ts';

describe('a Redis that stops answering', () => {
  let t: TestApp;
  let proxy: TcpProxy;
  let userId: number;

  before(async () => {
    const target = new URL(REDIS_URL);
    proxy = new TcpProxy(await freePort(), { host: target.hostname, port: Number(target.port || 6379) });
    await proxy.open();
    t = await startApp({
      env: {
        SKYPUSH_REDIS_URL: `redis://127.0.0.1:${proxy.port}`,
        SKYPUSH_REDIS_PREFIX: `stall-${randomBytes(4).toString('hex')}:`,
      },
    });
    userId = (await t.createUser('stall-target')).id;
  });
  after(async () => {
    proxy.release();
    await t.close().catch(() => {});
    await proxy.cut();
  });

  it('still answers sends and logins within a few seconds, and the send is stored', async () => {
    proxy.hold();
    try {
      let started = performance.now();
      const send = await t.request<{ messageId: number }>('POST', '/api/v1/messages/send', {
        token: t.adminToken,
        body: { title: 'while Redis stalls', content: 'x', targetType: 'user', targetIds: [userId] },
      });
      const sendMs = performance.now() - started;
      assert.equal(send.status, 200);
      assert.ok(sendMs < 5_000, `send answered after ${Math.round(sendMs)} ms`);

      started = performance.now();
      const login = await t.request('POST', '/api/v1/auth/login', {
        body: { username: 'admin', password: 'not-the-password' },
      });
      const loginMs = performance.now() - started;
      assert.equal(login.status, 401);
      assert.ok(loginMs < 5_000, `login answered after ${Math.round(loginMs)} ms`);

      const inbox = await t.request<{ items: Array<{ id: number }> }>('GET', '/api/v1/messages', {
        token: (await t.createUser('stall-reader')).token,
      });
      assert.equal(inbox.status, 200);
    } finally {
      proxy.release();
    }
    const row = await t.app.store.db
      .selectFrom('messages')
      .select('id')
      .where('title', '=', 'while Redis stalls')
      .executeTakeFirst();
    assert.ok(row, 'the message sent while Redis stalled is in the store');
  });
});
