/**
 * Issue #11: the two single packets that used to kill the process, sent raw to a real server process
 * (a spawned `skypush serve`), plus the frames' variants before CONNECTED, during a replay and during a
 * close. After each attack: a clean refusal, the process alive, /healthz answering, a well-behaved
 * client connecting and receiving a message, and no tripwire line ("uncaught exception" / "unhandled
 * rejection") in the process's log.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createConnection } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { CloseCode, FrameErrorCode, INBOUND_LIMITS } from '../../src/protocol.ts';
import { api, loginAdmin, startNode, type NodeProcess } from '../helpers/node-process.ts';
import { mintToken, sleep } from '../helpers/realtime.ts';
import { connect } from '../helpers/ws-client.ts';
import { PACKET_1, deepHeartbeat, maskedFrame, openRaw, rawHttp, type RawWs } from './raw.ts';

const USER = 9101;
const WS = '/api/v1/ws/messages';
const TRIPWIRE = /uncaught exception|unhandled rejection/;

describe('attack packets against a real server process', () => {
  let node: NodeProcess;
  let dir: string;
  let admin: string;
  let token: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'skypush-attack-'));
    node = await startNode({
      SKYPUSH_DATABASE_URL: `sqlite:${join(dir, 'skypush.db')}`,
      SKYPUSH_DATA_DIR: dir,
      SKYPUSH_SHUTDOWN_DRAIN_MS: '0',
    });
    admin = await loginAdmin(node.url);
    const r = await api(node.url, 'POST', '/api/v1/users', {
      token: admin,
      body: { id: USER, username: `attack${USER}` },
    });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    token = await mintToken(USER);
  });
  after(async () => {
    await node.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const send = async (title: string) => {
    const r = await api<{ messageId: number }>(node.url, 'POST', '/api/v1/messages/send', {
      token: admin,
      body: { title, content: 'body', targetType: 'user', targetIds: [USER] },
    });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return r.body.data.messageId;
  };

  /** The process is up, answers /healthz, serves a well-behaved client, and never tripped. */
  async function stillServing(): Promise<void> {
    assert.equal(node.proc.exitCode, null, 'the process exited');
    const health = await fetch(`${node.url}/healthz`);
    assert.equal(health.status, 200);
    const sock = await connect(node.wsUrl, { token });
    await sock.waitFor((f) => f.type === 'UNREAD_COUNT');
    const id = await send('still served');
    await sock.waitFor((f) => f.type === 'NEW_MESSAGE' && f.data['messageId'] === id);
    await sock.close();
    assert.doesNotMatch(node.output.join(''), TRIPWIRE);
  }

  const heartbeat = maskedFrame('{"type":"HEARTBEAT","data":{"ping":"pong"}}');
  const isText = (type: string) => (f: { opcode: number; payload: Buffer }) =>
    f.opcode === 1 && (JSON.parse(f.payload.toString()) as { type: string }).type === type;
  const errorsOf = (ws: RawWs) => ws.json().filter((f) => f.type === 'ERROR');

  it('packet 1: answers an upgrade to //a:99999/ with 400 and the envelope, and keeps serving', async () => {
    const [res] = await rawHttp(node.url, [PACKET_1]);
    assert.equal(res?.status, 400);
    assert.equal(res.headers['connection'], 'close');
    assert.deepEqual(JSON.parse(res.body), { code: 400, message: 'malformed request target', data: null });
    await stillServing();
  });

  it('refuses other odd upgrade targets with a 4xx envelope, never a 5xx', async () => {
    const targets: Array<[string, number]> = [
      ['http://localhost/api/v1/ws/messages', 400],
      ['//localhost/api/v1/ws/messages', 400],
      ['/%zz/../api?ticket=%zz', 404],
      [`${WS}?token=%E0%A4%A`, 401],
      [`${WS}?since=%ff%fe`, 400],
      [`${WS}#frag`, 401],
    ];
    for (const [target, status] of targets) {
      const [res] = await rawHttp(node.url, [PACKET_1.replace('//a:99999/', target)]);
      assert.equal(res?.status, status, target);
      const body = JSON.parse(res.body) as { code: number; message: string };
      assert.equal(Math.floor(body.code / 100) === status || body.code === status, true, target);
      assert.equal(typeof body.message, 'string');
    }
    await stillServing();
  });

  it('packet 2 on a live connection: ERROR TOO_DEEP, and the connection stays usable', async () => {
    const ws = await openRaw(node.url, `${WS}?token=${token}`);
    await ws.waitFor(isText('UNREAD_COUNT'));
    const deep = deepHeartbeat();
    assert.ok(deep.length > 10_000 && deep.length < 11_000, 'the ~10 KB frame of the report');
    ws.socket.write(maskedFrame(deep));
    await ws.waitFor(isText('ERROR'));
    assert.equal(errorsOf(ws)[0]?.data['code'], FrameErrorCode.TOO_DEEP);
    ws.socket.write(heartbeat);
    await ws.waitFor(isText('HEARTBEAT_REPLY'));
    assert.equal(ws.closeCode(), undefined);
    ws.socket.destroy();
    await stillServing();
  });

  it('refuses data over the size limit, and non-object heartbeat data, from the raw frame', async () => {
    const ws = await openRaw(node.url, `${WS}?token=${token}`);
    await ws.waitFor(isText('UNREAD_COUNT'));
    const big = `{"type":"HEARTBEAT","data":"${'x'.repeat(INBOUND_LIMITS.maxDataBytes)}"}`;
    ws.socket.write(Buffer.concat([maskedFrame(big), maskedFrame('{"type":"HEARTBEAT","data":[1,2]}')]));
    await ws.waitFor(() => errorsOf(ws).length === 2);
    assert.deepEqual(
      errorsOf(ws).map((e) => e.data['code']),
      [FrameErrorCode.DATA_TOO_LARGE, FrameErrorCode.BAD_DATA],
    );
    ws.socket.destroy();
    await stillServing();
  });

  it('packet 2 before CONNECTED (in the handshake packet): no reply before CONNECTED, then served', async () => {
    const ws = await openRaw(node.url, `${WS}?token=${token}`, maskedFrame(deepHeartbeat()));
    await ws.waitFor(isText('UNREAD_COUNT'));
    assert.equal(ws.json()[0]?.type, 'CONNECTED', 'nothing precedes CONNECTED');
    ws.socket.write(heartbeat);
    await ws.waitFor(isText('HEARTBEAT_REPLY'));
    assert.deepEqual(errorsOf(ws), [], 'a frame refused before going live is counted, not answered');
    assert.equal(ws.closeCode(), undefined);
    ws.socket.destroy();
    await stillServing();
  });

  it('packet 2 during a replay: the replay completes in order and the connection goes live', async () => {
    const first = await connect(node.wsUrl, { token });
    const hello = await first.waitFor((f) => f.type === 'CONNECTED');
    await first.close();
    const ids = [await send('r1'), await send('r2'), await send('r3')];
    const since = encodeURIComponent(String(hello.data['cursor']));
    const attack = Buffer.concat([maskedFrame(deepHeartbeat()), maskedFrame(deepHeartbeat(100))]);
    const ws = await openRaw(node.url, `${WS}?token=${token}&since=${since}`, attack);
    await ws.waitFor(isText('UNREAD_COUNT'));
    const [connected, batch] = ws.json();
    assert.equal(connected?.type, 'CONNECTED');
    assert.deepEqual(connected.data['resume'], { requested: true, ok: true, replayed: 3 });
    const replayed = (batch?.data['messages'] as Array<{ data: { messageId: number } }>).map(
      (m) => m.data.messageId,
    );
    assert.deepEqual(replayed, ids);
    ws.socket.write(heartbeat);
    await ws.waitFor(isText('HEARTBEAT_REPLY'));
    ws.socket.destroy();
    await stillServing();
  });

  it('packet 2 during a close: ignored; the connection closes with the close code it earned', async () => {
    const ws = await openRaw(node.url, `${WS}?token=${token}`);
    await ws.waitFor(isText('UNREAD_COUNT'));
    // A binary frame makes the server close (1003); the deep frame follows in the same packet.
    ws.socket.write(Buffer.concat([maskedFrame('{}', 2), maskedFrame(deepHeartbeat())]));
    await ws.waitFor((f) => f.opcode === 8);
    assert.equal(ws.closeCode(), CloseCode.UNSUPPORTED_DATA.code);
    assert.deepEqual(errorsOf(ws), []);
    ws.socket.destroy();
    await stillServing();
  });

  it('survives a reset while an upgrade offer waits behind a slow pipelined request', async () => {
    // The login's password hash takes a while; the h2c offer queued behind it waits for its response,
    // and the peer resets the connection meanwhile.
    const login = JSON.stringify({ username: 'admin', password: 'not-the-password' });
    const sock = createConnection(Number(new URL(node.url).port), '127.0.0.1');
    sock.on('error', () => {});
    await new Promise((r) => sock.once('connect', r));
    sock.write(
      `POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n` +
        `Content-Length: ${login.length}\r\n\r\n${login}` +
        'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n',
    );
    await sleep(50);
    sock.resetAndDestroy();
    await sleep(1500); // the hash finishes and its answer meets the reset socket
    await stillServing();
  });

  it('the process logged no tripwire line after all of the above', () => {
    assert.equal(node.proc.exitCode, null);
    assert.doesNotMatch(node.output.join(''), TRIPWIRE);
  });
});
