/**
 * Issue #12 item 1: every ws private the hub relies on (src/realtime/ws-internals.ts), checked against
 * the installed ws over a real socket. If a ws upgrade renames or reshapes any of them, this fails
 * here, naming the private, instead of the fan-out failing at run time.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { after, before, describe, it } from 'node:test';
import WebSocket, { WebSocketServer } from 'ws';
import { frameText, rawSocketOf, writeRawFrame } from '../../src/realtime/ws-internals.ts';

const require = createRequire(import.meta.url);
const wsVersion = (
  JSON.parse(readFileSync(require.resolve('ws/package.json'), 'utf8')) as { version: string }
).version;

describe(`ws internals (installed ws ${wsVersion}; written against 8.23.0)`, () => {
  let wss: WebSocketServer;
  let server: WebSocket;
  let client: WebSocket;

  before(async () => {
    wss = new WebSocketServer({ port: 0, perMessageDeflate: false });
    await once(wss, 'listening');
    const port = (wss.address() as { port: number }).port;
    const accepted = once(wss, 'connection');
    client = new WebSocket(`ws://127.0.0.1:${port}`);
    [server] = (await accepted) as [WebSocket];
    await once(client, 'open');
  });

  after(async () => {
    client.terminate();
    await new Promise((r) => wss.close(r));
  });

  it('is ws major version 8', () => {
    assert.equal(wsVersion.split('.')[0], '8', `ws ${wsVersion}: re-check src/realtime/ws-internals.ts`);
  });

  it('Sender.frame makes a complete unmasked text frame, for every length encoding', () => {
    for (const size of [5, 200, 70_000]) {
      const payload = Buffer.from('x'.repeat(size));
      const frame = frameText(payload);
      assert.equal(frame[0], 0x81, 'FIN + text opcode');
      assert.equal((frame[1] as number) & 0x80, 0, 'not masked');
      assert.deepEqual(frame.subarray(frame.length - size), payload, 'the payload ends the frame');
      const header = size < 126 ? 2 : size < 65_536 ? 4 : 10;
      assert.equal(frame.length, header + size);
    }
  });

  it('_socket is the net.Socket: cork, uncork and its drain event', () => {
    const raw = rawSocketOf(server);
    assert.ok(raw, 'websocket._socket is missing');
    assert.equal(typeof raw.cork, 'function', '_socket.cork');
    assert.equal(typeof raw.uncork, 'function', '_socket.uncork');
    assert.equal(typeof raw.on, 'function', '_socket.on');
    raw.cork();
    assert.equal((raw as unknown as { writableCorked: number }).writableCorked, 1);
    raw.uncork();
    assert.equal((raw as unknown as { writableCorked: number }).writableCorked, 0);
  });

  it('_sender.sendFrame writes a frame from frameText as is; the client reads it as text', async () => {
    const got = once(client, 'message');
    writeRawFrame(server, frameText(Buffer.from('{"type":"HEARTBEAT"}')));
    const [data, isBinary] = (await got) as [Buffer, boolean];
    assert.equal(isBinary, false);
    assert.equal(data.toString(), '{"type":"HEARTBEAT"}');
  });

  it('corked writes leave on uncork, in order', async () => {
    const raw = rawSocketOf(server);
    assert.ok(raw);
    const messages: string[] = [];
    const both = new Promise<void>((resolve) =>
      client.on('message', (d) => {
        messages.push(d.toString());
        if (messages.length === 2) resolve();
      }),
    );
    raw.cork();
    writeRawFrame(server, frameText(Buffer.from('"a"')));
    server.send('"b"');
    raw.uncork();
    await both;
    assert.deepEqual(messages, ['"a"', '"b"']);
  });
});
