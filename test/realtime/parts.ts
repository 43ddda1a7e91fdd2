/**
 * The hub's parts wired as hub.ts wires them, over a fake clock, fake sockets and a scripted event log
 * reader, for the *.unit.test.ts files beside this one. No timers run unless a test starts them.
 */
import { Writable } from 'node:stream';
import type { EventLogReader, LogEvent } from '../../src/event-log.ts';
import { createLogger } from '../../src/logger.ts';
import { createMetrics } from '../../src/metrics.ts';
import { Connection } from '../../src/realtime/connection.ts';
import { Containment } from '../../src/realtime/containment.ts';
import { DisabledUsers } from '../../src/realtime/disabled-users.ts';
import { Fanout } from '../../src/realtime/fanout.ts';
import { InboundFrames } from '../../src/realtime/inbound.ts';
import { Registry } from '../../src/realtime/registry.ts';
import { ReplayBudget } from '../../src/realtime/replay-budget.ts';
import { Resume } from '../../src/realtime/resume.ts';
import { SocketWriter } from '../../src/realtime/socket-writer.ts';
import { Sweeper } from '../../src/realtime/sweeper.ts';
import { FakeClock } from '../helpers/fake-clock.ts';
import { FakeServerSocket } from '../helpers/fake-server-socket.ts';

export const event = (seq: number, userId: number | null, type = 'NEW_MESSAGE'): LogEvent => ({
  seq,
  userId,
  type,
  dataJson: `{"messageId":${seq}}`,
  createdAt: 1_700_000_000_000,
});

/**
 * A scripted log that a resume counts and a replay pages through: the events of `log` for the user in
 * the asked range (cursors are `e.<seq>`).
 */
export function pagedLog(
  log: LogEvent[],
): Pick<EventLogReader, 'startResume' | 'replaySizes' | 'replayPage'> {
  const inRange = (userId: number, after: number, upto: number) =>
    log.filter((e) => e.seq > after && e.seq <= upto && (e.userId === null || e.userId === userId));
  return {
    startResume: async (userId, since, upto) => {
      const seq = Number(since.split('.')[1]);
      return { ok: true, from: { seq, floor: 0 }, count: inRange(userId, seq, upto).length };
    },
    replaySizes: async (userId, from, upto, limit) =>
      inRange(userId, from.seq, upto)
        .slice(0, limit)
        .map((e) => ({ seq: e.seq, chars: (e.dataJson ?? '').length })),
    replayPage: async (userId, from, through, limit) => ({
      expired: false,
      events: inRange(userId, from.seq, through).slice(0, limit),
    }),
  };
}

export const reader = (over: Partial<EventLogReader> = {}): EventLogReader => ({
  epoch: async () => 'e',
  cursorFor: (epoch, seq) => `${epoch}.${seq}`,
  head: async () => 0,
  readAfter: async () => [],
  messageData: async () => new Map(),
  ...pagedLog([]),
  unreadCounts: async (ids) => new Map(ids.map((id) => [id, 7])),
  ...over,
});

export interface PartsOptions {
  source?: Partial<EventLogReader>;
  sendQueueBytes?: number;
  heartbeatIntervalMs?: number;
  heartbeatTimeoutMs?: number;
  inboundRateLimit?: number;
  rawFrames?: boolean;
  batchSize?: number;
  /** The node's replay memory (SKYPUSH_REPLAY_MEMORY_BYTES). */
  replayMemoryBytes?: number;
  /** Sockets drain at once (a replay waits for each page to drain). */
  autoDrain?: boolean;
}

export function parts(o: PartsOptions = {}) {
  const clock = new FakeClock();
  const metrics = createMetrics({ defaultMetrics: false });
  const logs: string[] = [];
  const logger = createLogger(
    'debug',
    new Writable({
      write(chunk: Buffer, _e, cb) {
        logs.push(chunk.toString());
        cb();
      },
    }),
  );
  const realtime = {
    maxConnections: 100,
    maxConnectionsPerUser: 10,
    heartbeatIntervalMs: o.heartbeatIntervalMs ?? 30_000,
    heartbeatTimeoutMs: o.heartbeatTimeoutMs ?? 90_000,
    inboundRateLimit: o.inboundRateLimit ?? 60,
    sendQueueBytes: o.sendQueueBytes ?? 1_000_000,
    perMessageDeflate: !(o.rawFrames ?? false),
  };
  const events = { replayMax: 1000, batchSize: o.batchSize ?? 100 };
  const source = reader(o.source);
  const state = { tailSeq: 0 };
  const cursor = (seq: number) => `e.${seq}`;
  const tailSeq = () => state.tailSeq;
  const containment = new Containment(logger, clock);
  const registry = new Registry({ realtime, metrics });
  const disabled = new DisabledUsers(clock);
  const flushes: number[] = [];
  const writer = new SocketWriter({
    realtime,
    metrics,
    clock,
    containment,
    onFlush: (n) => flushes.push(n),
  });
  const fannedOut: number[] = [];
  const fanout = new Fanout({
    registry,
    writer,
    source,
    cursor,
    realtime,
    clock,
    metrics,
    onFannedOut: (n) => fannedOut.push(n),
  });
  const budget = new ReplayBudget(o.replayMemoryBytes ?? 64 * 1_048_576);
  const resume = new Resume({
    ...{ source, registry, tailSeq, fanout, writer, disabled, containment, cursor, realtime, events, clock },
    budget,
    onConnect: () => metrics.wsConnects.inc(),
  });
  const inbound = new InboundFrames(writer, clock);
  const sweeper = new Sweeper({ registry, writer, disabled, containment, realtime, clock, tailSeq, cursor });

  let ids = 0;
  /** A connection over a fake socket, not registered. */
  function connection(userId = 1, exp = Math.floor(clock.now() / 1000) + 3600) {
    const socket = new FakeServerSocket();
    socket.autoDrain = o.autoDrain ?? false;
    const c = new Connection(
      `c${++ids}`,
      socket.asWs(),
      userId,
      exp,
      clock.monotonic(),
      realtime.heartbeatIntervalMs,
      realtime.inboundRateLimit,
    );
    return { c, socket };
  }

  /** A registered connection already live at `lastSeq`. */
  function live(userId = 1, lastSeq = state.tailSeq) {
    const { c, socket } = connection(userId);
    registry.register(c);
    c.startLive(lastSeq);
    return { c, socket };
  }

  return {
    ...{ clock, metrics, logs, realtime, source, state, containment, registry, disabled, writer },
    ...{ fanout, resume, inbound, sweeper, flushes, fannedOut, connection, live, budget },
  };
}

/** A counter's total, whatever its labels. */
export async function total(counter: { get(): Promise<{ values: Array<{ value: number }> }> }) {
  return (await counter.get()).values.reduce((n, v) => n + v.value, 0);
}

/** Lets pending promise callbacks and setImmediate callbacks run. */
export const settle = () => new Promise<void>((r) => setImmediate(r));
