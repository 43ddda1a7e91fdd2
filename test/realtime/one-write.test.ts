/**
 * A connect on SQLite answers in one write (issue #14): the 101, CONNECTED, a short replay and the first
 * UNREAD_COUNT leave the server together. Over a raw socket, to see the bytes as they arrive; the
 * server's writes are counted at node:net's one entry for a socket write (`_writeGeneric`, behind both
 * write and writev), for the server's side of the connection only.
 */
import assert from 'node:assert/strict';
import { Socket, createConnection } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startApp, type TestApp } from '../helpers/app.ts';
import { connect } from '../helpers/ws-client.ts';

/** Writes by server-side sockets (local port = the server's), while counting is on. */
const writes = { port: 0, count: 0 };
type Generic = (this: Socket, ...args: unknown[]) => unknown;
const proto = Socket.prototype as unknown as { _writeGeneric: Generic };
const original = proto._writeGeneric;
proto._writeGeneric = function (this: Socket, ...args: unknown[]) {
  if (this.localPort === writes.port) writes.count++;
  return original.apply(this, args);
};

/**
 * The first chunk a raw WebSocket handshake to `path` receives (with a bearer token), and how many
 * writes the server made for it up to then.
 */
async function firstRead(
  url: string,
  path: string,
  token: string,
): Promise<{ chunk: string; writes: number }> {
  const { port } = new URL(url);
  writes.port = Number(port);
  writes.count = 0;
  const chunk = await new Promise<string>((resolve, reject) => {
    const socket = createConnection(Number(port), '127.0.0.1', () =>
      socket.write(
        [
          `GET ${path} HTTP/1.1`,
          `Host: 127.0.0.1:${port}`,
          'Upgrade: websocket',
          'Connection: Upgrade',
          'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
          'Sec-WebSocket-Version: 13',
          `Authorization: Bearer ${token}`,
          '',
          '',
        ].join('\r\n'),
      ),
    );
    socket.once('data', (chunk) => {
      resolve(chunk.toString('latin1'));
      socket.destroy();
    });
    socket.once('error', reject);
  });
  // Anything the server still had to write would have been written in the turn that wrote the rest.
  await new Promise((r) => setImmediate(r));
  return { chunk, writes: writes.count };
}

const frameTypes = (chunk: string) => [...chunk.matchAll(/\{"type":"([A-Z_]+)"/g)].map((m) => m[1]);

describe('a connect answers in one write (SQLite)', () => {
  let t: TestApp;
  let user: { id: number; token: string };
  before(async () => {
    t = await startApp();
    user = await t.createUser('one-write');
  });
  after(async () => {
    proto._writeGeneric = original;
    await t.close();
  });

  const send = async (title: string) => {
    const r = await t.request('POST', '/api/v1/messages/send', {
      token: t.adminToken,
      body: { title, content: 'c', targetType: 'user', targetIds: [user.id] },
    });
    assert.equal(r.status, 200);
  };

  it('a plain connect: 101, CONNECTED and UNREAD_COUNT in the first read', async () => {
    const { chunk, writes } = await firstRead(t.url, '/api/v1/ws/messages', user.token);
    assert.match(chunk, /^HTTP\/1\.1 101 /);
    assert.deepEqual(frameTypes(chunk), ['CONNECTED', 'UNREAD_COUNT']);
    assert.equal(writes, 1, 'one write');
  });

  it('a resume with a short gap: the replay in the same read, between CONNECTED and UNREAD_COUNT', async () => {
    const c = await connect(t.wsUrl, { token: user.token });
    const connected = await c.waitFor((f) => f.type === 'CONNECTED');
    await c.close();
    await send('missed 1');
    await send('missed 2');
    const since = encodeURIComponent(connected.data['cursor'] as string);
    const { chunk, writes } = await firstRead(t.url, `/api/v1/ws/messages?since=${since}`, user.token);
    assert.equal(writes, 1, 'one write');
    assert.match(chunk, /^HTTP\/1\.1 101 /);
    assert.deepEqual(frameTypes(chunk), [
      'CONNECTED',
      'MESSAGE_BATCH',
      'NEW_MESSAGE',
      'NEW_MESSAGE',
      'UNREAD_COUNT',
    ]);
    assert.match(chunk, /missed 1[\s\S]*missed 2/);
  });
});
