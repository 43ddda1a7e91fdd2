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
 * The replay is read in pages by seq (replay-page.ts), each fetched only after the previous one has
 * left the process, its bytes reserved from the node's ReplayBudget first. If the pending list outgrows
 * its bound meanwhile, it is dropped and the replay reads on from the log up to the tail of that moment
 * (the target moves), so a slow replay under heavy traffic neither holds unbounded memory nor loses or
 * drops anything.
 *
 * The positions (log seqs):
 * - `upto`: the tail position at registration — the seam between replay and live;
 * - `since`: where the client's cursor says it is (when it resumes);
 * - `streamStart`: the cursor CONNECTED carries: since when the replay follows, else upto;
 * - `target`: how far the replay reads: upto, or a later tail after the pending list overflowed;
 * - `liveFrom`: lastSeq when going live: max(since, target) after a replay, else upto.
 */
import type { Config } from '../config.ts';
import type { EventLogReader, EventSize, ReplayFrom } from '../event-log.ts';
import { CloseCode, FrameType, type ConnectedPayload } from '../protocol.ts';
import { encodeFrame } from './codec.ts';
import type { Connection } from './connection.ts';
import type { DisabledUsers } from './disabled-users.ts';
import type { Fanout } from './fanout.ts';
import type { Registry } from './registry.ts';
import { replayPage, type PageDeps } from './replay-page.ts';

export interface ResumeDeps extends PageDeps {
  source: PageDeps['source'] & Pick<EventLogReader, 'startResume'>;
  registry: Registry;
  /** The tail reader's position: every event up to it has been dispatched. */
  tailSeq: () => number;
  fanout: Fanout;
  disabled: DisabledUsers;
  realtime: PageDeps['realtime'] & Pick<Config['realtime'], 'heartbeatIntervalMs'>;
  events: PageDeps['events'] & Pick<Config['events'], 'replayMax'>;
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
    // What the upgrade holds back is this turn's writes, not a backlog (socket-writer.ts).
    if (release !== noop) release = writer.heldUntil(c, release);
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
        const next = await replayPage(this.deps, c, { pos, target, known, first }, release);
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
}
