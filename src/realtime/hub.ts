/**
 * The hub: this node's realtime core, wired from its parts. Where each behaviour lives:
 * - registry.ts: connections per user, caps and reservations, presence reads;
 * - connection.ts: one connection's state (replaying → live → closing) and its transitions;
 * - resume.ts: attach — registration, CONNECTED, replay, the live/replay seam;
 * - tail-reader.ts: reading the event log's tail (wake-up, poll, batching window);
 * - fanout.ts: delivering events to local connections, unread counts;
 * - socket-writer.ts: corking, the byte-bounded send queue, slow consumers (ws privates: ws-internals.ts);
 * - inbound.ts: client frames, strikes, the rate limit;
 * - sweeper.ts: the one timer (heartbeats, silence, token expiry, close grace);
 * - disabled-users.ts, containment.ts: users disabled mid-authentication; failures kept to one client.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { WebSocket } from 'ws';
import type { Principal } from '../auth/auth.service.ts';
import type { Bus, BusMessage } from '../bus/bus.ts';
import { systemClock, type Clock } from '../clock.ts';
import type { Config } from '../config.ts';
import type { EventLogReader } from '../event-log.ts';
import { messageOf } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import { CloseCode, type CloseSpec } from '../protocol.ts';
import { Connection } from './connection.ts';
import { Containment } from './containment.ts';
import { DisabledUsers } from './disabled-users.ts';
import { Fanout } from './fanout.ts';
import { InboundFrames, wsErrorCloseCode } from './inbound.ts';
import type { Presence } from './presence.ts';
import { Registry, type Reservation } from './registry.ts';
import { ReplayBudget } from './replay-budget.ts';
import { Resume } from './resume.ts';
import { SocketWriter } from './socket-writer.ts';
import { Sweeper } from './sweeper.ts';
import { TailReader } from './tail-reader.ts';

export type { Reservation } from './registry.ts';

export interface HubDeps {
  source: EventLogReader;
  bus: Bus;
  realtime: Config['realtime'];
  events: Config['events'];
  metrics: Metrics;
  logger: Logger;
  /** Which of these users are disabled: asked after the bus reconnects, when a user-disabled may be lost. */
  disabledAmong?: (userIds: readonly number[]) => Promise<number[]>;
  /** Told when a user's first connection on this node opens or the last one closes (cluster presence). */
  onPresenceChange?: (userId: number, online: boolean) => void;
  clock?: Clock;
}

export class Hub implements Presence {
  readonly clock: Clock;
  private epoch = '';
  private readonly registry: Registry;
  private readonly containment: Containment;
  private readonly disabled: DisabledUsers;
  private readonly writer: SocketWriter;
  private readonly tail: TailReader;
  private readonly fanout: Fanout;
  private readonly resume: Resume;
  /** The node's replay memory (replay-budget.ts). */
  readonly replayBudget: ReplayBudget;
  private readonly inbound: InboundFrames;
  private readonly sweeper: Sweeper;
  private unsubscribe: Array<() => void> = [];

  constructor(private readonly deps: HubDeps) {
    const clock = (this.clock = deps.clock ?? systemClock);
    const containment = (this.containment = new Containment(deps.logger, clock));
    // What several parts read; each part's deps type picks what it uses.
    const base = {
      ...{ source: deps.source, realtime: deps.realtime, events: deps.events },
      ...{ metrics: deps.metrics, logger: deps.logger, clock, containment },
      cursor: (seq: number) => this.cursor(seq),
      tailSeq: () => this.tail.tailSeq,
      onConnect: () => deps.metrics.wsConnects.inc(),
    };
    const fannedOut = (n: number) => this.tail.fannedOut(n);
    const registry = (this.registry = new Registry({ ...base, onPresenceChange: deps.onPresenceChange }));
    const disabled = (this.disabled = new DisabledUsers(clock));
    const writer = (this.writer = new SocketWriter({ ...base, onFlush: fannedOut }));
    const fanout = (this.fanout = new Fanout({ ...base, registry, writer, onFannedOut: fannedOut }));
    this.tail = new TailReader({
      ...base,
      resolve: (events) => fanout.resolve(events),
      missing: (events) => fanout.missing(events).size > 0,
      dispatch: (events) => fanout.dispatch(events),
      ...(deps.source.remember && { remember: deps.source.remember.bind(deps.source) }),
      refreshCounts: (userIds) => fanout.refreshCounts(userIds),
    });
    const budget = (this.replayBudget = new ReplayBudget(deps.events.replayMemoryBytes));
    this.resume = new Resume({ ...base, registry, fanout, writer, disabled, budget });
    this.inbound = new InboundFrames(writer, clock);
    this.sweeper = new Sweeper({ ...base, registry, writer, disabled });
  }

  /** Reads the log's head and epoch, subscribes to the bus and starts the sweep and poll timers. */
  async start(): Promise<void> {
    const { source } = this.deps;
    this.epoch = await source.epoch();
    const head = await source.head();
    // Without the newest events in memory resumes read the log, as they always could: not fatal.
    await source.prime?.(head).catch((err: unknown) => {
      this.deps.logger.warn({ err: { message: messageOf(err) } }, 'could not read the newest events');
    });
    this.tail.start(head);
    const { bus } = this.deps;
    const { containment } = this;
    // Bus and timer callbacks log their own failures and carry on: nothing reaches the process handlers.
    this.unsubscribe.push(bus.subscribe((m) => containment.guarded('bus message', () => this.onBus(m))));
    this.unsubscribe.push(
      bus.onReconnect(() => {
        containment.background(this.tail.pump(), 'event log read');
        containment.background(this.recheckDisabled(), 'disabled-user re-check');
      }),
    );
    this.sweeper.start();
  }

  get size(): number {
    return this.registry.size;
  }

  /** Where live delivery stands: every event up to this seq has been dispatched on this node. */
  get tailSeq(): number {
    return this.tail.tailSeq;
  }

  /**
   * The database's history was replaced (a restore, PITR or failover; messages/history-guard.ts): cursors
   * carry `epoch` from now on, live delivery follows the new log after `head`, and every connection is
   * closed with 1012, so that its client resumes and gets RESYNC "foreign". Returns how many were closed.
   */
  historyReplaced(epoch: string, head: number): number {
    this.epoch = epoch;
    this.tail.restart(head);
    const now = this.clock.monotonic();
    const all = [...this.registry.all()];
    for (const c of all) c.close(CloseCode.SERVICE_RESTART, now);
    return all.length;
  }

  /** Cursor of a log position in this database. */
  cursor(seq: number): string {
    return this.deps.source.cursorFor(this.epoch, seq);
  }

  /** Holds a slot for a connection about to upgrade; checks the per-node and per-user caps. */
  reserve(userId: number): Reservation {
    return this.registry.reserve(userId);
  }

  /**
   * Takes over an upgraded socket (see resume.ts). `authStartedAt` is the clock's monotonic time when
   * the principal's user row was about to be read; `release` lets writes held on the socket go.
   */
  async attach(
    ws: WebSocket,
    principal: Principal,
    since: string | undefined,
    authStartedAt = -Infinity,
    release?: () => void,
  ): Promise<void> {
    const { clock, containment, inbound, registry } = this;
    const { heartbeatIntervalMs, inboundRateLimit } = this.deps.realtime;
    const c = new Connection(
      randomUUID(),
      ws,
      principal.userId,
      principal.exp,
      clock.monotonic(),
      heartbeatIntervalMs,
      inboundRateLimit,
    );
    // Each listener client input reaches handles its own failure: it closes this connection (1011).
    ws.on('message', (raw, isBinary) =>
      containment.served(c, () => inbound.onFrame(c, raw as Buffer, isBinary)),
    );
    ws.on('pong', () => containment.served(c, () => c.markSeen(clock.monotonic())));
    ws.on('close', (code) => containment.served(c, () => registry.unregister(c, code, clock.monotonic())));
    ws.on('error', (err) =>
      containment.served(c, () => {
        // ws has already started closing with its own code; stop writing and let the sweep reap it.
        const code = wsErrorCloseCode(err);
        if (code !== undefined) c.beginClose(code, clock.monotonic());
        this.deps.logger.debug({ err: { message: err.message }, connectionId: c.id }, 'socket error');
      }),
    );
    return this.resume.attach(c, since, authStartedAt, release);
  }

  closeUser(userId: number, spec: CloseSpec): void {
    const now = this.clock.monotonic();
    for (const c of this.registry.ofUser(userId)) c.close(spec, now);
  }

  /** Closes every connection with `spec` and resolves when all are gone or `drainMs` has passed. */
  async closeAll(spec: CloseSpec, drainMs: number): Promise<void> {
    const { registry, clock } = this;
    for (const c of registry.all()) c.close(spec, clock.monotonic());
    const deadline = clock.monotonic() + drainMs;
    while (registry.size > 0 && clock.monotonic() < deadline) await new Promise((r) => setTimeout(r, 20));
    for (const c of registry.all()) c.socket.terminate();
    // Terminated sockets unregister on their 'close' event, a moment later.
    for (let i = 0; i < 50 && registry.size > 0; i++) await new Promise((r) => setTimeout(r, 10));
  }

  async stop(): Promise<void> {
    this.tail.stop();
    this.sweeper.stop();
    for (const u of this.unsubscribe) u();
    this.unsubscribe = [];
  }

  private onBus(m: BusMessage): void {
    this.deps.metrics.busMessages.inc({ type: m.type });
    if (m.type === 'events') this.tail.headMoved(m.head);
    else if (m.type === 'user-disabled') {
      this.disabled.remember(m.userId);
      this.closeUser(m.userId, CloseCode.USER_DISABLED);
    }
  }

  /** After a bus gap: a user-disabled sent meanwhile never arrived here, so ask the store. */
  private async recheckDisabled(): Promise<void> {
    const ask = this.deps.disabledAmong;
    if (!ask || this.registry.userCount === 0) return;
    try {
      const disabled = await ask([...this.registry.userIds()]);
      for (const userId of disabled) this.closeUser(userId, CloseCode.USER_DISABLED);
      if (disabled.length > 0)
        this.deps.logger.info(
          { users: disabled.length },
          'closed sockets of users disabled during a bus gap',
        );
    } catch (err) {
      this.deps.logger.warn({ err: { message: messageOf(err) } }, 'could not re-check disabled users');
    }
  }

  // ---- presence (this node's answer) ----

  onlineUserIds(): Promise<number[]> {
    return this.registry.onlineUserIds();
  }

  isOnline(userId: number): Promise<boolean> {
    return this.registry.isOnline(userId);
  }

  /** Local user ids, synchronously (for the cluster presence heartbeat). */
  localUserIds(): number[] {
    return this.registry.localUserIds();
  }
}
