/**
 * Issue #11 item 1, unit level (STYLE 19): every callback client input can reach in the hub contains
 * its own failure. A throw while serving one connection is logged with its id and closes that
 * connection alone with 1011; a throwing bus message, sweep visit or a store rejecting with something
 * that is not even an Error is logged and the hub carries on. Frames that arrive during a replay or a
 * close are bounded like any other. Fakes stand in for the socket, the log and the bus, so each failure
 * can be injected exactly where it is meant to happen.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { Writable } from 'node:stream';
import { after, afterEach, beforeEach, describe, it } from 'node:test';
import type { WebSocket } from 'ws';
import type { Principal } from '../../src/auth/auth.service.ts';
import type { Bus, BusHandler, BusMessage } from '../../src/bus/bus.ts';
import { createLogger } from '../../src/logger.ts';
import { createMetrics } from '../../src/metrics.ts';
import { CloseCode, FrameErrorCode } from '../../src/protocol.ts';
import type { EventLogReader, LogEvent } from '../../src/event-log.ts';
import { Hub } from '../../src/realtime/hub.ts';
import { testConfig } from '../helpers/app.ts';
import { waitUntil } from '../helpers/realtime.ts';
import { pagedLog } from './parts.ts';

type Sent = { type: string; data: Record<string, unknown> };

/** The slice of a ws WebSocket the hub uses; `failOn` makes one method throw. */
class FakeWs extends EventEmitter {
  readyState = 1;
  bufferedAmount = 0;
  sent: Sent[] = [];
  closedWith: number | undefined;
  failOn: 'send' | 'ping' | undefined;
  /** Writes stay buffered (bufferedAmount grows) until the test drains by hand. */
  holdsWrites = false;
  send(data: string | Buffer): void {
    if (this.failOn === 'send') throw new Error('write failed');
    if (this.holdsWrites) this.bufferedAmount += data.length;
    this.sent.push(JSON.parse(data.toString()) as Sent);
  }
  ping(): void {
    if (this.failOn === 'ping') throw new Error('ping failed');
  }
  close(code: number): void {
    this.closedWith ??= code;
    this.readyState = 2;
  }
  terminate(): void {
    this.readyState = 3;
    this.emit('close', 1006);
  }
  frame(text: string): void {
    this.emit('message', Buffer.from(text), false);
  }
  types(): string[] {
    return this.sent.map((f) => f.type);
  }
}

class FakeBus implements Bus {
  handlers: BusHandler[] = [];
  reconnects: Array<() => void> = [];
  async publish(): Promise<void> {}
  subscribe(h: BusHandler) {
    this.handlers.push(h);
    return () => {};
  }
  onReconnect(h: () => void) {
    this.reconnects.push(h);
    return () => {};
  }
  async close(): Promise<void> {}
}

const event = (seq: number, userId: number): LogEvent => ({
  seq,
  userId,
  type: 'NEW_MESSAGE',
  dataJson: `{"messageId":${seq}}`,
  createdAt: Date.now(),
});

const source = (over: Partial<EventLogReader> = {}): EventLogReader => ({
  epoch: async () => 'e',
  cursorFor: (epoch, seq) => `${epoch}.${seq}`,
  head: async () => 0,
  readAfter: async () => [],
  messageData: async () => new Map(),
  ...pagedLog([]),
  startResume: async () => ({ ok: true, from: { seq: 0, floor: 0 }, count: 0 }),
  unreadCounts: async (ids) => new Map(ids.map((id) => [id, 0])),
  ...over,
});

const principal = (userId: number): Principal =>
  ({ userId, role: 'user', exp: Math.floor(Date.now() / 1000) + 600 }) as Principal;

describe('hub: failures stay with the connection or callback that met them', () => {
  let hub: Hub;
  let logs: string[];
  let bus: FakeBus;
  const unhandled: unknown[] = [];
  const onUnhandled = (r: unknown) => unhandled.push(r);
  process.on('unhandledRejection', onUnhandled);
  after(() => process.off('unhandledRejection', onUnhandled));

  async function startHub(
    over: Partial<EventLogReader> = {},
    extra: { disabledAmong?: () => Promise<number[]>; batchSize?: number } = {},
  ) {
    const config = testConfig();
    logs = [];
    bus = new FakeBus();
    hub = new Hub({
      source: source(over),
      bus,
      realtime: {
        ...config.realtime,
        perMessageDeflate: true,
        heartbeatIntervalMs: 60,
        heartbeatTimeoutMs: 60_000,
      },
      events: {
        ...config.events,
        pollIntervalMs: 20,
        ...(extra.batchSize !== undefined && { batchSize: extra.batchSize }),
      },
      metrics: createMetrics(),
      logger: createLogger(
        'info',
        new Writable({
          write(chunk: Buffer, _e, cb) {
            logs.push(chunk.toString());
            cb();
          },
        }),
      ),
      ...(extra.disabledAmong && { disabledAmong: extra.disabledAmong }),
    });
    await hub.start();
  }

  async function live(userId: number, since?: string): Promise<FakeWs> {
    const ws = new FakeWs();
    void hub.attach(ws as unknown as WebSocket, principal(userId), since);
    await waitUntil(() => ws.types().includes('UNREAD_COUNT'));
    return ws;
  }

  const logged = (msg: string) =>
    logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l['msg'] === msg);

  beforeEach(() => (unhandled.length = 0));
  afterEach(async () => {
    await hub.stop();
    assert.deepEqual(unhandled, [], 'a rejection reached the process');
  });

  it('closes only the connection whose write throws, with 1011, and logs its id', async () => {
    await startHub();
    const [a, b] = [await live(1), await live(2)];
    a.failOn = 'send';
    a.frame('{"type":"HEARTBEAT","data":{}}');
    assert.equal(a.closedWith, CloseCode.INTERNAL_ERROR.code);
    const [line] = logged('connection handler failed');
    assert.equal(typeof line?.['connectionId'], 'string');
    assert.equal((line?.['err'] as { message: string }).message, 'write failed');
    b.frame('{"type":"HEARTBEAT","data":{}}');
    assert.equal(b.types().at(-1), 'HEARTBEAT_REPLY');
    assert.equal(b.closedWith, undefined);
  });

  it('closes with 1011 when the message listener itself throws', async () => {
    await startHub();
    const [a, b] = [await live(1), await live(2)];
    const poisoned = {
      get length(): number {
        throw new Error('poisoned frame');
      },
    };
    assert.doesNotThrow(() => a.emit('message', poisoned, false));
    assert.equal(a.closedWith, CloseCode.INTERNAL_ERROR.code);
    assert.equal(b.closedWith, undefined);
  });

  it('logs a bus message that throws and handles the next one', async () => {
    await startHub();
    const a = await live(7);
    const bad = {
      get type(): string {
        throw new Error('bad bus message');
      },
    } as unknown as BusMessage;
    for (const h of bus.handlers) assert.doesNotThrow(() => h(bad));
    assert.equal(logged('bus message failed').length, 1);
    for (const h of bus.handlers) h({ type: 'user-disabled', origin: 'n2', userId: 7 });
    assert.equal(a.closedWith, CloseCode.USER_DISABLED.code);
  });

  it('closes a connection whose heartbeat throws in the sweep; the others keep their heartbeats', async () => {
    await startHub();
    const [a, b] = [await live(1), await live(2)];
    a.failOn = 'ping';
    await waitUntil(
      () => a.closedWith !== undefined && b.types().filter((t) => t === 'HEARTBEAT').length >= 3,
    );
    assert.equal(a.closedWith, CloseCode.INTERNAL_ERROR.code);
    assert.equal(b.closedWith, undefined);
  });

  it('logs a store that rejects with a non-Error, on the poll and after a bus gap, and carries on', async () => {
    let calls = 0;
    await startHub(
      {
        readAfter: () => {
          calls++;
          return Promise.reject(undefined);
        },
      },
      { disabledAmong: () => Promise.reject(null) },
    );
    await live(3);
    for (const r of bus.reconnects) r();
    await waitUntil(() => calls >= 3 && logged('could not re-check disabled users').length === 1);
    assert.equal(logged('event log read failed').length, 1, 'logged once per outage');
  });

  it('bounds frames during a replay (counted, not answered) and ignores them during a close', async () => {
    // Two pages of one event: after the first, the replay waits for it to drain.
    await startHub({ ...pagedLog([event(1, 5), event(2, 5)]), head: async () => 2 }, { batchSize: 1 });
    const ws = new FakeWs();
    // The client does not read yet.
    ws.holdsWrites = true;
    void hub.attach(ws as unknown as WebSocket, principal(5), 'e.0');
    // The first page is written; the replay now waits for it to drain.
    await waitUntil(() => ws.types().includes('MESSAGE_BATCH'));
    const deep = `{"type":"HEARTBEAT","data":${'['.repeat(5000)}${']'.repeat(5000)}}`;
    ws.frame(deep);
    ws.frame(`{"type":"HEARTBEAT","data":"${'x'.repeat(20_000)}"}`);
    assert.deepEqual(ws.types(), ['CONNECTED', 'MESSAGE_BATCH'], 'nothing is interleaved with the replay');
    assert.equal(ws.closedWith, undefined);
    // The client reads from now on.
    ws.holdsWrites = false;
    ws.bufferedAmount = 0;
    await waitUntil(() => ws.types().includes('UNREAD_COUNT'));
    assert.deepEqual(
      ws.types().filter((t) => t !== 'HEARTBEAT'),
      ['CONNECTED', 'MESSAGE_BATCH', 'MESSAGE_BATCH', 'UNREAD_COUNT'],
    );
    ws.frame(deep);
    assert.deepEqual(ws.sent.at(-1)?.data['code'], FrameErrorCode.TOO_DEEP);
    ws.emit('message', Buffer.from('{}'), true); // binary: the server closes with 1003
    const before = ws.sent.length;
    ws.frame(deep);
    assert.equal(ws.closedWith, CloseCode.UNSUPPORTED_DATA.code);
    assert.equal(ws.sent.length, before, 'a closing connection is not answered');
  });
});
