/**
 * Attaching a connection: registration, CONNECTED, the replay of what the client missed, then live.
 *
 * Resume without a gap or a duplicate rests on one invariant: a connection is registered (in state
 * `replaying`) in the same synchronous step as reading the tail position, `upto`. Events ≤ upto were
 * dispatched before the connection existed, so only the replay carries them: the replay query covers
 * (since, upto]. Events > upto reach it through dispatch only, and wait in the connection's pending list
 * until the replay is written; going live flushes them in order, and `lastSeq` (= liveFrom) drops any
 * at or below what the client already has. So each event is sent once: by replay if ≤ upto, live if not.
 *
 * The positions (log seqs):
 * - `upto`: the tail position at registration — the seam between replay and live;
 * - `since`: where the client's cursor says it is (when it resumes);
 * - `streamStart`: the cursor CONNECTED carries: since when the replay follows, else upto;
 * - `liveFrom`: lastSeq when going live: max(since, upto) after a replay, else upto.
 */
import type { Clock } from '../clock.ts';
import type { Config } from '../config.ts';
import type { EventLogReader, LogEvent } from '../event-log.ts';
import { CloseCode, FrameType, type ConnectedPayload } from '../protocol.ts';
import { encodeFrame, spliceFrame } from './codec.ts';
import type { Connection } from './connection.ts';
import type { Containment } from './containment.ts';
import type { DisabledUsers } from './disabled-users.ts';
import type { Fanout } from './fanout.ts';
import type { Registry } from './registry.ts';
import type { SocketWriter } from './socket-writer.ts';

export interface ResumeDeps {
  source: Pick<EventLogReader, 'resume'>;
  registry: Registry;
  /** The tail reader's position: every event up to it has been dispatched. */
  tailSeq: () => number;
  fanout: Fanout;
  writer: SocketWriter;
  disabled: DisabledUsers;
  containment: Containment;
  cursor: (seq: number) => string;
  realtime: Pick<Config['realtime'], 'heartbeatIntervalMs' | 'sendQueueBytes'>;
  events: Pick<Config['events'], 'replayMax' | 'batchSize'>;
  clock: Clock;
  /** Counted once a connection is registered. */
  onConnect: () => void;
}

/** What a connection receives before it goes live. */
export interface ReplayPlan {
  events: LogEvent[];
  streamStart: number;
  liveFrom: number;
  resume?: ConnectedPayload['resume'];
  resync?: { reason: string };
}

export class Resume {
  constructor(private readonly deps: ResumeDeps) {}

  /**
   * Registers `c`, sends CONNECTED, replays from `since`, then goes live. `authStartedAt` (monotonic)
   * is when the principal's user row was about to be read: a user-disabled heard since then may have
   * missed this connection, which was not registered yet.
   */
  async attach(c: Connection, since: string | undefined, authStartedAt: number): Promise<void> {
    const { registry, fanout, writer, clock } = this.deps;
    try {
      // The invariant (file comment): registration and reading the tail, in one synchronous step.
      const upto = this.deps.tailSeq();
      registry.register(c);
      this.deps.onConnect();
      if (this.deps.disabled.disabledSince(c.userId, authStartedAt))
        return c.close(CloseCode.USER_DISABLED, clock.monotonic());

      const plan = await this.plan(c.userId, since, upto);
      const count = await fanout.unreadCountOf(c.userId);
      if (c.state === 'closing') return;
      this.sendConnected(c, plan);
      if (plan.resync) {
        const cursor = this.deps.cursor(upto);
        writer.send(c, encodeFrame(FrameType.RESYNC, { ...plan.resync, cursor }, cursor, clock.now()));
      }
      if (!(await this.sendReplay(c, plan.events))) return;
      writer.send(c, encodeFrame(FrameType.UNREAD_COUNT, { count }, undefined, clock.now()));
      // Go live: flush what arrived meanwhile, in order; deliver() skips what the client already has.
      for (const p of c.startLive(plan.liveFrom)) fanout.deliver(c, p.seq, p.frame);
      if (c.countStale)
        this.deps.containment.background(fanout.refreshCounts(new Set([c.userId])), 'unread count refresh');
    } catch (err) {
      this.deps.containment.failed(c, err, 'connection setup failed');
    }
  }

  /** What to replay for a client at `since` when the seam is at `upto`. */
  async plan(userId: number, since: string | undefined, upto: number): Promise<ReplayPlan> {
    if (since === undefined) return { events: [], streamStart: upto, liveFrom: upto };
    const r = await this.deps.source.resume(userId, since, upto, this.deps.events.replayMax);
    if (!r.ok)
      return {
        events: [],
        streamStart: upto,
        liveFrom: upto,
        resume: { requested: true, ok: false, replayed: 0 },
        resync: { reason: r.reason },
      };
    return {
      events: r.events,
      streamStart: r.sinceSeq,
      liveFrom: Math.max(r.sinceSeq, upto),
      resume: { requested: true, ok: true, replayed: r.events.length },
    };
  }

  private sendConnected(c: Connection, plan: ReplayPlan): void {
    const now = this.deps.clock.now();
    const connected: ConnectedPayload = {
      userID: c.userId,
      connectionId: c.id,
      message: 'WebSocket connected successfully',
      timestamp: Math.floor(now / 1000),
      cursor: this.deps.cursor(plan.streamStart),
      heartbeatIntervalMs: this.deps.realtime.heartbeatIntervalMs,
      ...(plan.resume && { resume: plan.resume }),
    };
    this.deps.writer.send(c, encodeFrame(FrameType.CONNECTED, connected, undefined, now));
  }

  /**
   * Writes the replay as MESSAGE_BATCH frames of at most `batchSize` events and about half the send
   * queue bound in bytes, waiting for the socket to drain between batches: a long backlog costs bounded
   * memory however slow the client. Resolves false when the connection closed meanwhile.
   */
  private async sendReplay(c: Connection, events: LogEvent[]): Promise<boolean> {
    const { writer, cursor } = this.deps;
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
          cursor(last.seq),
        );
        inner.push(frame);
        bytes += frame.length;
      }
      if (!(await writer.drained(c, maxBytes))) return false;
      const ts = Math.floor(this.deps.clock.now() / 1000);
      writer.send(
        c,
        `{"type":"${FrameType.MESSAGE_BATCH}","data":{"messages":[${inner.join(',')}]},"timestamp":${ts},"cursor":${JSON.stringify(cursor(last.seq))}}`,
      );
    }
    return c.state !== 'closing';
  }
}
