/**
 * The client's state machine against an in-memory socket and a manual clock: states, heartbeats,
 * cursors, de-duplication, dead connections and the close-code contract, deterministically.
 */
import assert from 'node:assert/strict';
import { beforeEach, describe, it } from 'node:test';
import { SkypushClient, type ClientOptions, type ConnectionState } from '../../client/index.ts';
import { FakeClock } from '../helpers/fake-clock.ts';
import { FakeSocket } from '../helpers/fake-socket.ts';

const URL = 'ws://push.test/api/v1/ws/messages';
const tick = () => new Promise((r) => setImmediate(r));

function connected(cursor = 'aaaaaaaaaaaa.5', heartbeatIntervalMs = 1000) {
  return { userID: 7, connectionId: 'c1', message: 'ok', timestamp: 1, cursor, heartbeatIntervalMs };
}
function message(messageId: number) {
  return { messageId, title: `m${messageId}`, content: '', priority: 1 };
}

describe('client state machine (fake socket, fake clock)', () => {
  let clock: FakeClock;
  let states: ConnectionState[];
  let tokens: string[];

  function make(extra: Partial<ClientOptions> = {}): SkypushClient {
    const client = new SkypushClient({
      url: URL,
      getToken: (reason) => (tokens.push(reason), `token-${tokens.length}`),
      WebSocket: FakeSocket,
      clock,
      random: () => 0.5,
      backoff: { baseMs: 100, maxMs: 1000 },
      ...extra,
    });
    client.on('state', (s) => states.push(s));
    return client;
  }

  async function open(client: SkypushClient, cursor?: string): Promise<FakeSocket> {
    client.connect();
    await tick();
    const ws = FakeSocket.last();
    ws.push('CONNECTED', connected(cursor));
    return ws;
  }

  beforeEach(() => {
    FakeSocket.opened.length = 0;
    clock = new FakeClock();
    states = [];
    tokens = [];
  });

  it('goes connecting then connected on CONNECTED, emitting each change once', async () => {
    const client = make();
    assert.equal(client.state, 'disconnected');
    const ws = await open(client);
    assert.equal(client.state, 'connected');
    assert.deepEqual(states, ['connecting', 'connected']);
    assert.deepEqual(ws.protocols, ['skypush.v1', 'token-1'], 'token goes in the sub-protocol');
    assert.ok(!ws.url.includes('token'), 'no token in the URL');
    client.disconnect();
    assert.deepEqual(states, ['connecting', 'connected', 'disconnected']);
  });

  it('uses ?ticket= when getTicket is given and ?token= only when asked', async () => {
    const a = make({ getToken: undefined, getTicket: () => 'tkt' });
    a.connect();
    await tick();
    assert.match(FakeSocket.last().url, /[?&]ticket=tkt/);
    assert.equal(FakeSocket.last().protocols, undefined);
    a.disconnect();
    const b = make({ tokenInQuery: true });
    b.connect();
    await tick();
    assert.match(FakeSocket.last().url, /[?&]token=token-1/);
    b.disconnect();
  });

  it('answers HEARTBEAT with HEARTBEAT_REPLY in unix seconds and adopts its cursor', async () => {
    const client = make();
    const ws = await open(client);
    ws.push('HEARTBEAT', { ping: 'pong' }, 'aaaaaaaaaaaa.9');
    assert.deepEqual(ws.sent, [
      { type: 'HEARTBEAT_REPLY', data: { pong: 'ping' }, timestamp: Math.floor(clock.now() / 1000) },
    ]);
    assert.equal(client.cursor, 'aaaaaaaaaaaa.9');
    client.disconnect();
  });

  it('keeps the newest cursor from events, batches and RESYNC and resumes with it', async () => {
    const resyncs: string[] = [];
    const client = make({ onResync: (i) => void resyncs.push(i.reason) });
    const ws = await open(client, 'aaaaaaaaaaaa.5');
    assert.equal(client.cursor, 'aaaaaaaaaaaa.5', 'CONNECTED sets the cursor when there was none');
    ws.push('NEW_MESSAGE', message(1), 'aaaaaaaaaaaa.6');
    ws.push(
      'MESSAGE_BATCH',
      {
        messages: [
          { type: 'NEW_MESSAGE', data: message(2), timestamp: 1, cursor: 'aaaaaaaaaaaa.7' },
          { type: 'MESSAGE_DELETED', data: { messageId: 1 }, timestamp: 1, cursor: 'aaaaaaaaaaaa.8' },
        ],
      },
      'aaaaaaaaaaaa.8',
    );
    assert.equal(client.cursor, 'aaaaaaaaaaaa.8');
    ws.drop(1012, 'service restart');
    clock.runNext();
    await tick();
    const again = FakeSocket.last();
    assert.match(again.url, /since=aaaaaaaaaaaa\.8/);
    again.push('CONNECTED', connected('aaaaaaaaaaaa.8'));
    again.push('RESYNC', { reason: 'expired', cursor: 'bbbbbbbbbbbb.1' }, 'bbbbbbbbbbbb.1');
    await tick();
    assert.deepEqual(resyncs, ['expired']);
    assert.equal(client.cursor, 'bbbbbbbbbbbb.1', 'adopted once onResync has returned');
    again.push('CONNECTED', connected('cccccccccccc.1'));
    assert.equal(client.cursor, 'bbbbbbbbbbbb.1', 'CONNECTED does not replace a cursor the client has');
    client.disconnect();
  });

  it('adopts the RESYNC position only after onResync succeeds; a failed refetch resumes from the gap', async () => {
    let fail = true;
    let release: () => void = () => {};
    const client = make({
      onResync: () =>
        fail ? Promise.reject(new Error('inbox reload failed')) : new Promise<void>((r) => (release = r)),
    });
    const errors: Error[] = [];
    client.on('error', (e) => void errors.push(e));
    const ws = await open(client, 'aaaaaaaaaaaa.5');
    ws.push('RESYNC', { reason: 'too_many', cursor: 'aaaaaaaaaaaa.90' }, 'aaaaaaaaaaaa.90');
    ws.push('NEW_MESSAGE', message(91), 'aaaaaaaaaaaa.91');
    await tick();
    assert.equal(errors.length, 1, 'the failed refetch is reported');
    assert.equal(client.cursor, 'aaaaaaaaaaaa.5', 'still where the gap began');
    ws.drop(1006, '');
    clock.runNext();
    await tick();
    const again = FakeSocket.last();
    assert.match(again.url, /since=aaaaaaaaaaaa\.5/, 'resumes from the gap, to be told RESYNC again');
    fail = false;
    again.push('CONNECTED', connected('aaaaaaaaaaaa.95'));
    again.push('RESYNC', { reason: 'too_many', cursor: 'aaaaaaaaaaaa.95' }, 'aaaaaaaaaaaa.95');
    again.push('NEW_MESSAGE', message(96), 'aaaaaaaaaaaa.96');
    await tick();
    assert.equal(client.cursor, 'aaaaaaaaaaaa.5', 'not while the refetch is running');
    release();
    await tick();
    assert.equal(client.cursor, 'aaaaaaaaaaaa.96', 'the newest position once it succeeded');
    client.disconnect();
  });

  it('emits each NEW_MESSAGE id once, live or replayed, and marks replayed ones', async () => {
    const client = make();
    const got: Array<[number, boolean]> = [];
    client.on('NEW_MESSAGE', (m, info) => got.push([m.messageId, info.replayed]));
    const ws = await open(client);
    ws.push('NEW_MESSAGE', message(1), 'aaaaaaaaaaaa.6');
    ws.push('NEW_MESSAGE', message(1), 'aaaaaaaaaaaa.6');
    ws.push('MESSAGE_BATCH', {
      messages: [
        { type: 'NEW_MESSAGE', data: message(1), timestamp: 1, cursor: 'aaaaaaaaaaaa.6' },
        { type: 'NEW_MESSAGE', data: message(2), timestamp: 1, cursor: 'aaaaaaaaaaaa.7' },
      ],
    });
    assert.deepEqual(got, [
      [1, false],
      [2, true],
    ]);
    client.disconnect();
  });

  it('treats two heartbeat intervals of silence as a dead connection and reconnects', async () => {
    const client = make();
    const ws = await open(client); // heartbeatIntervalMs 1000
    clock.advance(1500);
    ws.push('HEARTBEAT', { ping: 'pong' }, 'aaaaaaaaaaaa.5');
    clock.advance(1999);
    assert.equal(client.state, 'connected', 'a frame restarts the silence window');
    const lost: number[] = [];
    client.on('disconnect', (d) => lost.push(d.code));
    clock.advance(1);
    assert.deepEqual(lost, [4010]);
    assert.ok(ws.closedByClient, 'the dead socket is closed');
    assert.equal(client.state, 'connecting');
    clock.runNext();
    await tick();
    assert.equal(FakeSocket.opened.length, 2, 'a new attempt is made');
    client.disconnect();
  });

  it('gives up on an attempt that never says CONNECTED and backs off', async () => {
    const client = make({ connectTimeoutMs: 500 });
    client.connect();
    await tick();
    const lost: string[] = [];
    client.on('disconnect', (d) => lost.push(d.action));
    clock.advance(500);
    assert.deepEqual(lost, ['backoff']);
    client.disconnect();
  });

  it('backs off with full jitter: every delay in [0, min(max, base·2^n)), capped at max', async () => {
    let r = 0.999;
    const client = make({ random: () => r });
    const delays: number[] = [];
    client.on('reconnecting', (i) => delays.push(i.delayMs));
    client.connect();
    for (let n = 0; n < 7; n++) {
      await tick();
      FakeSocket.last().drop(1006);
      clock.runNext();
    }
    assert.deepEqual(delays, [99, 199, 399, 799, 999, 999, 999]);
    r = 0;
    await tick();
    FakeSocket.last().drop(1006);
    assert.equal(delays.at(-1), 0, 'the window starts at 0 (full jitter)');
    client.disconnect();
  });

  it('reconnects within the first step after 1012 and starts over after a stable connection', async () => {
    const client = make({ random: () => 0.999, stableAfterMs: 1000 });
    const delays: number[] = [];
    client.on('reconnecting', (i) => delays.push(i.delayMs));
    const ws = await open(client);
    clock.advance(900);
    ws.push('HEARTBEAT', { ping: 'pong' });
    clock.advance(200);
    ws.drop(1012);
    assert.deepEqual(delays, [99]);
    clock.runNext();
    await tick();
    FakeSocket.last().drop(1006);
    assert.deepEqual(delays, [99, 199], 'a failure right after backs off from where it was');
    client.disconnect();
  });

  it('asks for fresh credentials at once after 4001 (token expired)', async () => {
    const client = make();
    const ws = await open(client);
    ws.drop(4001, 'token expired');
    assert.deepEqual(clock.pending(), [0]);
    clock.runNext();
    await tick();
    assert.deepEqual(tokens, ['connect', 'refresh']);
    assert.deepEqual(FakeSocket.last().protocols, ['skypush.v1', 'token-2']);
    client.disconnect();
  });

  it('stops on a terminal close code and does not reconnect', async () => {
    for (const code of [4003, 1000, 1008]) {
      const client = make();
      const ws = await open(client);
      const before = FakeSocket.opened.length;
      ws.drop(code);
      assert.equal(client.state, 'disconnected', `state after ${code}`);
      assert.deepEqual(clock.pending(), [], `no retry scheduled after ${code}`);
      assert.equal(FakeSocket.opened.length, before);
    }
  });

  it('reports a failing credentials callback and retries with backoff', async () => {
    let fail = true;
    const errors: string[] = [];
    const client = make({
      getToken: () => {
        if (fail) throw new Error('auth server down');
        return 'ok';
      },
    });
    client.on('error', (e) => errors.push(e.message));
    client.connect();
    await tick();
    assert.deepEqual(errors, ['auth server down']);
    assert.equal(client.state, 'connecting');
    fail = false;
    clock.runNext();
    await tick();
    assert.deepEqual(FakeSocket.last().protocols, ['skypush.v1', 'ok']);
    client.disconnect();
  });

  it('connect() while waiting to retry retries at once; disconnect() cancels the retry', async () => {
    const client = make();
    const ws = await open(client);
    ws.drop(1006);
    assert.equal(clock.pending().length, 1);
    client.connect();
    await tick();
    assert.equal(FakeSocket.opened.length, 2);
    assert.deepEqual(clock.pending(), [10_000], 'only the connect timeout is pending');
    client.disconnect();
    assert.deepEqual(clock.pending(), []);
    assert.equal(client.state, 'disconnected');
    assert.deepEqual(FakeSocket.last().closedByClient, { code: 1000, reason: 'client disconnect' });
  });
});
