/**
 * Resume across a server restart: the client is connected, the server stops (1012), messages are sent
 * while it is down, a new server starts on the same database file and port, and the client receives
 * every message exactly once, in order, then live ones.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ConnectionState } from '../../client/index.ts';
import { startRestartable, type Restartable } from '../helpers/restartable.ts';
import { makeClient, next, restFor } from './sdk-helpers.ts';

describe('SDK resume after a server restart', () => {
  let s: Restartable;
  before(async () => {
    s = await startRestartable();
  });
  after(async () => s.close());

  it('loses nothing and doubles nothing', async () => {
    const u = await s.current.createUser('survivor');
    const admin = await s.current.app.auth.authenticate(s.adminToken);
    const send = (title: string) =>
      restFor(s.url, s.adminToken).send({ title, content: '', targetType: 'user', targetIds: [u.id] });

    const client = makeClient(s.wsUrl, { getToken: () => u.token });
    const received: Array<{ title: string; replayed: boolean }> = [];
    const states: ConnectionState[] = [];
    const codes: number[] = [];
    client.on('NEW_MESSAGE', (m, info) => received.push({ title: m.title, replayed: info.replayed }));
    client.on('state', (st) => states.push(st));
    client.on('disconnect', (d) => codes.push(d.code));
    const connected = next(client, 'CONNECTED');
    client.connect();
    await connected;
    const first = next(client, 'NEW_MESSAGE');
    await send('m1');
    await first;

    await s.stop();
    assert.equal(codes[0], 1012, 'the server says it is restarting');
    await s.offline(async (app) => {
      for (const title of ['m2', 'm3', 'm4'])
        await app.messages.send(admin, { title, content: '', targetType: 'user', targetIds: [u.id] });
    });
    // Let the client fail against the stopped server at least once.
    await next(client, 'reconnecting', (i) => i.attempt >= 2);
    const resumed = next(client, 'CONNECTED', () => true, 10_000);
    await s.start();
    const [hello] = await resumed;
    assert.deepEqual(hello.resume, { requested: true, ok: true, replayed: 3 });

    const live = next(client, 'NEW_MESSAGE', (m) => m.title === 'm5');
    await send('m5');
    await live;
    assert.deepEqual(received, [
      { title: 'm1', replayed: false },
      { title: 'm2', replayed: true },
      { title: 'm3', replayed: true },
      { title: 'm4', replayed: true },
      { title: 'm5', replayed: false },
    ]);
    assert.equal(states.at(-1), 'connected');
    assert.ok(!states.includes('disconnected'), 'never gave up');
    const count = await restFor(s.url, u.token).unreadCount();
    assert.equal(count, 5);
    client.disconnect();
  });
});
