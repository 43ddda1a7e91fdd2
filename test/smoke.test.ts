import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startApp, type TestApp } from './helpers/app.ts';
import { connect } from './helpers/ws-client.ts';

describe('smoke: the seed flow over real HTTP and WebSocket', () => {
  let t: TestApp;
  before(async () => {
    t = await startApp();
  });
  after(async () => t.close());

  it('pushes NEW_MESSAGE and UNREAD_COUNT to a connected user after a send', async () => {
    const alice = await t.createUser('alice', { id: 1001 });
    const sock = await connect(t.wsUrl, { token: alice.token });
    const first = await sock.waitFor(() => true);
    assert.equal(first.type, 'CONNECTED');
    const sent = await t.request<{ messageId: number }>('POST', '/api/v1/messages/send', {
      token: t.adminToken,
      body: { title: 'Test', content: 'This is a test message', targetType: 'user', targetIds: [1001] },
    });
    assert.equal(sent.status, 200);
    const msg = await sock.waitFor((f) => f.type === 'NEW_MESSAGE');
    assert.equal(msg.data['messageId'], sent.body.data.messageId);
    assert.equal(msg.data['title'], 'Test');
    const count = await sock.waitFor((f) => f.type === 'UNREAD_COUNT' && f.data['count'] === 1);
    assert.equal(count.data['count'], 1);
    await sock.close();
  });
});
