/** The client SDK against a real server over real sockets (Node, with `ws` injected). */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SignJWT } from 'jose';
import { SkypushApiError, type ConnectionState, type MessagePayload } from '../../client/index.ts';
import { JWT_SECRET, startApp, type TestApp } from '../helpers/app.ts';
import { makeClient, next, restFor, sleep } from './sdk-helpers.ts';
import { waitUntil } from '../helpers/realtime.ts';

describe('SDK against a real server', () => {
  let t: TestApp;
  before(async () => {
    t = await startApp();
  });
  after(async () => t.close());

  async function send(targetIds: number[], title: string): Promise<number> {
    return (
      await restFor(t.url, t.adminToken).send({ title, content: 'body', targetType: 'user', targetIds })
    ).messageId;
  }

  for (const via of ['ticket', 'subprotocol', 'query'] as const) {
    it(`connects (${via}) and receives NEW_MESSAGE then the unread count`, async () => {
      const u = await t.createUser(`recv-${via}`);
      const rest = restFor(t.url, u.token);
      const client = makeClient(t.wsUrl, {
        ...(via === 'ticket'
          ? { getTicket: async () => (await rest.ticket()).ticket }
          : { getToken: () => u.token, tokenInQuery: via === 'query' }),
      });
      const states: ConnectionState[] = [];
      client.on('state', (s) => states.push(s));
      const connected = next(client, 'CONNECTED');
      client.connect();
      const [hello] = await connected;
      assert.equal(hello.userID, u.id);
      assert.equal(client.state, 'connected');
      assert.deepEqual(states, ['connecting', 'connected']);
      assert.ok(client.cursor, 'the CONNECTED cursor is kept');

      const gotMessage = next(client, 'NEW_MESSAGE');
      const gotCount = next(client, 'UNREAD_COUNT', (c) => c.count === 1);
      const id = await send([u.id], `hello ${via}`);
      const [m, info] = await gotMessage;
      assert.equal(m.messageId, id);
      assert.equal(m.title, `hello ${via}`);
      assert.equal(info.replayed, false);
      assert.equal(client.cursor, info.cursor, 'the cursor follows the last durable event');
      await gotCount;
      client.disconnect();
      assert.equal(client.state, 'disconnected');
    });
  }

  it('REST helpers cover the inbox: page, unread count, read, read-all, delete, send, ticket', async () => {
    const u = await t.createUser('resty', { password: 'resty-password' });
    const anon = restFor(t.url);
    const login = await anon.login('resty', 'resty-password');
    assert.equal(login.user.id, u.id);
    const rest = restFor(t.url, login.accessToken);
    const admin = restFor(t.url, t.adminToken);
    const a = await admin.send({ title: 'a', content: '', targetType: 'user', targetIds: [u.id] }, 'key-a');
    const again = await admin.send(
      { title: 'a', content: '', targetType: 'user', targetIds: [u.id] },
      'key-a',
    );
    assert.equal(again.messageId, a.messageId, 'same idempotency key, same message');
    const b = await admin.send({ title: 'b', content: '', targetType: 'user', targetIds: [u.id] });
    const c = await admin.send({ title: 'c', content: '', targetType: 'user', targetIds: [u.id] });
    assert.equal(await rest.unreadCount(), 3);
    const page1 = await rest.inbox({ limit: 2 });
    assert.deepEqual(
      page1.items.map((i) => i.title),
      ['c', 'b'],
    );
    assert.ok(page1.nextCursor);
    const page2 = await rest.inbox({ limit: 2, cursor: page1.nextCursor });
    assert.deepEqual(
      page2.items.map((i) => i.title),
      ['a'],
    );
    await rest.markRead(c.messageId);
    assert.deepEqual(
      (await rest.inbox({ status: 'unread' })).items.map((i) => i.title),
      ['b', 'a'],
    );
    await rest.remove(b.messageId);
    assert.equal((await rest.markAllRead()).count, 1);
    assert.equal(await rest.unreadCount(), 0);
    assert.equal((await rest.ticket()).ticket.length > 10, true);
    await assert.rejects(
      rest.remove(b.messageId),
      (e: unknown) => e instanceof SkypushApiError && e.status === 404,
    );
    await assert.rejects(anon.login('resty', 'wrong-password'), (e: unknown) => {
      assert.ok(e instanceof SkypushApiError);
      assert.equal(e.status, 401);
      assert.equal(e.code, 40101);
      return true;
    });
  });

  it('stops on a terminal close code: user disabled (4003) is not retried', async () => {
    const u = await t.createUser('disabled-soon');
    let asked = 0;
    const client = makeClient(t.wsUrl, { getToken: () => (asked++, u.token) });
    const connected = next(client, 'CONNECTED');
    client.connect();
    await connected;
    const gone = next(client, 'disconnect');
    const r = await t.request('PATCH', `/api/v1/users/${u.id}`, {
      token: t.adminToken,
      body: { disabled: true },
    });
    assert.equal(r.status, 200);
    const [info] = await gone;
    assert.deepEqual(info, { code: 4003, reason: 'user disabled', action: 'stop' });
    assert.equal(client.state, 'disconnected');
    await sleep(300);
    assert.equal(asked, 1, 'no reconnect attempt');
    assert.equal(client.state, 'disconnected');
  });

  it('refreshes the token after 4001 (token expired): getToken is called again and delivery goes on', async () => {
    const u = await t.createUser('short-lived');
    const key = new TextEncoder().encode(JWT_SECRET);
    const shortToken = await new SignJWT({ role: 'user' })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(String(u.id))
      .setIssuedAt()
      .setExpirationTime(Math.floor(Date.now() / 1000) + 2)
      .sign(key);
    const reasons: string[] = [];
    const client = makeClient(t.wsUrl, {
      getToken: (reason) => (reasons.push(reason), reasons.length === 1 ? shortToken : u.token),
    });
    const codes: number[] = [];
    client.on('disconnect', (d) => codes.push(d.code));
    const first = next(client, 'CONNECTED');
    client.connect();
    await first;
    const [again] = await next(client, 'CONNECTED', () => true, 6000);
    assert.deepEqual(codes, [4001]);
    assert.deepEqual(reasons, ['connect', 'refresh']);
    assert.equal(again.resume?.ok, true, 'the new connection resumed from the kept cursor');
    const got = next(client, 'NEW_MESSAGE');
    const id = await send([u.id], 'after refresh');
    assert.equal((await got)[0].messageId, id);
    client.disconnect();
  });

  it('RESYNC: a cursor from another database makes the client adopt the new cursor and refetch', async () => {
    const other = await startApp();
    const foreign = other.app.hub.cursor(3);
    await other.close();
    const u = await t.createUser('resyncer');
    const rest = restFor(t.url, u.token);
    const before = await send([u.id], 'before resync');
    let refetched: MessagePayload[] = [];
    let resolveResync: (reason: string) => void = () => {};
    const resynced = new Promise<string>((r) => (resolveResync = r));
    const client = makeClient(t.wsUrl, {
      getToken: () => u.token,
      cursor: foreign,
      onResync: async (info) => {
        refetched = (await rest.inbox()).items;
        resolveResync(info.reason);
      },
    });
    client.connect();
    assert.equal(await resynced, 'foreign');
    // The new cursor is adopted once onResync has returned.
    await waitUntil(() => client.cursor !== foreign);
    assert.deepEqual(
      refetched.map((m) => m.messageId),
      [before],
    );
    assert.notEqual(client.cursor, foreign);
    assert.equal(client.cursor?.split('.')[0], t.app.hub.cursor(0).split('.')[0], 'cursor of this database');
    const got = next(client, 'NEW_MESSAGE');
    const id = await send([u.id], 'after resync');
    assert.equal((await got)[0].messageId, id);
    client.disconnect();
  });
});

describe('SDK heartbeats against a real server', () => {
  let t: TestApp;
  before(async () => {
    t = await startApp({
      patch: (c) => ({
        ...c,
        realtime: { ...c.realtime, heartbeatIntervalMs: 100, heartbeatTimeoutMs: 300 },
      }),
    });
  });
  after(async () => t.close());

  it('stays connected across many heartbeats and advances its cursor with them', async () => {
    const u = await t.createUser('beater');
    const client = makeClient(t.wsUrl, { getToken: () => u.token });
    let beats = 0;
    let drops = 0;
    client.on('HEARTBEAT', () => beats++);
    client.on('disconnect', () => drops++);
    const connected = next(client, 'CONNECTED');
    client.connect();
    await connected;
    await restFor(t.url, t.adminToken).send({ title: 'x', content: '', targetType: 'user', targetIds: [1] });
    await sleep(1000);
    assert.ok(beats >= 5, `heartbeats received: ${beats}`);
    assert.equal(drops, 0);
    assert.equal(client.state, 'connected');
    assert.equal(client.cursor, t.app.hub.cursor(1), 'heartbeat cursor covers events for other users');
    client.disconnect();
  });
});
