/**
 * Issue #3 items 3, 5 and 6: many connections per user (seed defects 2 and 3), the service's pushes
 * reaching every device, the online-user endpoints and the admin broadcast (seed defect 8).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startApp, type TestApp } from '../helpers/app.ts';
import { createUsers, onlineUsers, sendTo, waitUntil } from '../helpers/realtime.ts';
import { connect, type Frame, type TestSocket } from '../helpers/ws-client.ts';

type U = { id: number; token: string };

const isMessage = (id: number) => (f: Frame) => f.type === 'NEW_MESSAGE' && f.data['messageId'] === id;

/** Resolves with the UNREAD_COUNT that follows the frame matched by `pred`. */
async function countAfter(sock: TestSocket, pred: (f: Frame) => boolean): Promise<number> {
  const hit = await sock.waitFor(pred);
  const at = sock.frames.indexOf(hit);
  const f = await sock.waitFor((x) => x.type === 'UNREAD_COUNT' && sock.frames.indexOf(x) > at);
  return f.data['count'] as number;
}

describe('multi-device: every tab is its own connection', () => {
  let t: TestApp;
  let alice: U;
  let bob: U;
  before(async () => {
    t = await startApp();
    [alice, bob] = (await createUsers(t, 5001, 2)) as [U, U];
  });
  after(async () => t.close());

  const checkOnline = async (u: U) => {
    const r = await t.request<{ userID: number; isOnline: boolean }>('GET', '/api/v1/ws/online/check', {
      token: u.token,
    });
    assert.equal(r.status, 200);
    assert.equal(r.body.data.userID, u.id);
    return r.body.data.isOnline;
  };

  it('delivers to both tabs, and closing one leaves the other online and receiving', async () => {
    const tab1 = await connect(t.wsUrl, { token: alice.token });
    const tab2 = await connect(t.wsUrl, { token: alice.token, via: 'header' });
    // The second tab does not kick the first (seed defect 2).
    const first = await sendTo(t, [alice.id]);
    await Promise.all([tab1.waitFor(isMessage(first)), tab2.waitFor(isMessage(first))]);
    assert.equal(tab1.ws.readyState, tab1.ws.OPEN);

    await tab1.close();
    await waitUntil(() => t.app.hub.size === 1);
    // Closing tab 1 removed exactly tab 1 (seed defect 3).
    assert.equal(await checkOnline(alice), true);
    assert.deepEqual(await onlineUsers(t), [alice.id]);
    const second = await sendTo(t, [alice.id]);
    await tab2.waitFor(isMessage(second));
    assert.equal(tab1.frames.filter(isMessage(second)).length, 0);

    await tab2.close();
    await waitUntil(() => t.app.hub.size === 0);
    assert.equal(await checkOnline(alice), false);
    assert.deepEqual(await onlineUsers(t), []);
  });

  it('keeps a steady tab registered while other tabs of the same user churn', async () => {
    const steady = await connect(t.wsUrl, { token: bob.token });
    for (let round = 0; round < 5; round++) {
      const tabs = await Promise.all(Array.from({ length: 4 }, () => connect(t.wsUrl, { token: bob.token })));
      await Promise.all(tabs.map((s, i) => (i % 2 ? s.close() : Promise.resolve(s.ws.terminate()))));
    }
    await waitUntil(() => t.app.hub.size === 1);
    assert.deepEqual(await onlineUsers(t), [bob.id]);
    const id = await sendTo(t, [bob.id]);
    await steady.waitFor(isMessage(id));
    await steady.close();
  });

  it('pushes a read or delete on one device to the others with the REST unread count', async () => {
    const phone = await connect(t.wsUrl, { token: alice.token });
    const laptop = await connect(t.wsUrl, { token: alice.token });
    const m1 = await sendTo(t, [alice.id]);
    const m2 = await sendTo(t, [alice.id]);
    const m3 = await sendTo(t, [alice.id]);
    await laptop.waitFor(isMessage(m3));
    const restCount = async () =>
      (await t.request<{ count: number }>('GET', '/api/v1/messages/unread-count', { token: alice.token }))
        .body.data.count;
    const before = await restCount();

    const read = await t.request('PUT', `/api/v1/messages/${m1}/read`, { token: alice.token });
    assert.equal(read.status, 200);
    const isRead = (f: Frame) => f.type === 'MESSAGE_READ' && f.data['messageId'] === m1;
    for (const s of [phone, laptop]) {
      const count = await countAfter(s, isRead);
      assert.equal(count, before - 1);
      assert.deepEqual((await s.waitFor(isRead)).data['messageIds'], [m1]);
      assert.equal(typeof (await s.waitFor(isRead)).data['readAt'], 'string');
    }
    assert.equal(await restCount(), before - 1);

    const del = await t.request('DELETE', `/api/v1/messages/${m2}`, { token: alice.token });
    assert.equal(del.status, 200);
    const isDeleted = (f: Frame) => f.type === 'MESSAGE_DELETED' && f.data['messageId'] === m2;
    for (const s of [phone, laptop]) assert.equal(await countAfter(s, isDeleted), before - 2);
    assert.equal(await restCount(), before - 2);

    const all = await t.request('PUT', '/api/v1/messages/read-all', { token: alice.token });
    assert.equal(all.status, 200);
    const isReadAll = (f: Frame) =>
      f.type === 'MESSAGE_READ' && (f.data['messageIds'] as number[]).includes(m3);
    for (const s of [phone, laptop]) assert.equal(await countAfter(s, isReadAll), 0);
    assert.equal(await restCount(), 0);
    await Promise.all([phone.close(), laptop.close()]);
  });
});

describe('multi-device: online users, broadcast and send-to-all', () => {
  let t: TestApp;
  let users: U[];
  before(async () => {
    t = await startApp();
    users = await createUsers(t, 6001, 4);
  });
  after(async () => t.close());

  it('lets only admins list online users or ask about another user (seed defect 8)', async () => {
    const [u, v] = users as [U, U];
    const sock = await connect(t.wsUrl, { token: v.token });
    const list = await t.request('GET', '/api/v1/ws/online/users', { token: u.token });
    assert.equal(list.status, 403);
    assert.equal(list.body.code, 40301);
    assert.equal((await t.request('GET', '/api/v1/ws/online/users')).status, 401);
    const other = await t.request('GET', `/api/v1/ws/online/check?userId=${v.id}`, { token: u.token });
    assert.equal(other.status, 403);
    const own = await t.request<{ isOnline: boolean }>('GET', `/api/v1/ws/online/check?userId=${u.id}`, {
      token: u.token,
    });
    assert.equal(own.status, 200);
    assert.equal(own.body.data.isOnline, false);
    const asAdmin = await t.request<{ userID: number; isOnline: boolean }>(
      'GET',
      `/api/v1/ws/online/check?userId=${v.id}`,
      { token: t.adminToken },
    );
    assert.deepEqual(asAdmin.body.data, { userID: v.id, isOnline: true });
    const admin = await t.request<{ onlineCount: number; users: number[] }>(
      'GET',
      '/api/v1/ws/online/users',
      { token: t.adminToken },
    );
    assert.deepEqual(admin.body.data, { onlineCount: 1, users: [v.id] });
    await sock.close();
  });

  it('broadcasts SYSTEM_NOTIFY to every connected user (admin only) and reports the users reached', async () => {
    const socks = await Promise.all(users.map((u) => connect(t.wsUrl, { token: u.token })));
    socks.push(await connect(t.wsUrl, { token: (users[0] as U).token })); // a second tab
    const body = {
      type: 'SYSTEM_NOTIFY',
      data: { title: 'Maintenance', content: 'at 22:00', level: 'warning' },
    };

    const denied = await t.request('POST', '/api/v1/ws/broadcast', { token: (users[0] as U).token, body });
    assert.equal(denied.status, 403);
    assert.equal(denied.body.code, 40301);
    const badType = await t.request('POST', '/api/v1/ws/broadcast', {
      token: t.adminToken,
      body: { type: 'NEW_MESSAGE', data: {} },
    });
    assert.equal(badType.status, 400);

    const r = await t.request<{ recipients: number }>('POST', '/api/v1/ws/broadcast', {
      token: t.adminToken,
      body,
    });
    assert.equal(r.status, 200);
    assert.equal(r.body.data.recipients, users.length);
    for (const s of socks) {
      const f = await s.waitFor((x) => x.type === 'SYSTEM_NOTIFY');
      assert.deepEqual(f.data, body.data);
      assert.equal(typeof f.cursor, 'string');
    }
    // Nothing leaked from the refused attempts.
    for (const s of socks) assert.equal(s.frames.filter((x) => x.type === 'SYSTEM_NOTIFY').length, 1);
    await Promise.all(socks.map((s) => s.close()));
  });

  it('sends a send-to-all message to everyone online, admin only', async () => {
    const socks = await Promise.all(users.map((u) => connect(t.wsUrl, { token: u.token })));
    const msg = { title: 'All hands', content: 'hello everyone', targetType: 'all' };
    const denied = await t.request('POST', '/api/v1/messages/send', {
      token: (users[1] as U).token,
      body: msg,
    });
    assert.equal(denied.status, 403);
    const r = await t.request<{ messageId: number }>('POST', '/api/v1/messages/send', {
      token: t.adminToken,
      body: msg,
    });
    assert.equal(r.status, 200);
    for (const s of socks) {
      const f = await s.waitFor(isMessage(r.body.data.messageId));
      assert.equal(f.data['targetType'], 'all');
      assert.equal(await countAfter(s, isMessage(r.body.data.messageId)), 1);
    }
    await Promise.all(socks.map((s) => s.close()));
  });
});
