/**
 * The newest events of the log, as this node's tail read found them, kept so that a resume from a
 * recent cursor (the common case, and every client of a reconnect storm) is answered from memory
 * instead of three range reads per client (docs/decisions/0016-recent-events.md).
 *
 * Coverage: every event with `from < seq ≤ through` is held, in seq order. The tail read extends it
 * (reads are contiguous: each starts where the last one ended); a read that does not start inside the
 * covered range starts a new one. Evicting the oldest event (past `maxEvents` or `maxBytes`) moves
 * `from` up to it. A range the ring does not cover entirely, or an event whose data it does not have,
 * is answered by the database, so the ring changes how fast a resume is, never what it replays.
 *
 * The events are the tail read's own objects: the fan-out fills in their NEW_MESSAGE data before it
 * dispatches them, and an event is never changed after that (a message never changes after its send).
 */
import type { EventSize, LogEvent } from '../event-log.ts';

/** Bytes an event is counted for: its data (UTF-16), its recipient ids, and the object around them. */
const sizeOf = (e: LogEvent) => 2 * (e.dataJson?.length ?? 0) + 8 * (e.recipients?.length ?? 0) + 120;

/** Recipient lists longer than this are looked up through a Set (built once, when first asked). */
const SET_FROM = 32;

/** Characters a replayed event weighs, as replaySizes counts them: undefined while its data is unknown. */
const charsOf = (e: LogEvent): number | undefined => e.dataJson?.length;

export class RecentEvents {
  private events: LogEvent[] = [];
  /** Index of the oldest held event in `events` (evicted ones are dropped in chunks). */
  private first = 0;
  private from = 0;
  private through = -1;
  private bytes = 0;
  private readonly sets = new WeakMap<LogEvent, Set<number>>();

  constructor(
    private readonly maxEvents: number,
    private readonly maxBytes: number,
  ) {}

  /** The events a read after `afterSeq` returned (all events in (afterSeq, last returned seq]). */
  add(afterSeq: number, read: readonly LogEvent[]): void {
    if (this.maxEvents === 0) return;
    if (afterSeq < this.from || afterSeq > this.through) this.reset(afterSeq);
    for (const e of read) {
      // A read again of a covered range (a tail read dropped and redone) adds only what is new.
      if (e.seq <= this.through) continue;
      this.events.push(e);
      this.bytes += sizeOf(e);
      this.through = e.seq;
    }
    while (this.size > this.maxEvents || (this.size > 0 && this.bytes > this.maxBytes)) this.evictOne();
  }

  /** Forgets everything (the history was replaced): nothing is covered until the next read. */
  clear(): void {
    this.reset(0);
    this.through = -1;
  }

  get size(): number {
    return this.events.length - this.first;
  }

  /** Whether every event in (afterSeq, upto] is held. */
  covers(afterSeq: number, upto: number): boolean {
    return afterSeq >= this.from && upto <= this.through;
  }

  /**
   * How many of the user's events lie in (afterSeq, upto], counting up to `max` + 1, and the sizes of
   * the first `limit` of them; undefined when the ring cannot answer (not covered, or data unknown).
   */
  count(
    userId: number,
    afterSeq: number,
    upto: number,
    max: number,
    limit: number,
  ): { count: number; sizes: EventSize[] } | undefined {
    const events = this.forUser(userId, afterSeq, upto, max + 1);
    if (!events) return undefined;
    const sizes: EventSize[] = [];
    for (const e of events.slice(0, limit)) {
      const chars = charsOf(e);
      if (chars === undefined) return undefined;
      sizes.push({ seq: e.seq, chars });
    }
    return { count: events.length, sizes };
  }

  /** The user's first `limit` events in (afterSeq, upto], or undefined when not covered. */
  forUser(userId: number, afterSeq: number, upto: number, limit: number): LogEvent[] | undefined {
    if (!this.covers(afterSeq, upto)) return undefined;
    const out: LogEvent[] = [];
    for (let i = this.indexAfter(afterSeq); i < this.events.length && out.length < limit; i++) {
      const e = this.events[i] as LogEvent;
      if (e.seq > upto) break;
      if (this.isFor(e, userId)) out.push(e);
    }
    return out;
  }

  /** As a resume reads the log: the user's own events, everyone's, and sends that list the user. */
  private isFor(e: LogEvent, userId: number): boolean {
    const r = e.recipients;
    if (r === undefined) return e.userId === null || e.userId === userId;
    if (r.length <= SET_FROM) return r.includes(userId);
    let set = this.sets.get(e);
    if (!set) this.sets.set(e, (set = new Set(r)));
    return set.has(userId);
  }

  /** Index of the first held event with seq > afterSeq (binary search). */
  private indexAfter(afterSeq: number): number {
    let lo = this.first;
    let hi = this.events.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.events[mid] as LogEvent).seq <= afterSeq) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private evictOne(): void {
    const e = this.events[this.first] as LogEvent;
    this.first++;
    this.bytes -= sizeOf(e);
    this.from = e.seq;
    // Drop evicted slots in chunks, so that eviction stays O(1) per event on average.
    if (this.first >= 1024 && this.first * 2 >= this.events.length) {
      this.events = this.events.slice(this.first);
      this.first = 0;
    }
  }

  private reset(afterSeq: number): void {
    this.events = [];
    this.first = 0;
    this.bytes = 0;
    this.from = afterSeq;
    this.through = afterSeq;
  }
}
