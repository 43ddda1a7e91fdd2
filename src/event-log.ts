/**
 * The event log as the realtime hub reads it: the contract between messages/ (which writes the log and
 * reads it from the store) and realtime/ (which delivers it). Neither folder imports the other; both
 * import this, as the server and the SDK both import protocol.ts.
 */
import type { ResyncReason } from './protocol.ts';

/** One durable event: a row of the log. */
export interface LogEvent {
  seq: number;
  /** The user it is for; null: every user (unless `recipients` lists them). */
  userId: number | null;
  /** A send to listed users: its recipients (one event for all of them). */
  recipients?: readonly number[];
  type: string;
  /** The message a NEW_MESSAGE names: its data is read from the message (EventLogReader.messageData). */
  messageId?: number;
  /**
   * The frame's data as JSON text, ready to splice into a frame without re-serialising; undefined for a
   * NEW_MESSAGE until its message has been read.
   */
  dataJson: string | undefined;
  /** Unix milliseconds of the commit. */
  createdAt: number;
}

/** Where a replay stands: after `seq`; `floor` bounds the user's direct messages to look at. */
export interface ReplayFrom {
  seq: number;
  floor: number;
}

/** A size known for an event of a replay: its seq and about how many characters its frame carries. */
export interface EventSize {
  seq: number;
  chars: number;
}

/** `sizes`, when present, is what replaySizes would answer for the first page (read in the same statement). */
export type ResumeStart =
  { ok: true; from: ReplayFrom; count: number; sizes?: EventSize[] } | { ok: false; reason: ResyncReason };

/** One page of a replay: its events, or `expired` when a prune removed part of the range meanwhile. */
export type ReplayPage = { expired: false; events: LogEvent[] } | { expired: true };

/** What the hub reads: the tail (live delivery), a user's missed events (resume) and unread counts. */
export interface EventLogReader {
  epoch(): Promise<string>;
  cursorFor(epoch: string, seq: number): string;
  head(): Promise<number>;
  /** Events after `afterSeq`, oldest first, recipients listed; NEW_MESSAGE data not read yet. */
  readAfter(afterSeq: number, limit: number): Promise<LogEvent[]>;
  /** NEW_MESSAGE data (JSON text) of these messages; a message that no longer exists is absent. */
  messageData(messageIds: readonly number[]): Promise<Map<number, string>>;
  /**
   * Where a resume from `cursor` starts, and how many events it has up to `uptoSeq` (counted up to
   * `max` + 1: more is RESYNC too_many), with the sizes of the first `pageLimit` when it can read them
   * at once. Throws AppError INVALID_CURSOR when `cursor` is not a cursor.
   */
  startResume(
    userId: number,
    cursor: string,
    uptoSeq: number,
    max: number,
    pageLimit: number,
  ): Promise<ResumeStart>;
  /** Approximate sizes (characters) of the user's next `limit` events after `from`, up to `uptoSeq`. */
  replaySizes(userId: number, from: ReplayFrom, uptoSeq: number, limit: number): Promise<EventSize[]>;
  /** The user's events after `from` through `throughSeq` (at most `limit`), data read. */
  replayPage(userId: number, from: ReplayFrom, throughSeq: number, limit: number): Promise<ReplayPage>;
  unreadCounts(userIds: readonly number[]): Promise<Map<number, number>>;
  /**
   * The tail read dispatched `events` (data read), the first after `afterSeq`: a reader that keeps the
   * newest events to answer resumes from memory takes them here.
   */
  remember?(afterSeq: number, events: readonly LogEvent[]): void;
  /** Start-up, before the tail read starts after `head`: reads the newest events up to it (bounded). */
  prime?(head: number): Promise<void>;
}
