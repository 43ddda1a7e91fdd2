/**
 * Over real HTTP and WebSockets, on both dialects: the UNREAD_COUNT pushed after a send to all, and after
 * its expiry is announced, equals what GET /api/v1/messages/unread-count answers, for users who read,
 * deleted or never saw earlier messages, and for a user created after the send.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DIALECTS, startApp, type TestApp } from '../helpers/app.ts';
import { createUsers } from '../helpers/realtime.ts';
import { connect, type Frame, type TestSocket } from '../helpers/ws-client.ts';

type U = { id: number; token: string };

for (const dialect of DIALECTS) {
  describe(`${dialect}: pushed unread counts after a send to all`, () => {
    let t: TestApp;
    before(async () => {
      t = await startApp({ dialect, env: { SKYPUSH_EXPIRY_SWEEP_MS: '100' } });
    });
    after(async () => t.close());

    const send = async (body: Record<string, unknown>): Promise<number> => {
      const r = await t.request<{ messageId: number }>('POST', '/api/v1/messages/send', {
        token: t.adminToken,
        body: { title: 'm', content: 'c', ...body },
      });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      return r.body.data.messageId;
    };
    const restCount = async (u: U) =>
      (await t.request<{ count: number }>('GET', '/api/v1/messages/unread-count', { token: u.token })).body
        .data.count;
    /** The first UNREAD_COUNT after the frame matched by `pred`. */
    const countAfter = async (s: TestSocket, pred: (f: Frame) => boolean): Promise<number> => {
      const hit = await s.waitFor(pred);
      const count = await s.waitFor(
        (f) => f.type === 'UNREAD_COUNT' && s.frames.indexOf(f) > s.frames.indexOf(hit),
      );
      return count.data['count'] as number;
    };

    it('pushes the count that REST answers, for every kind of inbox', async () => {
      const [reader, deleter, holder, fresh] = (await createUsers(t, 7001, 4)) as [U, U, U, U];
      const earlier = await send({ targetType: 'all' });
      await t.request('PUT', `/api/v1/messages/${earlier}/read`, { token: reader.token });
      await t.request('DELETE', `/api/v1/messages/${earlier}`, { token: deleter.token });
      await send({ targetType: 'user', targetIds: [holder.id] });
      const users = [reader, deleter, holder, fresh];
      const socks = await Promise.all(users.map((u) => connect(t.wsUrl, { token: u.token })));
      const first = await Promise.all(socks.map((s) => s.waitFor((f) => f.type === 'UNREAD_COUNT')));
      const base = await Promise.all(users.map(restCount));
      assert.deepEqual(
        first.map((f) => f.data['count']),
        base,
      );

      const id = await send({ targetType: 'all' });
      const pushed = await Promise.all(
        socks.map((s) => countAfter(s, (f) => f.type === 'NEW_MESSAGE' && f.data['messageId'] === id)),
      );
      const rest = await Promise.all(users.map(restCount));
      assert.deepEqual(pushed, rest);
      assert.deepEqual(
        rest,
        base.map((n) => n + 1),
      );
      // reader and deleter: the new one; holder: both to all and the direct one; fresh: both to all.
      assert.deepEqual(rest, [1, 1, 3, 2]);

      // A user created now sees every live message to all, pushed and over REST alike.
      const [late] = (await createUsers(t, 7101, 1)) as [U];
      const lateSock = await connect(t.wsUrl, { token: late.token });
      const lateCount = await lateSock.waitFor((f) => f.type === 'UNREAD_COUNT');
      assert.equal(lateCount.data['count'], await restCount(late));
      assert.equal(lateCount.data['count'], 2);
      await Promise.all([...socks, lateSock].map((s) => s.close()));
    });

    it('pushes the count that REST answers once the expiry of a message to all is announced', async () => {
      const [reader, other] = (await createUsers(t, 7201, 2)) as [U, U];
      const socks = await Promise.all([reader, other].map((u) => connect(t.wsUrl, { token: u.token })));
      await Promise.all(socks.map((s) => s.waitFor((f) => f.type === 'UNREAD_COUNT')));
      const id = await send({ targetType: 'all', expiresAt: new Date(Date.now() + 1200).toISOString() });
      await t.request('PUT', `/api/v1/messages/${id}/read`, { token: reader.token });
      const before = await Promise.all([reader, other].map(restCount));
      const gone = (f: Frame) =>
        f.type === 'MESSAGE_DELETED' && f.data['messageId'] === id && f.data['reason'] === 'expired';
      const pushed = await Promise.all(socks.map((s) => countAfter(s, gone)));
      const rest = await Promise.all([reader, other].map(restCount));
      assert.deepEqual(pushed, rest);
      assert.deepEqual(rest, [before[0], (before[1] ?? 0) - 1], 'the reader had it read already');
      await Promise.all(socks.map((s) => s.close()));
    });
  });
}
