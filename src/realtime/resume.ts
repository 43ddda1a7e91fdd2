/**
 * Attaching a connection: registration, CONNECTED, the replay of what the client missed, then live.
 *
 * Resume without a gap or a duplicate rests on one invariant: a connection is registered (in state
 * `replaying`) in the same synchronous step as reading the tail position, `upto`. Events ≤ upto were
 * dispatched before the connection existed, so only the replay carries them: the replay covers
 * (since, upto]. Events > upto reach it through dispatch only, and wait in the connection's pending list
 * until the replay is written; going live flushes them in order, and `lastSeq` (= liveFrom) drops any
 * at or below what the client already has. So each event is sent once: by replay if ≤ upto, live if not.
 *
 * The replay is read in pages by seq, each fetched only after the previous one has left the process,
 * and each page's bytes are reserved from the node's ReplayBudget first and given back once they have
 * left: replay memory is bounded per connection (one page read at a time; the last one may still be
 * leaving while the connection goes live) and per node (the budget). If the pending list outgrows its bound meanwhile, it
 * is dropped and the replay reads on from the log up to the tail of that moment (the target moves), so
 * a slow replay under heavy traffic neither holds unbounded memory nor loses or drops anything.
 *
 * The positions (log seqs):
 * - `upto`: the tail position at registration — the seam between replay and live;
 * - `since`: where the client's cursor says it is (when it resumes);
 * - `streamStart`: the cursor CONNECTED carries: since when the replay follows, else upto;
 * - `target`: how far the replay reads: upto, or a later tail after the pending list overflowed;
 * - `liveFrom`: lastSeq when going live: max(since, target) after a replay, else upto.
 */
import type { Clock } from '../clock.ts';
import type { Config } from '../config.ts';
import type { EventLogReader, EventSize, LogEvent, ReplayFrom } from '../event-log.ts';
import { CloseCode, FrameType, type ConnectedPayload } from '../protocol.ts';
import { encodeFrame, spliceFrame } from './codec.ts';
import type { Connection } from './connection.ts';
import type { Containment } from './containment.ts';
import type { DisabledUsers } from './disabled-users.ts';
import type { Fanout } from './fanout.ts';
import type { Registry } from './registry.ts';
import type { ReplayBudget } from './replay-budget.ts';
import type { SocketWriter } from './socket-writer.ts';

export interface ResumeDeps {
  source: Pick<EventLogReader, 'startResume' | 'replaySizes' | 'replayPage'>;
  /** The node's replay memory, shared by all connections. */
  budget: ReplayBudget;
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
  /** Where the replay starts; absent when there is nothing to replay (no cursor, or RESYNC). */
  from?: ReplayFrom;
  /** The first page's sizes, when the start read them (the replay then does not ask again). */
  sizes?: EventSize[];
  streamStart: number;
  resume?: ConnectedPayload['resume'];
  resync?: { reason: string };
}

const noop = (): void => {};
/** Whether `c` is closing (a function: the state may change across an await, which TS cannot see). */
const closing = (c: Connection) => c.state === 'closing';
/** Bytes a replayed event may weigh for `chars` characters of text (UTF-16, escapes, the frame around it). */
const bytesOf = (chars: number) => 2 * chars + 256;

export class Resume {
  constructor(private readonly deps: ResumeDeps) {}

  /**
   * Registers `c`, sends CONNECTED, replays from `since`, then goes live. `authStartedAt` (monotonic)
   * is when the principal's user row was about to be read: a user-disabled heard since then may have
   * missed this connection, which was not registered yet. `release` lets the socket's held writes go
   * (upgrade.ts holds the 101 back so that it leaves with CONNECTED): called once the connection is
   * live, before waiting for a replay page to leave, and whatever happens.
   */
  async attach(
    c: Connection,
    since: string | undefined,
    authStartedAt: number,
    release: () => void = noop,
  ): Promise<void> {
    const { registry, fanout, writer, clock } = this.deps;
    // While the upgrade holds the socket's writes, nothing it holds was left unsent by an earlier turn:
    // the 101, CONNECTED and the first page count as this turn's writes, not as a backlog (a page of one
    // event larger than the send queue would otherwise close the client at every attempt to resume).
    if (release !== noop) {
      c.corked(0);
      const held = release;
      release = () => {
        c.uncorked();
        held();
      };
    }
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
      if (plan.resync) this.sendResync(c, plan.resync.reason, upto);
      // A resume with nothing to replay (the storm's common case) goes live at once, past its cursor.
      const from = plan.from && plan.resume?.replayed !== 0 ? plan.from : undefined;
      let liveFrom = from
        ? await this.replay(c, from, upto, plan.sizes, release)
        : Math.max(plan.streamStart, upto);
      // Live events held meanwhile may have been dropped past the bound after replay()'s last look (an
      // await lies between), or with no replay at all: read them from the log as well. A position
      // without a known floor takes 0, which finds every direct message (it reads more inbox rows).
      while (liveFrom !== undefined && c.overflowed)
        liveFrom = await this.replay(
          c,
          { seq: liveFrom, floor: plan.from?.floor ?? 0 },
          liveFrom,
          undefined,
          release,
          false,
        );
      if (liveFrom === undefined) return;
      // Go live, in the same synchronous step as the last overflow check: flush what arrived meanwhile,
      // in order; deliver() skips what the client already has.
      writer.send(c, encodeFrame(FrameType.UNREAD_COUNT, { count }, undefined, clock.now()));
      for (const p of c.startLive(liveFrom)) fanout.deliver(c, p.seq, p.frame);
      if (c.countStale)
        this.deps.containment.background(fanout.refreshCounts(new Set([c.userId])), 'unread count refresh');
    } catch (err) {
      this.deps.containment.failed(c, err, 'connection setup failed');
    } finally {
      release();
    }
  }

  /** What to replay for a client at `since` when the seam is at `upto`. */
  async plan(userId: number, since: string | undefined, upto: number): Promise<ReplayPlan> {
    if (since === undefined) return { streamStart: upto };
    const { replayMax, batchSize } = this.deps.events;
    const r = await this.deps.source.startResume(userId, since, upto, replayMax, batchSize);
    if (!r.ok)
      return {
        streamStart: upto,
        resume: { requested: true, ok: false, replayed: 0 },
        resync: { reason: r.reason },
      };
    return {
      from: r.from,
      ...(r.sizes && { sizes: r.sizes }),
      streamStart: r.from.seq,
      resume: { requested: true, ok: true, replayed: r.count },
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

  private sendResync(c: Connection, reason: string, at: number): void {
    const cursor = this.deps.cursor(at);
    this.deps.writer.send(
      c,
      encodeFrame(FrameType.RESYNC, { reason, cursor }, cursor, this.deps.clock.now()),
    );
  }

  /**
   * Replays from `from` up to the target (upto, moved on to the tail after an overflow: file comment).
   * Resolves to liveFrom, or undefined when the connection closed meanwhile. The caller checks for an
   * overflow again when it resumes, in the step in which it goes live. `firstSizes` are the first page's
   * sizes when already read (for the range from `from` to `upto`); `opening`: this replay's first page
   * is the connection's first write after CONNECTED (false when an earlier replay wrote pages).
   */
  private async replay(
    c: Connection,
    from: ReplayFrom,
    upto: number,
    firstSizes: EventSize[] | undefined,
    release: () => void,
    opening = true,
  ): Promise<number | undefined> {
    let pos = from;
    let target = Math.max(from.seq, upto);
    let known = firstSizes;
    let first = opening;
    for (;;) {
      while (pos.seq < target) {
        const next = await this.replayPage(c, pos, target, known, first, release);
        known = undefined;
        first = false;
        if (next === undefined) return undefined;
        if (next === 'expired') {
          // A prune cut the range meanwhile: the client reloads, as for a resume that came too late.
          if (c.overflowed) {
            c.clearOverflow();
            target = this.deps.tailSeq();
          }
          this.sendResync(c, 'expired', target);
          return target;
        }
        pos = next;
      }
      if (!c.overflowed) return target;
      c.clearOverflow();
      target = this.deps.tailSeq();
    }
  }

  /**
   * One page: as many of the next events as fit in half the send queue (at least one), their bytes
   * reserved from the node's budget before they are read and given back once written and drained.
   * The next page is read only once this one has left the process; after the last one the replay goes
   * on at once (its bytes stay reserved until they leave), so that CONNECTED, a short replay and the
   * unread count go out in one write. Resolves to the position after it, 'expired', or undefined when
   * the connection closed.
   */
  private async replayPage(
    c: Connection,
    pos: ReplayFrom,
    target: number,
    known: EventSize[] | undefined,
    first: boolean,
    release: () => void,
  ): Promise<ReplayFrom | 'expired' | undefined> {
    const { source, budget, writer } = this.deps;
    const maxEvents = this.deps.events.batchSize;
    const maxBytes = Math.floor(this.deps.realtime.sendQueueBytes / 2);
    // Between pages a turn of the event loop (SQLite answers synchronously: a storm's replays would run
    // as one chain of microtasks, holding off handshakes and heartbeats); the first needs none, as each
    // attach starts from its own upgrade. A page written before (the last of a replay the overflow then
    // extended) holds replay memory until it leaves: the socket's writes must not be held any longer.
    if (!first) {
      release();
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    const sizes = known ?? (await source.replaySizes(c.userId, pos, target, maxEvents));
    if (sizes.length === 0) return { seq: target, floor: pos.floor };
    let n = 0;
    let bytes = 0;
    while (n < sizes.length && (n === 0 || bytes + bytesOf(sizes[n]?.chars ?? 0) <= maxBytes))
      bytes += bytesOf((sizes[n++] as { chars: number }).chars);
    const through = (sizes[n - 1] as { seq: number }).seq;
    // Fewer sizes than asked, all taken: nothing more up to the target.
    const done = sizes.length < maxEvents && n === sizes.length;
    const giveBack = await budget.acquire(bytes);
    let releaseHere = true;
    try {
      if (c.state === 'closing') return undefined;
      const page = await source.replayPage(c.userId, pos, through, n);
      if (page.expired) return 'expired';
      const before = this.writeBatch(c, page.events, through);
      if (done) {
        // The connection goes live now: its live frames may keep the socket above `before` for long
        // without it being stuck, so a stall only gives the bytes back (the send queue bounds them).
        const left = writer.drained(c, before, false);
        releaseHere = false;
        this.deps.containment.background(
          left.then(() => giveBack()),
          'replay memory release',
        );
      } else {
        // The page must leave before the next is read: nothing may hold the socket's writes now.
        release();
        if (!(await writer.drained(c, before)) || closing(c)) return undefined;
      }
    } finally {
      if (releaseHere) giveBack();
    }
    return { seq: done ? target : through, floor: pos.floor };
  }

  /**
   * Writes one page as a MESSAGE_BATCH whose cursor is `through`; returns the bytes the socket held
   * before it (once back to them, the page has left the process: FIFO).
   */
  private writeBatch(c: Connection, events: LogEvent[], through: number): number {
    const { writer, cursor } = this.deps;
    const inner: string[] = [];
    for (const e of events) {
      // A message deleted meanwhile (it cannot be while its event exists: expiry.ts keeps it) is skipped.
      if (e.dataJson === undefined) continue;
      inner.push(spliceFrame(e.type, e.dataJson, Math.floor(e.createdAt / 1000), cursor(e.seq)));
    }
    const ts = Math.floor(this.deps.clock.now() / 1000);
    const before = c.socket.bufferedAmount;
    writer.send(
      c,
      `{"type":"${FrameType.MESSAGE_BATCH}","data":{"messages":[${inner.join(',')}]},"timestamp":${ts},"cursor":${JSON.stringify(cursor(through))}}`,
    );
    return before;
  }
}
