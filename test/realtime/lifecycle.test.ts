/**
 * Issue #3 item 9: credentials end while a socket is open. A token's `exp` closes its sockets with
 * TOKEN_EXPIRED; disabling a user closes theirs with USER_DISABLED within a second.
 */
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { CloseCode } from '../../src/protocol.ts';
import { startApp, type TestApp } from '../helpers/app.ts';
import { createUsers, metricValue, mintToken, refused, sendTo, waitUntil } from '../helpers/realtime.ts';
import { connect } from '../helpers/ws-client.ts';

type U = { id: number; token: string };

describe('lifecycle: credentials ending mid-connection', () => {
  let t: TestApp;
  let users: U[];
  before(async () => {
    t = await startApp();
    users = await createUsers(t, 11_001, 5);
  });
  after(async () => t.close());

  it('closes sockets with 4001 when the token expires, whether it came directly or through a ticket', async () => {
    const u = users[0] as U;
    const exp = Math.floor(Date.now() / 1000) + 2;
    const short = await mintToken(u.id, { exp });
    const ticket = (await t.request<{ ticket: string }>('POST', '/api/v1/ws/ticket', { token: short })).body
      .data.ticket;
    const direct = await connect(t.wsUrl, { token: short, via: 'header' });
    const viaTicket = await connect(t.wsUrl, { ticket });
    const other = await connect(t.wsUrl, { token: u.token });
    for (const s of [direct, viaTicket]) {
      const closed = await s.closed;
      assert.equal(closed.code, CloseCode.TOKEN_EXPIRED.code);
      assert.equal(closed.reason, CloseCode.TOKEN_EXPIRED.reason);
      assert.ok(Date.now() >= exp * 1000, 'closed before the token expired');
    }
    // The same user's connection with a longer-lived token stays.
    const id = await sendTo(t, [u.id]);
    await other.waitFor((f) => f.data['messageId'] === id);
    await other.close();
  });

  it('refuses a ticket whose token has expired meanwhile, before the upgrade', async () => {
    const u = users[1] as U;
    const ticket = (await t.request<{ ticket: string }>('POST', '/api/v1/ws/ticket', { token: u.token })).body
      .data.ticket;
    await t.app.store.db
      .updateTable('ws_tickets')
      .set({ token_exp: Math.floor(Date.now() / 1000) - 1 })
      .execute();
    const r = await refused(t.wsUrl, { ticket });
    assert.equal(r.status, 401);
    assert.equal(r.body.code, 40102);
  });

  it('closes every socket of a disabled user with 4003 within a second, and refuses them after', async () => {
    const [u, bystander] = [users[2], users[3]] as [U, U];
    const tabs = await Promise.all([1, 2, 3].map(() => connect(t.wsUrl, { token: u.token })));
    const stuck = await connect(t.wsUrl, { token: u.token });
    await stuck.waitFor((f) => f.type === 'UNREAD_COUNT');
    // This tab never reads its close frame: the server must still let go of it.
    (stuck.ws as unknown as { _socket: Socket })._socket.pause();
    const b = await connect(t.wsUrl, { token: bystander.token });
    const disconnectsBefore = await metricValue(t, 'skypush_ws_disconnects_total', { code: '4003' });

    const started = Date.now();
    const r = await t.request('PATCH', `/api/v1/users/${u.id}`, {
      token: t.adminToken,
      body: { disabled: true },
    });
    assert.equal(r.status, 200);
    for (const s of tabs) {
      const closed = await s.closed;
      assert.equal(closed.code, CloseCode.USER_DISABLED.code);
      assert.equal(closed.reason, CloseCode.USER_DISABLED.reason);
    }
    assert.ok(Date.now() - started < 1000, `took ${Date.now() - started} ms`);
    assert.equal((await refused(t.wsUrl, { token: u.token })).status, 401);

    // The stuck tab is reaped after the close grace period and counted under the code sent to it.
    await waitUntil(() => t.app.hub.size === 1, 10_000);
    assert.equal(
      await metricValue(t, 'skypush_ws_disconnects_total', { code: '4003' }),
      disconnectsBefore + 4,
    );
    const id = await sendTo(t, [bystander.id]);
    await b.waitFor((f) => f.data['messageId'] === id);
    await b.close();
    stuck.ws.terminate();
  });

  it('closes the sockets of a user disabled through the bulk mirror', async () => {
    const u = users[4] as U;
    const sock = await connect(t.wsUrl, { token: u.token });
    const r = await t.request('POST', '/api/v1/users/bulk', {
      token: t.adminToken,
      body: { users: [{ id: u.id, username: `u${u.id}`, disabled: true }] },
    });
    assert.equal(r.status, 200);
    assert.equal((await sock.closed).code, CloseCode.USER_DISABLED.code);
  });
});
