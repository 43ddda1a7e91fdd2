/**
 * Fan-out: hands each event of the log to the local connections it concerns, and pushes unread counts.
 *
 * The hub reads unread counts through EventLogReader.unreadCounts (docs/decisions/0007): after events
 * that change them (COUNT_TYPES), one query for all affected users; for connections set up in the same
 * turn (a reconnect storm), one shared query instead of one each.
 *
 * This is the hot path (dispatch → deliver → send → cork): one string and one WireFrame per event,
 * whatever the number of recipients, and nothing allocated per delivery.
 */
import type { Clock } from '../clock.ts';
import type { Config } from '../config.ts';
import type { EventLogReader, LogEvent } from '../event-log.ts';
import type { Metrics } from '../metrics.ts';
import { FrameType } from '../protocol.ts';
import { WireFrame, encodeFrame, spliceFrame } from './codec.ts';
import type { Connection } from './connection.ts';
import type { Registry } from './registry.ts';
import type { SocketWriter } from './socket-writer.ts';

/** Event types after which the recipient's unread count is pushed. */
const COUNT_TYPES = new Set<string>([
  FrameType.NEW_MESSAGE,
  FrameType.MESSAGE_READ,
  FrameType.MESSAGE_DELETED,
]);

export interface FanoutDeps {
  registry: Registry;
  writer: SocketWriter;
  source: Pick<EventLogReader, 'unreadCounts' | 'messageData'>;
  /** The cursor of a log position. */
  cursor: (seq: number) => string;
  /** sendQueueBytes also bounds the events held for a connection while it replays. */
  realtime: Pick<Config['realtime'], 'sendQueueBytes'>;
  clock: Clock;
  metrics: Pick<Metrics, 'framesSent'>;
  /** Told how many frames a dispatch wrote at once (uncorked), for the tail reader's batching. */
  onFannedOut: (n: number) => void;
}

export class Fanout {
  /** Users whose unread count the next batched query fetches (see unreadCountOf). */
  private countBatch: { ids: Set<number>; counts: Promise<Map<number, number>> } | undefined;

  constructor(private readonly deps: FanoutDeps) {}

  /** True when the event concerns a connection on this node. */
  private reachesHere(ev: LogEvent): boolean {
    const { registry } = this.deps;
    if (ev.recipients) return ev.recipients.some((u) => registry.ofUser(u).size > 0);
    return ev.userId === null ? registry.size > 0 : registry.ofUser(ev.userId).size > 0;
  }

  /** Events whose message was gone when its data was read: never read again, skipped by dispatch. */
  private readonly gone = new WeakSet<LogEvent>();

  /**
   * The message ids this node must still read before dispatching `events`: NEW_MESSAGEs without their
   * data that reach a connection here and whose message was not found gone. Synchronous, so that the
   * tail reader checks it in the same step as the dispatch that follows (a connection may register at
   * any await before it).
   */
  missing(events: readonly LogEvent[]): Set<number> {
    const need = new Set<number>();
    for (const ev of events)
      if (
        ev.dataJson === undefined &&
        ev.messageId !== undefined &&
        !this.gone.has(ev) &&
        this.reachesHere(ev)
      )
        need.add(ev.messageId);
    return need;
  }

  /**
   * Reads the data of the NEW_MESSAGEs that reach a connection on this node, one query per batch — and
   * only those: a node with none of a send's recipients reads nothing of its content. Reads again while
   * something is missing (a connection registered during the read).
   */
  async resolve(events: LogEvent[]): Promise<void> {
    for (;;) {
      const need = this.missing(events);
      if (need.size === 0) return;
      const data = await this.deps.source.messageData([...need]);
      for (const ev of events) {
        if (ev.dataJson !== undefined || ev.messageId === undefined || !need.has(ev.messageId)) continue;
        const json = data.get(ev.messageId);
        if (json === undefined) this.gone.add(ev);
        else ev.dataJson = json;
      }
    }
  }

  /**
   * Hands each event to the connections it concerns; returns the users whose unread count changed. An
   * event whose data was not read (resolve: it reaches nobody here, or its message is gone) is skipped.
   */
  dispatch(events: LogEvent[]): Set<number> {
    const { registry, cursor } = this.deps;
    const affected = new Set<number>();
    let everyone = false;
    let sent = 0;
    // Cork (one write per socket per turn) only when another frame may follow for the same socket in
    // this turn — more events, or an unread count after this one. A lone broadcast leaves at once.
    const coalesce = events.length > 1 || COUNT_TYPES.has((events[0] as LogEvent).type);
    for (const ev of events) {
      if (ev.dataJson === undefined) continue;
      const counts = COUNT_TYPES.has(ev.type);
      // One string per event, whatever the number of recipients, framed once (not per socket).
      const frame = new WireFrame(
        spliceFrame(ev.type, ev.dataJson, Math.floor(ev.createdAt / 1000), cursor(ev.seq)),
      );
      if (ev.recipients) {
        for (const userId of ev.recipients) {
          const set = registry.ofUser(userId);
          if (set.size === 0) continue;
          for (const c of set) sent += this.deliver(c, ev.seq, frame, coalesce);
          if (counts) affected.add(userId);
        }
      } else if (ev.userId === null) {
        for (const c of registry.all()) sent += this.deliver(c, ev.seq, frame, coalesce);
        if (counts) everyone = true;
      } else {
        const set = registry.ofUser(ev.userId);
        if (set.size > 0) {
          for (const c of set) sent += this.deliver(c, ev.seq, frame, coalesce);
          if (counts) affected.add(ev.userId);
        }
      }
    }
    this.deps.metrics.framesSent.inc(sent);
    if (!coalesce) this.deps.onFannedOut(sent);
    return everyone ? new Set(registry.userIds()) : affected;
  }

  /**
   * One event to one connection; returns 1 when the frame was written. While the connection replays,
   * the event waits (up to the send queue bound; past it the replay reads it from the log instead);
   * once live, only seqs above lastSeq go out.
   */
  deliver(c: Connection, seq: number, frame: string | WireFrame, coalesce = true): number {
    if (c.state === 'replaying') {
      c.hold(seq, frame, this.deps.realtime.sendQueueBytes);
      return 0;
    }
    if (!c.accept(seq)) return 0;
    return this.deps.writer.send(c, frame, coalesce) ? 1 : 0;
  }

  /** Pushes UNREAD_COUNT to the given users' connections, one query for all of them. */
  async refreshCounts(userIds: Set<number>): Promise<void> {
    const counts = await this.deps.source.unreadCounts([...userIds]);
    // One pre-framed Buffer per distinct count, shared by every socket with that count: users' counts
    // differ (a send-to-all to full inboxes), and a string per socket would be encoded once per socket.
    const frames = new Map<number, WireFrame>();
    const ts = this.deps.clock.now();
    for (const [userId, count] of counts) {
      const set = this.deps.registry.ofUser(userId);
      if (set.size === 0) continue;
      let frame = frames.get(count);
      if (frame === undefined)
        frames.set(
          count,
          (frame = new WireFrame(encodeFrame(FrameType.UNREAD_COUNT, { count }, undefined, ts))),
        );
      for (const c of set) {
        if (c.state === 'live') this.deps.writer.send(c, frame);
        else if (c.state === 'replaying') c.markCountStale();
      }
    }
  }

  /**
   * A connecting user's unread count. Connections set up in the same event-loop turn (a reconnect
   * storm) share one query instead of one each.
   */
  unreadCountOf(userId: number): Promise<number> {
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
}
