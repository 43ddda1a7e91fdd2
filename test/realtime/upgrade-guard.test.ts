/**
 * Issue #11 item 1: the whole 'upgrade' listener is guarded. A bug anywhere in it, in the synchronous
 * checks or in the asynchronous admission, refuses that socket alone with a 500 envelope and a log line;
 * the server keeps accepting everyone else.
 */
import assert from 'node:assert/strict';
import { Duplex } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { startApp, type TestApp } from '../helpers/app.ts';
import { refused } from '../helpers/realtime.ts';
import { connect } from '../helpers/ws-client.ts';

/** A socket that records what the server writes to it. */
function recordingSocket(): { socket: Duplex; written: () => string } {
  const chunks: Buffer[] = [];
  const socket = new Duplex({
    read() {},
    write(chunk: Buffer, _enc, cb) {
      chunks.push(Buffer.from(chunk));
      cb();
    },
  });
  return { socket, written: () => Buffer.concat(chunks).toString() };
}

describe('upgrade listener: a bug refuses that socket alone', () => {
  let t: TestApp;
  let user: { id: number; token: string };
  before(async () => {
    t = await startApp();
    user = await t.createUser('upgrade-guard');
  });
  after(async () => t.close());

  const failures = () => t.logs.filter((l) => l.includes('"msg":"upgrade failed"')).length;

  it('answers 500 with the envelope when the synchronous checks throw', () => {
    const { socket, written } = recordingSocket();
    const req = {
      url: '/api/v1/ws/messages',
      get headers(): never {
        throw new Error('a bug in the checks');
      },
    };
    const before = failures();
    assert.doesNotThrow(() => t.app.http.server.emit('upgrade', req, socket, Buffer.alloc(0)));
    const text = written();
    assert.match(text, /^HTTP\/1\.1 500 Internal Server Error\r\n/);
    assert.deepEqual(JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)), {
      code: 500,
      message: 'internal server error',
      data: null,
    });
    assert.equal(failures(), before + 1);
  });

  it('answers 500 with the envelope when admission fails, and accepts the next client', async () => {
    const hub = t.app.hub;
    const reserve = hub.reserve.bind(hub);
    hub.reserve = () => {
      throw new Error('a bug in admission');
    };
    const before = failures();
    try {
      const r = await refused(t.wsUrl, { token: user.token });
      assert.equal(r.status, 500);
      assert.deepEqual(r.body, { code: 500, message: 'internal server error', data: null });
    } finally {
      hub.reserve = reserve;
    }
    assert.equal(failures(), before + 1);
    const line = t.logs.filter((l) => l.includes('"msg":"upgrade failed"')).at(-1) ?? '';
    assert.doesNotMatch(line, new RegExp(user.token), 'the token in the query is redacted');
    const sock = await connect(t.wsUrl, { token: user.token });
    await sock.waitFor((f) => f.type === 'UNREAD_COUNT');
    await sock.close();
  });
});
