import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ADMIN_PASSWORD, JWT_SECRET, startApp, type TestApp } from '../helpers/app.ts';
import { connect } from '../helpers/ws-client.ts';

describe('secrets in logs', () => {
  let t: TestApp;
  before(async () => {
    t = await startApp({ env: { SKYPUSH_LOG_LEVEL: 'trace' } });
  });
  after(async () => t.close());

  it('never logs a password, token, ticket or the JWT secret, at trace level', async () => {
    const secrets: string[] = [ADMIN_PASSWORD, JWT_SECRET, t.adminToken];
    const user = await t.createUser('logged', { id: 10, password: 'user-password-xyz' });
    secrets.push('user-password-xyz', user.token);

    const login = await t.request<{ accessToken: string }>('POST', '/api/v1/auth/login', {
      body: { username: 'logged', password: 'user-password-xyz' },
    });
    assert.equal(login.status, 200);
    secrets.push(login.body.data.accessToken);
    const failed = await t.request('POST', '/api/v1/auth/login', {
      body: { username: 'logged', password: 'wrong-password-abc' },
    });
    assert.equal(failed.status, 401);
    secrets.push('wrong-password-abc');
    await t.request('PATCH', '/api/v1/users/10', {
      token: t.adminToken,
      body: { password: 'changed-password-def' },
    });
    secrets.push('changed-password-def');

    // Tokens in Authorization headers, in a query string an HTTP route does not accept, and on sockets.
    assert.equal((await t.request('GET', '/api/v1/auth/me', { token: user.token })).status, 200);
    await t.request('GET', `/api/v1/messages?token=${user.token}`, { token: user.token });
    const viaQuery = await connect(t.wsUrl, { token: user.token, via: 'query' });
    await viaQuery.waitFor((f) => f.type === 'CONNECTED');
    await viaQuery.close();
    const viaProtocol = await connect(t.wsUrl, { token: user.token, via: 'subprotocol' });
    await viaProtocol.close();
    const ticket = await t.request<{ ticket: string }>('POST', '/api/v1/ws/ticket', { token: user.token });
    secrets.push(ticket.body.data.ticket);
    const viaTicket = await connect(t.wsUrl, { ticket: ticket.body.data.ticket });
    await viaTicket.close();
    const forged = `${user.token.slice(0, -4)}AAAA`;
    secrets.push(forged);
    await assert.rejects(connect(t.wsUrl, { token: forged }), { status: 401 });
    await assert.rejects(connect(t.wsUrl, { ticket: ticket.body.data.ticket }), { status: 401 });

    const logs = t.logs.join('');
    // The capture works: the requests above were logged.
    assert.match(logs, /\/api\/v1\/auth\/login/);
    assert.match(logs, /\/api\/v1\/messages\?token=\[REDACTED\]/);
    for (const secret of secrets) {
      assert.equal(logs.includes(secret), false, `log contains ${secret.slice(0, 12)}…`);
    }
    // A JWT's signature-free prefix is also a secret-bearing string: no header.payload of ours either.
    for (const token of [t.adminToken, user.token]) {
      assert.equal(logs.includes(token.split('.').slice(0, 2).join('.')), false);
    }
  });
});
