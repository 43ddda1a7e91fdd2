/**
 * The hub: this node's connection registry, fan-out, heartbeat and resume.
 *
 * Live delivery is a tail read of the event log: a bus wake-up (or the periodic poll) makes the hub read
 * every event after `tailSeq`, in seq order, and hand each to the local connections it concerns. As the
 * log is commit-ordered, nothing is skipped and a connection never sees seq go backwards.
 *
 * Resume without a gap or a duplicate: a connection is registered in state `replaying` *synchronously*
 * with reading `tailSeq` (= upto). Events ≤ upto were dispatched before it existed, so the replay query
 * covers (since, upto]; events > upto reach it through dispatch and wait in `pending` until the replay is
 * written. `lastSeq` then drops anything at or below what the client already has.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { WebSocket } from 'ws';
import type { Principal } from '../auth/auth.service.ts';
import type { Bus, BusMessage } from '../bus/bus.ts';
import type { Config } from '../config.ts';
import { messageOf } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import {
  CloseCode,
  FrameErrorCode,
  FrameType,
  InboundType,
  type CloseSpec,
  type ConnectedPayload,
} from '../protocol.ts';
import { WireFrame, encodeFrame, parseInbound, spliceFrame, type Inbound } from './codec.ts';
import { Connection } from './connection.ts';
import type { EventLogReader, LogEvent } from '../event-log.ts';
import type { Presence } from './presence.ts';

/** Event types after which the recipient's unread count is pushed. */
const COUNT_TYPES = new Set<string>([
  FrameType.NEW_MESSAGE,
  FrameType.MESSAGE_READ,
  FrameType.MESSAGE_DELETED,
]);
/** The close code ws sends by itself when it rejects an inbound frame (see ws/lib/receiver.js). */
function wsErrorCloseCode(err: Error): number | undefined {
  const code = (err as { code?: unknown }).code;
  if (typeof code !== 'string' || !code.startsWith('WS_ERR_')) return undefined;
  if (code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' || code === 'WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH')
    return CloseCode.TOO_LARGE.code;
  if (code === 'WS_ERR_INVALID_UTF8') return CloseCode.INVALID_UTF8.code;
  if (code === 'WS_ERR_TOO_MANY_BUFFERED_PARTS') return CloseCode.POLICY_VIOLATION.code;
  return CloseCode.INVALID_FRAME.code;
}

const READ_BATCH = 1000;
/** Pre-encoded frames are Buffers; they still go out as text frames. */
const TEXT = { binary: false } as const;
const OPEN = 1; // WebSocket.OPEN
/** The slice of ws's sender that writes a ready-made frame (ws queues nothing without deflate). */
type RawSender = { _sender: { sendFrame(list: Buffer[]): void } };
const CLOSE_GRACE_MS = 2000;
const SWEEP_SLICES = 10;
/**
 * Frames in one flush from which the hub batches the next tail read (see wake()), for how long after
 * the flush, and how long a wake-up then waits for the commits queued behind the fan-out.
 */
const LARGE_FANOUT = 256;
const BUSY_MS = 10;
const BATCH_WINDOW_MS = 5;
const MAX_STRIKES = 5;
/** Frames up to this size are parsed before the rate limit when they may be a heartbeat answer. */
const SMALL_FRAME = 256;
/** How long a user-disabled is remembered for sockets whose authentication was under way (attach). */
const DISABLED_MEMORY_MS = 120_000;

/** An error's message for a warning line, whatever was thrown (a rejection may carry no Error at all). */

export interface HubDeps {
  source: EventLogReader;
  bus: Bus;
  realtime: Config['realtime'];
  events: Config['events'];
  metrics: Metrics;
  logger: Logger;
  nodeId: string;
  /** Which of these users are disabled: asked after the bus reconnects, when a user-disabled may be lost. */
  disabledAmong?: (userIds: readonly number[]) => Promise<number[]>;
  /** Told when a user's first connection on this node opens or the last one closes (cluster presence). */
  onPresenceChange?: (userId: number, online: boolean) => void;
  now?: () => number;
}

export type Reservation =
  { ok: true; release: () => void } | { ok: false; reason: 'node-full' | 'user-full' };

export class Hub implements Presence {
  private readonly connections = new Map<string, Connection>();
  private readonly byUser = new Map<number, Set<Connection>>();
  private readonly reservedByUser = new Map<number, number>();
  /** When (performance.now()) each recently disabled user was heard of: see attach(). */
  private readonly disabledAt = new Map<number, number>();
  private reserved = 0;
  private epoch = '';
  private tailSeq = 0;
  private pumping = false;
  private wakePending = false;
  /** Until when (performance.now()) a wake-up waits for the end of the turn: see wake(). */
  private busyUntil = 0;
  /** Users whose unread count the next batched query fetches (see unreadCountOf). */
  private countBatch: { ids: Set<number>; counts: Promise<Map<number, number>> } | undefined;
  private dirty = false;
  /** The log could not be read on the last try (logged once per outage, not once per poll). */
  private readFailing = false;
  private stopped = false;
  private sweepTimer: NodeJS.Timeout | undefined;
  private sweepSlices = 1;
  /** Where the sweep's round through the connections stands (Map iterators survive deletions). */
  private sweepCursor: Iterator<Connection> | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private unsubscribe: Array<() => void> = [];
  /** Connections corked in this turn (each knows the bytes it held unsent before: corkedBacklog). */
  private corked: Connection[] = [];
  private readonly now: () => number;
  /** Without per-message deflate, fan-out frames are written to sockets pre-framed. */
  private readonly rawFrames: boolean;

  constructor(private readonly deps: HubDeps) {
    this.now = deps.now ?? Date.now;
    this.rawFrames = !deps.realtime.perMessageDeflate;
  }

  /** Reads the log's head and epoch, subscribes to the bus and starts the sweep and poll timers. */
  async start(): Promise<void> {
    this.epoch = await this.deps.source.epoch();
    this.tailSeq = await this.deps.source.head();
    // Bus and timer callbacks log their own failures and carry on: nothing reaches the process handlers.
    this.unsubscribe.push(this.deps.bus.subscribe((m) => this.guarded('bus message', () => this.onBus(m))));
    this.unsubscribe.push(
      this.deps.bus.onReconnect(() => {
        this.background(this.pump(), 'event log read');
        this.background(this.recheckDisabled(), 'disabled-user re-check');
      }),
    );
    const hb = this.deps.realtime.heartbeatIntervalMs;
    // Every connection is visited once per period, a slice per tick: heartbeats leave in small bursts
    // (10k connections at a 30 s interval: ~30 per 100 ms tick, not ~330 at once every second).
    const period = Math.max(20, Math.min(1000, Math.floor(hb / 4)));
    this.sweepSlices = Math.max(1, Math.min(SWEEP_SLICES, Math.floor(period / 20)));
    this.sweepTimer = setInterval(
      () => this.guarded('sweep', () => this.sweep()),
      Math.floor(period / this.sweepSlices),
    );
    this.sweepTimer.unref();
    this.pollTimer = setInterval(
      () => this.background(this.pump(), 'event log read'),
      this.deps.events.pollIntervalMs,
    );
    this.pollTimer.unref();
  }

  get size(): number {
    return this.connections.size;
  }

  /** Cursor of a log position in this database. */
  cursor(seq: number): string {
    return this.deps.source.cursorFor(this.epoch, seq);
  }

  /** Holds a slot for a connection about to upgrade; checks the per-node and per-user caps. */
  reserve(userId: number): Reservation {
    const { maxConnections, maxConnectionsPerUser } = this.deps.realtime;
    if (this.connections.size + this.reserved >= maxConnections) return { ok: false, reason: 'node-full' };
    const mine = (this.byUser.get(userId)?.size ?? 0) + (this.reservedByUser.get(userId) ?? 0);
    if (mine >= maxConnectionsPerUser) return { ok: false, reason: 'user-full' };
    this.reserved++;
    this.reservedByUser.set(userId, (this.reservedByUser.get(userId) ?? 0) + 1);
    let released = false;
    return {
      ok: true,
      release: () => {
        if (released) return;
        released = true;
        this.reserved--;
        const n = (this.reservedByUser.get(userId) ?? 1) - 1;
        if (n > 0) this.reservedByUser.set(userId, n);
        else this.reservedByUser.delete(userId);
      },
    };
  }

  /**
   * Takes over an upgraded socket: registers it, sends CONNECTED, replays from `since`, then goes live.
   * `authStartedAt` (performance.now()) is when the principal's user row was about to be read: a
   * user-disabled heard since then may have missed this socket, which was not registered yet.
   */
  async attach(
    ws: WebSocket,
    principal: Principal,
    since: string | undefined,
    authStartedAt = -Infinity,
  ): Promise<void> {
    const { realtime, metrics } = this.deps;
    const c = new Connection(
      randomUUID(),
      ws,
      principal.userId,
      principal.role,
      principal.exp,
      this.now(),
      realtime.heartbeatIntervalMs,
      realtime.inboundRateLimit,
    );
    // Each listener client input reaches handles its own failure: it closes this connection (1011).
    ws.on('message', (raw, isBinary) => this.served(c, () => this.onFrame(c, raw as Buffer, isBinary)));
    ws.on('pong', () =>
      this.served(c, () => {
        c.lastSeen = this.now();
      }),
    );
    ws.on('close', (code) => this.served(c, () => this.unregister(c, code)));
    ws.on('error', (err) =>
      this.served(c, () => {
        // ws has already started closing with its own code; stop writing and let the sweep reap it.
        const code = wsErrorCloseCode(err);
        if (code !== undefined && c.state !== 'closing') {
          c.state = 'closing';
          c.closingSince = this.now();
          c.closeCode = code;
        }
        this.deps.logger.debug({ err: { message: err.message }, connectionId: c.id }, 'socket error');
      }),
    );
    try {
      // Registration and reading tailSeq happen in the same synchronous step (see the file comment).
      const upto = this.tailSeq;
      this.register(c);
      metrics.wsConnects.inc();
      const disabledAt = this.disabledAt.get(c.userId);
      if (disabledAt !== undefined && disabledAt >= authStartedAt)
        return this.close(c, CloseCode.USER_DISABLED);

      let replay: LogEvent[] = [];
      let resume: ConnectedPayload['resume'];
      let resync: { reason: string } | undefined;
      let position = upto;
      // The cursor CONNECTED carries: where this connection's stream starts (replay frames follow it).
      let connectedSeq = upto;
      if (since !== undefined) {
        const r = await this.deps.source.resume(c.userId, since, upto, this.deps.events.replayMax);
        if (r.ok) {
          replay = r.events;
          resume = { requested: true, ok: true, replayed: replay.length };
          position = Math.max(r.sinceSeq, upto);
          connectedSeq = r.sinceSeq;
        } else {
          resync = { reason: r.reason };
          resume = { requested: true, ok: false, replayed: 0 };
        }
      }
      const count = await this.unreadCountOf(c.userId);
      if (c.state === 'closing') return;

      const connected: ConnectedPayload = {
        userID: c.userId,
        connectionId: c.id,
        message: 'WebSocket connected successfully',
        timestamp: Math.floor(this.now() / 1000),
        cursor: this.cursor(connectedSeq),
        heartbeatIntervalMs: realtime.heartbeatIntervalMs,
        ...(resume && { resume }),
      };
      this.send(c, encodeFrame(FrameType.CONNECTED, connected, undefined, this.now()));
      if (resync)
        this.send(
          c,
          encodeFrame(
            FrameType.RESYNC,
            { reason: resync.reason, cursor: this.cursor(upto) },
            this.cursor(upto),
            this.now(),
          ),
        );
      if (!(await this.sendReplay(c, replay))) return;
      this.send(c, encodeFrame(FrameType.UNREAD_COUNT, { count }, undefined, this.now()));
      // Go live: flush what arrived meanwhile, skipping anything the client already has.
      c.lastSeq = position;
      c.state = 'live';
      for (const p of c.pending) this.deliver(c, p.seq, p.frame);
      c.pending = [];
      c.pendingBytes = 0;
      if (c.countStale) this.background(this.refreshCounts(new Set([c.userId])), 'unread count refresh');
    } catch (err) {
      this.deps.logger.error({ err, connectionId: c.id }, 'connection setup failed');
      this.close(c, CloseCode.INTERNAL_ERROR);
    }
  }

  /**
   * A connecting user's unread count. Connections set up in the same event-loop turn (a reconnect
   * storm) share one query instead of one each.
   */
  private unreadCountOf(userId: number): Promise<number> {
    let batch = this.countBatch;
    if (!batch) {
      const ids = new Set<number>();
      const counts = new Promise<Map<number, number>>((resolve, reject) =>
        setImmediate(() => {
          if (this.countBatch === batch) this.countBatch = undefined;
          try {
            this.deps.source.unreadCounts([...ids]).then(resolve, reject);
          } catch (err) {
            reject(err);
          }
        }),
      );
      batch = this.countBatch = { ids, counts };
    }
    batch.ids.add(userId);
    return batch.counts.then((m) => m.get(userId) ?? 0);
  }

  /**
   * Writes the replay as MESSAGE_BATCH frames of at most `batchSize` events and about half the send
   * queue bound in bytes, waiting for the socket to drain between batches: a long backlog costs bounded
   * memory however slow the client. Resolves false when the connection closed meanwhile.
   */
  private async sendReplay(c: Connection, events: LogEvent[]): Promise<boolean> {
    const maxEvents = this.deps.events.batchSize;
    const maxBytes = Math.floor(this.deps.realtime.sendQueueBytes / 2);
    let i = 0;
    while (i < events.length) {
      const inner: string[] = [];
      let bytes = 0;
      let last = events[i] as LogEvent;
      while (i < events.length && inner.length < maxEvents && (inner.length === 0 || bytes < maxBytes)) {
        last = events[i++] as LogEvent;
        const frame = spliceFrame(
          last.type,
          last.dataJson,
          Math.floor(last.createdAt / 1000),
          this.cursor(last.seq),
        );
        inner.push(frame);
        bytes += frame.length;
      }
      if (!(await this.drained(c, maxBytes))) return false;
      this.send(
        c,
        `{"type":"${FrameType.MESSAGE_BATCH}","data":{"messages":[${inner.join(',')}]},"timestamp":${Math.floor(this.now() / 1000)},"cursor":${JSON.stringify(this.cursor(last.seq))}}`,
      );
    }
    return c.state !== 'closing';
  }

  /** Resolves true once the socket's unsent bytes are at most `below`; false if it closes or stalls. */
  private drained(c: Connection, below: number): Promise<boolean> {
    if (c.state === 'closing') return Promise.resolve(false);
    if (c.socket.bufferedAmount <= below) return Promise.resolve(true);
    const socket = (c.socket as unknown as { _socket?: NodeJS.EventEmitter })._socket;
    return new Promise((resolve) => {
      const started = this.now();
      const check = () => {
        try {
          if (c.state === 'closing') finish(false);
          else if (c.socket.bufferedAmount <= below) finish(true);
          else if (this.now() - started > this.deps.realtime.heartbeatTimeoutMs) {
            this.slowConsumer(c);
            finish(false);
          }
        } catch (err) {
          this.failed(c, err);
          finish(false);
        }
      };
      // 'drain' is the prompt signal; the slow poll covers buffers that never crossed the high-water mark.
      const poll = setInterval(check, 50);
      socket?.on('drain', check);
      c.socket.once('close', check);
      const finish = (ok: boolean) => {
        clearInterval(poll);
        socket?.off('drain', check);
        c.socket.off('close', check);
        resolve(ok);
      };
    });
  }

  private register(c: Connection): void {
    this.connections.set(c.id, c);
    let set = this.byUser.get(c.userId);
    if (!set) {
      this.byUser.set(c.userId, (set = new Set()));
      this.deps.onPresenceChange?.(c.userId, true);
    }
    set.add(c);
    this.deps.metrics.wsConnections.set(this.connections.size);
  }

  /** Removes exactly this connection; a user's other connections stay (seed defects 2 and 3). */
  private unregister(c: Connection, code: number): void {
    if (!this.connections.delete(c.id)) return;
    c.state = 'closing';
    const set = this.byUser.get(c.userId);
    set?.delete(c);
    if (set?.size === 0) {
      this.byUser.delete(c.userId);
      this.deps.onPresenceChange?.(c.userId, false);
    }
    this.deps.metrics.wsConnections.set(this.connections.size);
    // A peer that never echoed our close frame shows up as 1006: count the code we sent instead.
    this.deps.metrics.wsDisconnects.inc({ code: String(c.closeCode ?? code) });
  }

  // ---- fan-out ---------------------------------------------------------------------------------

  private onBus(m: BusMessage): void {
    this.deps.metrics.busMessages.inc({ type: m.type });
    if (m.type === 'events') {
      if (m.head > this.tailSeq) this.wake();
    } else if (m.type === 'user-disabled') {
      this.disabledAt.delete(m.userId);
      this.disabledAt.set(m.userId, performance.now());
      this.closeUser(m.userId, CloseCode.USER_DISABLED);
    }
  }

  /** Reads the log after `tailSeq` until caught up. Single-flight: a wake-up during a read re-runs it. */
  async pump(): Promise<void> {
    if (this.stopped) return;
    if (this.pumping) {
      this.dirty = true;
      return;
    }
    this.pumping = true;
    try {
      do {
        this.dirty = false;
        for (;;) {
          const events = await this.deps.source.readAfter(this.tailSeq, READ_BATCH);
          if (events.length === 0 || this.stopped) break;
          const started = performance.now();
          const affected = this.dispatch(events);
          this.deps.metrics.fanoutDuration.observe((performance.now() - started) / 1000);
          if (affected.size > 0) await this.refreshCounts(affected);
          if (events.length < READ_BATCH) break;
        }
      } while (this.dirty && !this.stopped);
      if (this.readFailing) this.deps.logger.info('event log readable again; delivery resumed');
      this.readFailing = false;
    } catch (err) {
      // The store is unreachable: keep tailSeq; the next wake-up or poll retries from the same place.
      if (!this.readFailing)
        this.deps.logger.warn({ err: { message: messageOf(err) } }, 'event log read failed');
      this.readFailing = true;
    } finally {
      this.pumping = false;
    }
  }

  /**
   * Starts the tail read. Right after a large fan-out, requests have likely queued up behind it, and
   * they finish over the next few turns (authentication and the commit take several): then the read
   * waits a few milliseconds, so that their events are read and dispatched together and their frames
   * leave in one write per socket — under a sustained broadcast load, fewer syscalls for a delay small
   * beside the fan-out itself. Otherwise it reads at once.
   */
  private wake(): void {
    if (performance.now() >= this.busyUntil) {
      this.background(this.pump(), 'event log read');
      return;
    }
    if (this.wakePending) return;
    this.wakePending = true;
    setTimeout(() => {
      this.wakePending = false;
      this.background(this.pump(), 'event log read');
    }, BATCH_WINDOW_MS);
  }

  /** Hands each event to the connections it concerns; returns the users whose unread count changed. */
  private dispatch(events: LogEvent[]): Set<number> {
    const affected = new Set<number>();
    let everyone = false;
    let sent = 0;
    // Cork (one write per socket per turn) only when another frame may follow for the same socket in
    // this turn — more events, or an unread count after this one. A lone broadcast leaves at once.
    const coalesce = events.length > 1 || COUNT_TYPES.has((events[0] as LogEvent).type);
    for (const ev of events) {
      // One string per event, whatever the number of recipients, framed once (not per socket).
      const frame = new WireFrame(
        spliceFrame(ev.type, ev.dataJson, Math.floor(ev.createdAt / 1000), this.cursor(ev.seq)),
      );
      if (ev.userId === null) {
        for (const c of this.connections.values()) sent += this.deliver(c, ev.seq, frame, coalesce);
        if (COUNT_TYPES.has(ev.type)) everyone = true;
      } else {
        const set = this.byUser.get(ev.userId);
        if (set) {
          for (const c of set) sent += this.deliver(c, ev.seq, frame, coalesce);
          if (COUNT_TYPES.has(ev.type)) affected.add(ev.userId);
        }
      }
      this.tailSeq = ev.seq;
    }
    this.deps.metrics.framesSent.inc(sent);
    if (!coalesce && sent >= LARGE_FANOUT) this.busyUntil = performance.now() + BUSY_MS;
    return everyone ? new Set(this.byUser.keys()) : affected;
  }

  /** Returns 1 when the frame was written. */
  private deliver(c: Connection, seq: number, frame: string | WireFrame, coalesce = true): number {
    if (c.state === 'replaying') {
      c.pending.push({ seq, frame });
      c.pendingBytes += frame.length;
      if (c.pendingBytes > this.deps.realtime.sendQueueBytes) this.slowConsumer(c);
      return 0;
    }
    if (c.state !== 'live' || seq <= c.lastSeq) return 0;
    c.lastSeq = seq;
    return this.send(c, frame, coalesce) ? 1 : 0;
  }

  /** Pushes UNREAD_COUNT to the given users' connections, one query for all of them. */
  private async refreshCounts(userIds: Set<number>): Promise<void> {
    const counts = await this.deps.source.unreadCounts([...userIds]);
    const frames = new Map<number, string>();
    const ts = this.now();
    for (const [userId, count] of counts) {
      const set = this.byUser.get(userId);
      if (!set) continue;
      let frame = frames.get(count);
      if (frame === undefined)
        frames.set(count, (frame = encodeFrame(FrameType.UNREAD_COUNT, { count }, undefined, ts)));
      for (const c of set) {
        if (c.state === 'live') this.send(c, frame);
        else if (c.state === 'replaying') c.countStale = true;
      }
    }
  }

  /**
   * Writes a frame, coalescing writes to one socket within this tick into one syscall (cork until the
   * next tick; `coalesce: false` when the caller knows nothing else follows, so the write need not
   * wait for the rest of the fan-out). A connection whose unsent bytes exceed the bound is closed as a
   * slow consumer.
   *
   * Only bytes left unsent by earlier turns count: what this turn corked is not the client's fault, and
   * one frame larger than the bound still goes to a socket with nothing queued (else that client would
   * be closed, reconnect, and be closed again for ever).
   */
  private send(c: Connection, frame: string | WireFrame, coalesce = true): boolean {
    if (c.state === 'closing') {
      this.deps.metrics.framesDropped.inc();
      return false;
    }
    const ws = c.socket;
    const backlog = c.corkedBacklog >= 0 ? c.corkedBacklog : ws.bufferedAmount;
    if (backlog > 0 && backlog + frame.length > this.deps.realtime.sendQueueBytes) {
      this.slowConsumer(c);
      this.deps.metrics.framesDropped.inc();
      return false;
    }
    // A failing write closes this connection alone; the fan-out goes on to the others.
    try {
      if (coalesce && c.corkedBacklog < 0) this.cork(c, backlog);
      if (typeof frame === 'string') ws.send(frame);
      // The frame built once goes out as is: nothing per socket but the write (as Socket.IO broadcasts do).
      else if (this.rawFrames && ws.readyState === OPEN)
        (ws as unknown as RawSender)._sender.sendFrame([frame.wire]);
      else ws.send(frame.text, TEXT);
    } catch (err) {
      this.failed(c, err);
      return false;
    }
    return true;
  }

  private cork(c: Connection, backlog: number): void {
    const socket = (c.socket as unknown as { _socket?: { cork(): void } })._socket;
    if (!socket) return;
    if (this.corked.length === 0) process.nextTick(() => this.uncorkAll());
    c.corkedBacklog = backlog;
    this.corked.push(c);
    socket.cork();
  }

  private uncorkAll(): void {
    const corked = this.corked;
    this.corked = [];
    for (const c of corked) {
      c.corkedBacklog = -1;
      // Inline rather than served(): no closure per socket on the fan-out path.
      try {
        (c.socket as unknown as { _socket?: { uncork(): void } })._socket?.uncork();
      } catch (err) {
        this.failed(c, err);
      }
    }
    if (corked.length >= LARGE_FANOUT) this.busyUntil = performance.now() + BUSY_MS;
  }

  private slowConsumer(c: Connection): void {
    if (c.state === 'closing') return;
    this.deps.metrics.slowConsumers.inc();
    this.close(c, CloseCode.SLOW_CONSUMER);
  }

  // ---- inbound frames ----------------------------------------------------------------------------

  private onFrame(c: Connection, raw: Buffer, isBinary: boolean): void {
    const now = this.now();
    c.lastSeen = now;
    if (c.state === 'closing') return;
    if (isBinary) return this.close(c, CloseCode.UNSUPPORTED_DATA);
    // The answer to a heartbeat of ours is free: a short interval must not push clients over the limit.
    let msg: Inbound | undefined;
    if (c.repliesOwed > 0 && raw.length <= SMALL_FRAME) {
      msg = parseInbound(raw);
      if (msg.ok && msg.type === InboundType.HEARTBEAT_REPLY) {
        c.repliesOwed--;
        return;
      }
    }
    if (!c.limiter.take(now)) {
      if (++c.rateViolations >= MAX_STRIKES) return this.close(c, CloseCode.RATE_LIMITED);
      if (c.state === 'live')
        this.send(
          c,
          encodeFrame(
            FrameType.ERROR,
            { code: FrameErrorCode.RATE_LIMITED, message: 'too many frames; slow down' },
            undefined,
            now,
          ),
        );
      return;
    }
    // Bounded before it is parsed (size of data, nesting): see codec.ts.
    msg ??= parseInbound(raw);
    if (!msg.ok) {
      if (++c.invalidFrames >= MAX_STRIKES) return this.close(c, CloseCode.PROTOCOL_ERROR);
      if (c.state === 'live')
        this.send(c, encodeFrame(FrameType.ERROR, { code: msg.code, message: msg.message }, undefined, now));
      return;
    }
    // Nothing may precede CONNECTED: a client pinging during setup gets its reply from the heartbeat.
    if (msg.type === InboundType.HEARTBEAT && c.state === 'live') {
      this.send(c, encodeFrame(FrameType.HEARTBEAT_REPLY, { pong: 'ping' }, undefined, now));
    }
    // HEARTBEAT_REPLY needs nothing more: receiving it already refreshed lastSeen.
  }

  // ---- heartbeat, expiry, closing ----------------------------------------------------------------

  /** The one timer: heartbeats due, silent connections, expired credentials, stuck closes. */
  private sweep(): void {
    const now = this.now();
    const { heartbeatIntervalMs, heartbeatTimeoutMs } = this.deps.realtime;
    // Oldest first (re-inserted on each message): stop at the first one still remembered.
    for (const [userId, at] of this.disabledAt) {
      if (performance.now() - at < DISABLED_MEMORY_MS) break;
      this.disabledAt.delete(userId);
    }
    // The common heartbeat is framed once per tick and shared by every connection caught up to the tail.
    let heartbeat: WireFrame | undefined;
    const budget = Math.ceil(this.connections.size / this.sweepSlices);
    for (let i = 0; i < budget; i++) {
      this.sweepCursor ??= this.connections.values();
      const next = this.sweepCursor.next();
      if (next.done) {
        this.sweepCursor = undefined; // the round is over; the next tick starts another
        break;
      }
      const c = next.value;
      // One connection's failure closes it alone (1011); the round goes on to the others.
      try {
        if (c.state === 'closing') {
          if (now - c.closingSince > CLOSE_GRACE_MS) c.socket.terminate();
          continue;
        }
        if (now - c.lastSeen > heartbeatTimeoutMs) {
          this.close(c, CloseCode.HEARTBEAT_TIMEOUT);
          continue;
        }
        if (c.exp * 1000 <= now) {
          this.close(c, CloseCode.TOKEN_EXPIRED);
          continue;
        }
        if (now >= c.nextHeartbeatAt && c.state === 'live') {
          c.nextHeartbeatAt = now + heartbeatIntervalMs;
          // The heartbeat carries the position the connection is caught up to, so idle clients' cursors
          // advance too.
          const frame =
            c.lastSeq > this.tailSeq
              ? encodeFrame(FrameType.HEARTBEAT, { ping: 'pong' }, this.cursor(c.lastSeq), now)
              : (heartbeat ??= new WireFrame(
                  encodeFrame(FrameType.HEARTBEAT, { ping: 'pong' }, this.cursor(this.tailSeq), now),
                ));
          this.send(c, frame);
          c.socket.ping();
          c.repliesOwed = Math.min(c.repliesOwed + 1, 2);
        }
      } catch (err) {
        this.failed(c, err);
      }
    }
  }

  private close(c: Connection, spec: CloseSpec): void {
    if (c.state === 'closing') return;
    c.state = 'closing';
    c.closingSince = this.now();
    c.closeCode = spec.code;
    c.pending = [];
    try {
      c.socket.close(spec.code, spec.reason);
    } catch {
      c.socket.terminate();
    }
  }

  closeUser(userId: number, spec: CloseSpec): void {
    for (const c of this.byUser.get(userId) ?? []) this.close(c, spec);
  }

  /** After a bus gap: a user-disabled sent meanwhile never arrived here, so ask the store. */
  private async recheckDisabled(): Promise<void> {
    const ask = this.deps.disabledAmong;
    if (!ask || this.byUser.size === 0) return;
    try {
      const disabled = await ask([...this.byUser.keys()]);
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

  /** Closes every connection with `spec` and resolves when all are gone or `drainMs` has passed. */
  async closeAll(spec: CloseSpec, drainMs: number): Promise<void> {
    for (const c of this.connections.values()) this.close(c, spec);
    const deadline = this.now() + drainMs;
    while (this.connections.size > 0 && this.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    for (const c of this.connections.values()) c.socket.terminate();
    // Terminated sockets unregister on their 'close' event, a moment later.
    for (let i = 0; i < 50 && this.connections.size > 0; i++) await new Promise((r) => setTimeout(r, 10));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.sweepTimer);
    clearInterval(this.pollTimer);
    for (const u of this.unsubscribe) u();
    this.unsubscribe = [];
  }

  // ---- failure containment (STYLE 19: errors stay with the client that caused them) ----------------

  /** Runs `fn` on behalf of connection `c`: a throw is logged and closes `c` alone, with 1011. */
  private served(c: Connection, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.failed(c, err);
    }
  }

  /** A bug met while serving `c`: logged with the connection id (never its credentials); `c` closes 1011. */
  private failed(c: Connection, err: unknown): void {
    try {
      this.deps.logger.error({ err, connectionId: c.id, userId: c.userId }, 'connection handler failed');
      this.close(c, CloseCode.INTERNAL_ERROR);
    } catch {
      c.socket.terminate();
    }
  }

  /** Runs a timer's or the bus's callback: a throw is logged, and the next call runs as usual. */
  private guarded(what: string, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.deps.logger.error({ err }, `${what} failed`);
    }
  }

  /** A promise nobody awaits: a rejection is logged, never left unhandled. */
  private background(p: Promise<unknown>, what: string): void {
    p.catch((err: unknown) => this.deps.logger.error({ err }, `${what} failed`));
  }

  // ---- presence ----------------------------------------------------------------------------------

  async onlineUserIds(): Promise<number[]> {
    return [...this.byUser.keys()];
  }

  async isOnline(userId: number): Promise<boolean> {
    return this.byUser.has(userId);
  }

  /** Local user ids, synchronously (for the cluster presence heartbeat). */
  localUserIds(): number[] {
    return [...this.byUser.keys()];
  }
}
