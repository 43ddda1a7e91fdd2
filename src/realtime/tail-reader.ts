/**
 * Live delivery is a tail read of the event log: a bus wake-up (or the periodic poll) reads every event
 * after `tailSeq`, in seq order, and hands each batch to the fan-out. As the log is commit-ordered,
 * nothing is skipped and a connection never sees seq go backwards. `tailSeq` moves forward only
 * synchronously with the dispatch of the events up to it (the resume seam depends on that: see
 * resume.ts); it moves back only when restart() finds the log's history replaced (history-guard.ts).
 */
import type { Logger } from 'pino';
import type { Clock } from '../clock.ts';
import type { Config } from '../config.ts';
import type { EventLogReader, LogEvent } from '../event-log.ts';
import { messageOf } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import type { Containment } from './containment.ts';

const READ_BATCH = 1000;
/**
 * Frames in one flush from which the next tail read is batched (see wake()), for how long after the
 * flush, and how long a wake-up then waits for the commits queued behind the fan-out.
 */
export const LARGE_FANOUT = 256;
const BUSY_MS = 10;
const BATCH_WINDOW_MS = 5;

export interface TailReaderDeps {
  source: Pick<EventLogReader, 'readAfter'>;
  events: Pick<Config['events'], 'pollIntervalMs'>;
  clock: Clock;
  metrics: Pick<Metrics, 'fanoutDuration'>;
  logger: Logger;
  containment: Containment;
  /** Reads what a batch's delivery on this node needs (message data). */
  resolve: (events: LogEvent[]) => Promise<void>;
  /** True while a batch still needs something read: checked in the same synchronous step as dispatch. */
  missing: (events: readonly LogEvent[]) => boolean;
  /** Delivers a batch; returns the users whose unread count changed. */
  dispatch: (events: LogEvent[]) => Set<number>;
  /** Told of each dispatched batch and the position before it (the reader's recent events). */
  remember?: (afterSeq: number, events: readonly LogEvent[]) => void;
  /** Pushes fresh unread counts to those users. */
  refreshCounts: (userIds: Set<number>) => Promise<void>;
}

export class TailReader {
  private seq = 0;
  private pumping = false;
  private dirty = false;
  private wakePending = false;
  /** Until when (monotonic) a wake-up waits for the end of the turn: see wake(). */
  private busyUntil = 0;
  /** The log could not be read on the last try (logged once per outage, not once per poll). */
  private readFailing = false;
  private stopped = false;
  /** Bumped by restart(): a read begun before it belongs to the replaced history. */
  private generation = 0;
  private pollTimer: NodeJS.Timeout | undefined;

  constructor(private readonly deps: TailReaderDeps) {}

  /** The position up to which every event has been dispatched on this node. */
  get tailSeq(): number {
    return this.seq;
  }

  /** Starts after `head` (the log's head at start-up) and polls as a fallback for lost wake-ups. */
  start(head: number): void {
    this.seq = head;
    this.pollTimer = setInterval(
      () => this.deps.containment.background(this.pump(), 'event log read'),
      this.deps.events.pollIntervalMs,
    );
    this.pollTimer.unref();
  }

  /** The log's history was replaced (hub.historyReplaced): continue after `head` of the new one. */
  restart(head: number): void {
    this.seq = head;
    this.generation++;
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.pollTimer);
  }

  /** The log's head moved to `head` (a bus message): read up to it. */
  headMoved(head: number): void {
    if (head > this.seq) this.wake();
  }

  /** After a fan-out of `n` frames: from LARGE_FANOUT on, the next wake-up waits (see wake()). */
  fannedOut(n: number): void {
    if (n >= LARGE_FANOUT) this.busyUntil = this.deps.clock.monotonic() + BUSY_MS;
  }

  /** Reads the log after `tailSeq` until caught up. Single-flight: a wake-up during a read re-runs it. */
  async pump(): Promise<void> {
    if (this.stopped) return;
    if (this.pumping) {
      this.dirty = true;
      return;
    }
    this.pumping = true;
    const { source, clock, metrics, logger } = this.deps;
    try {
      do {
        this.dirty = false;
        for (;;) {
          const generation = this.generation;
          const events = await source.readAfter(this.seq, READ_BATCH);
          if (this.restartedSince(generation) || events.length === 0 || this.stopped) break;
          // A connection that registers at any await here expects this batch live (its replay ends at
          // tailSeq): so the last "nothing missing" check and the dispatch are one synchronous step.
          let current = true;
          do {
            await this.deps.resolve(events);
            current = !this.stopped && !this.restartedSince(generation);
          } while (current && this.deps.missing(events));
          if (!current) break;
          // From here to the seq update, one synchronous step (the resume seam, resume.ts).
          const started = clock.monotonic();
          const affected = this.deps.dispatch(events);
          this.deps.remember?.(this.seq, events);
          this.seq = (events[events.length - 1] as LogEvent).seq;
          metrics.fanoutDuration.observe((clock.monotonic() - started) / 1000);
          if (affected.size > 0) await this.deps.refreshCounts(affected);
          if (events.length < READ_BATCH) break;
        }
      } while (this.dirty && !this.stopped);
      if (this.readFailing) logger.info('event log readable again; delivery resumed');
      this.readFailing = false;
    } catch (err) {
      // The store is unreachable: keep tailSeq; the next wake-up or poll retries from the same place.
      if (!this.readFailing) logger.warn({ err: { message: messageOf(err) } }, 'event log read failed');
      this.readFailing = true;
    } finally {
      this.pumping = false;
    }
  }

  /**
   * Whether restart() ran since `generation` was read: then what was read is dropped and the read
   * runs again from the new position (dirty).
   */
  private restartedSince(generation: number): boolean {
    if (generation === this.generation) return false;
    this.dirty = true;
    return true;
  }

  /**
   * Starts the tail read. Right after a large fan-out, requests have likely queued up behind it, and
   * they finish over the next few turns (authentication and the commit take several): then the read
   * waits a few milliseconds, so that their events are read and dispatched together and their frames
   * leave in one write per socket — under a sustained broadcast load, fewer syscalls for a delay small
   * beside the fan-out itself. Otherwise it reads at once.
   */
  private wake(): void {
    const { containment, clock } = this.deps;
    if (clock.monotonic() >= this.busyUntil) {
      containment.background(this.pump(), 'event log read');
      return;
    }
    if (this.wakePending) return;
    this.wakePending = true;
    setTimeout(() => {
      this.wakePending = false;
      containment.background(this.pump(), 'event log read');
    }, BATCH_WINDOW_MS);
  }
}
