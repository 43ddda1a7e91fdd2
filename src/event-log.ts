/**
 * The event log as the realtime hub reads it: the contract between messages/ (which writes the log and
 * reads it from the store) and realtime/ (which delivers it). Neither folder imports the other; both
 * import this, as the server and the SDK both import protocol.ts.
 */
import type { ResyncReason } from './protocol.ts';

/** One durable event: a row of the log. */
export interface LogEvent {
  seq: number;
  /** null: for every user. */
  userId: number | null;
  type: string;
  /** The frame's data as JSON text, ready to splice into a frame without re-serialising. */
  dataJson: string;
  /** Unix milliseconds of the commit. */
  createdAt: number;
}

export type ResumeResult =
  { ok: true; sinceSeq: number; events: LogEvent[] } | { ok: false; reason: ResyncReason };

/** What the hub reads: the tail (live delivery), a user's missed events (resume) and unread counts. */
export interface EventLogReader {
  epoch(): Promise<string>;
  cursorFor(epoch: string, seq: number): string;
  head(): Promise<number>;
  readAfter(afterSeq: number, limit: number): Promise<LogEvent[]>;
  /** Throws AppError INVALID_CURSOR when `cursor` is not a cursor at all. */
  resume(userId: number, cursor: string, uptoSeq: number, max: number): Promise<ResumeResult>;
  unreadCounts(userIds: readonly number[]): Promise<Map<number, number>>;
}
