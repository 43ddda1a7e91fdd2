/**
 * The read side of the event log, as the hub needs it: the tail read that drives live delivery, resume
 * for a reconnecting client, and retention. The hub sees only this interface (realtime/ never imports
 * store/); realtime/ holds how replay and live delivery meet without a gap or a duplicate.
 */
import type { Kysely } from 'kysely';
import { AppError, Errors } from '../errors.ts';
import type { EventLogReader, LogEvent } from '../event-log.ts';
import type { DB } from '../store/schema.ts';
import { decodeEventCursor, encodeEventCursor } from './cursor.ts';
import * as log from './event-log.repository.ts';

/** The event log as the app reads it: the hub's EventLogReader, plus what upgrade and housekeeping use. */
export interface EventLogStore extends EventLogReader {
  /** Parses a cursor without touching the database (to reject a malformed one before upgrade). */
  checkCursor(cursor: string): void;
  /** Deletes events older than the retention, at most `batches` × `batchSize` rows per call. */
  prune(retentionSec: number, batches?: number, batchSize?: number): Promise<number>;
  /** The epoch was rotated (history-guard.ts): cursors of the cached one are foreign from now on. */
  adoptEpoch(epoch: string): void;
}

const toLogEvent = (r: log.EventRow): LogEvent => ({
  seq: Number(r.seq),
  userId: r.user_id === null ? null : Number(r.user_id),
  type: r.type,
  dataJson: r.data,
  createdAt: Number(r.created_at),
});

export function createEventLogReader(deps: {
  db: Kysely<DB>;
  unreadCounts: (userIds: readonly number[]) => Promise<Map<number, number>>;
  now?: () => number;
}): EventLogStore {
  const { db } = deps;
  const now = deps.now ?? Date.now;
  let epoch: string | undefined;

  const reader: EventLogStore = {
    async epoch() {
      epoch ??= await log.getMeta(db, 'epoch');
      if (epoch === undefined) throw new Error('database has no epoch: run migrations first');
      return epoch;
    },
    cursorFor: encodeEventCursor,
    head: () => log.headSeq(db),
    async readAfter(afterSeq, limit) {
      return (await log.readAfter(db, afterSeq, limit)).map(toLogEvent);
    },
    checkCursor(cursor) {
      if (decodeEventCursor(cursor) === undefined)
        throw new AppError(Errors.INVALID_CURSOR, 'since is not a valid cursor');
    },
    async resume(userId, cursor, uptoSeq, max) {
      const pos = decodeEventCursor(cursor);
      if (!pos) throw new AppError(Errors.INVALID_CURSOR, 'since is not a valid cursor');
      if (pos.epoch !== (await reader.epoch())) return { ok: false, reason: 'foreign' };
      // Up to the hub's tail the position is known to exist; past it, the log may still be ahead.
      if (pos.seq > uptoSeq && pos.seq > (await log.headSeq(db))) return { ok: false, reason: 'future' };
      const rows = await log.readForUser(db, userId, pos.seq, uptoSeq, max + 1);
      // The prune mark is read after the rows: a prune that commits between the two reads moved the mark
      // (it is written in the prune's transaction), so rows it cut off are never taken for the whole gap.
      const prunedThrough = Number((await log.getMeta(db, 'pruned_through')) ?? 0);
      if (pos.seq < prunedThrough) return { ok: false, reason: 'expired' };
      if (rows.length > max) return { ok: false, reason: 'too_many' };
      return { ok: true, sinceSeq: pos.seq, events: rows.map(toLogEvent) };
    },
    unreadCounts: deps.unreadCounts,
    adoptEpoch(next) {
      epoch = next;
    },
    async prune(retentionSec, batches = 10, batchSize = 1000) {
      let total = 0;
      for (let i = 0; i < batches; i++) {
        const n = await log.pruneEvents(db, now() - retentionSec * 1000, batchSize);
        total += n;
        if (n < batchSize) break;
        // Yield between batches so a large backlog never blocks the event loop for long.
        await new Promise((r) => setImmediate(r));
      }
      return total;
    },
  };
  return reader;
}
