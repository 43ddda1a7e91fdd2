/**
 * The read side of the event log, as the hub needs it: the tail read that drives live delivery, resume
 * for a reconnecting client, and retention. The hub sees only this interface (realtime/ never imports
 * store/); realtime/ holds how replay and live delivery meet without a gap or a duplicate.
 */
import type { Kysely } from 'kysely';
import { AppError, Errors } from '../errors.ts';
import type { EventLogReader, LogEvent } from '../event-log.ts';
import { prepared } from '../store/prepared.ts';
import { EPOCH_KEY, PRUNED_THROUGH_KEY } from '../store/migrate.ts';
import type { DB } from '../store/schema.ts';
import { decodeEventCursor, encodeEventCursor } from './cursor.ts';
import * as log from './event-log.repository.ts';
import { RecentEvents } from './recent-events.ts';
import { AppendedRows, MessageDataCache, SentRecipients } from './reader-caches.ts';
import { toPayload } from './message.mapping.ts';
import type { MessageRow } from './message.repository.ts';

/** The event log as the app reads it: the hub's EventLogReader, plus what upgrade and housekeeping use. */
export interface EventLogStore extends EventLogReader {
  /** Parses a cursor without touching the database (to reject a malformed one before upgrade). */
  checkCursor(cursor: string): void;
  /** Deletes events older than the retention, at most `batches` × `batchSize` rows per call. */
  prune(retentionSec: number, batches?: number, batchSize?: number): Promise<number>;
  /** The epoch was rotated (history-guard.ts): cursors of the cached one are foreign from now on. */
  adoptEpoch(epoch: string): void;
  /**
   * A send committed on this node: keeps its NEW_MESSAGE data and (a direct send) its recipients for the
   * tail read that is about to find its event, which then reads neither from the database.
   */
  noteSent(message: MessageRow, recipients: readonly number[] | null): void;
  /** Rows this node appended and committed (SQLite): the tail read takes them instead of reading them. */
  noteAppended(rows: readonly log.EventRow[]): void;
}

/** How long a prune mark read from the database serves ranges held in memory (markForHeld). */
const MARK_FRESH_MS = 1000;

const toLogEvent = (r: log.EventRow): LogEvent => {
  const byReference = r.message_id !== null && r.data === '';
  const ev: LogEvent = {
    seq: Number(r.seq),
    userId: r.user_id === null || Number(r.user_id) === log.RECIPIENTS ? null : Number(r.user_id),
    type: r.type,
    dataJson: byReference ? undefined : r.data,
    createdAt: Number(r.created_at),
  };
  if (r.message_id !== null) ev.messageId = Number(r.message_id);
  return ev;
};

// The tail read usually misses one message at a time: that statement is prepared (store/prepared.ts).
const messageById = prepared((db, p: { id: number }) =>
  db.selectFrom('messages').selectAll().where('id', '=', p.id),
);

/** Payload JSON of each message that still exists: from the cache, the rest in one query per 1,000. */
async function messageData(
  db: Kysely<DB>,
  ids: readonly number[],
  cache: MessageDataCache,
): Promise<Map<number, string>> {
  const out = new Map<number, string>();
  const missing: number[] = [];
  for (const id of ids) {
    const hit = cache.get(id);
    if (hit === undefined) missing.push(id);
    else out.set(id, hit);
  }
  for (let i = 0; i < missing.length; i += 1000) {
    const rows =
      missing.length === 1
        ? (await messageById(db, { id: missing[0] as number })).rows
        : await db
            .selectFrom('messages')
            .selectAll()
            .where('id', 'in', missing.slice(i, i + 1000))
            .execute();
    for (const m of rows) {
      const json = JSON.stringify(toPayload(m));
      cache.set(Number(m.id), json);
      out.set(Number(m.id), json);
    }
  }
  return out;
}

/**
 * The tail read: rows after `afterSeq`, with the recipients of each send to listed users (those this
 * node sent from `sent`, the others from the database).
 */
async function readAfter(
  db: Kysely<DB>,
  afterSeq: number,
  limit: number,
  sent: SentRecipients,
  appended?: AppendedRows,
): Promise<LogEvent[]> {
  const rows = appended?.take(afterSeq, limit) ?? (await log.readAfter(db, afterSeq, limit));
  const known = new Map<number, readonly number[]>();
  const unknown: number[] = [];
  for (const r of rows) {
    if (Number(r.user_id) !== log.RECIPIENTS || r.message_id === null) continue;
    const id = Number(r.message_id);
    const hint = sent.take(id);
    if (hint) known.set(id, hint);
    else unknown.push(id);
  }
  const read = unknown.length === 0 ? undefined : await log.recipientsOf(db, unknown);
  return rows.map((r) => {
    const ev = toLogEvent(r);
    if (Number(r.user_id) === log.RECIPIENTS) {
      const id = Number(r.message_id);
      ev.recipients = known.get(id) ?? read?.get(id) ?? [];
    }
    return ev;
  });
}

export function createEventLogReader(deps: {
  db: Kysely<DB>;
  unreadCounts: (userIds: readonly number[]) => Promise<Map<number, number>>;
  now?: () => number;
  /** Newest events kept for resumes (recent-events.ts): at most this many, and this many bytes. */
  recent?: { events: number; bytes: number };
}): EventLogStore {
  const { db } = deps;
  const now = deps.now ?? Date.now;
  let epoch: string | undefined;
  const cache = new MessageDataCache();
  const sent = new SentRecipients();
  const appended = new AppendedRows();
  const recent = new RecentEvents(deps.recent?.events ?? 0, deps.recent?.bytes ?? 0);
  /** The prune mark as last read (it only grows) and when: see markForHeld. */
  const mark = { through: 0, readAt: -Infinity };
  const prunedThrough = async () => {
    const through = Number((await log.getMeta(db, PRUNED_THROUGH_KEY)) ?? 0);
    mark.through = Math.max(mark.through, through);
    mark.readAt = now();
    return through;
  };
  /**
   * The mark for a range served from memory: the one read at most MARK_FRESH_MS ago (this node's own
   * prunes refresh it at once). Rows in memory are never pruned, so a mark that missed another node's
   * prune can only let a whole replay through where a fresh one would have answered RESYNC expired,
   * never lose an event; a range read from the database always reads the mark after its rows.
   */
  const markForHeld = async () => (now() - mark.readAt < MARK_FRESH_MS ? mark.through : prunedThrough());
  /** Fills in the NEW_MESSAGE data `events` lack (a message gone meanwhile stays without). */
  const withData = async (events: LogEvent[]): Promise<LogEvent[]> => {
    const ids = events.flatMap((e) => (e.dataJson === undefined && e.messageId ? [e.messageId] : []));
    const data = ids.length > 0 ? await messageData(db, ids, cache) : undefined;
    for (const e of events) if (e.dataJson === undefined) e.dataJson = data?.get(e.messageId as number);
    return events;
  };

  const reader: EventLogStore = {
    async epoch() {
      epoch ??= await log.getMeta(db, EPOCH_KEY);
      if (epoch === undefined) throw new Error('database has no epoch: run migrations first');
      return epoch;
    },
    cursorFor: encodeEventCursor,
    head: () => log.headSeq(db),
    readAfter: (afterSeq, limit) => readAfter(db, afterSeq, limit, sent, appended),
    messageData: (ids) => messageData(db, ids, cache),
    checkCursor(cursor) {
      if (decodeEventCursor(cursor) === undefined)
        throw new AppError(Errors.INVALID_CURSOR, 'since is not a valid cursor');
    },
    async startResume(userId, cursor, uptoSeq, max, pageLimit) {
      const pos = decodeEventCursor(cursor);
      if (!pos) throw new AppError(Errors.INVALID_CURSOR, 'since is not a valid cursor');
      if (pos.epoch !== (await reader.epoch())) return { ok: false, reason: 'foreign' };
      // Up to the hub's tail the position is known to exist; past it, the log may still be ahead.
      if (pos.seq > uptoSeq && pos.seq > (await log.headSeq(db))) return { ok: false, reason: 'future' };
      // From memory when the ring holds the whole range; floor 0 then (a later page that finds the ring
      // moved on reads the database with it: every direct message of the user, correct, only slower).
      const held = recent.count(userId, pos.seq, uptoSeq, max, pageLimit);
      const range = { userId, afterSeq: pos.seq, uptoSeq };
      const { floor, count, sizes } = held
        ? { floor: 0, ...held }
        : await log.resumeStart(db, range, max, pageLimit);
      // The prune mark is read after the rows: a prune that commits between the two reads moved the mark
      // (it is written in the prune's transaction), so rows it cut off are never taken for the whole gap.
      // A range held in memory cannot lose rows to a prune: the mark read within the second serves it.
      if (pos.seq < (await (held ? markForHeld() : prunedThrough()))) return { ok: false, reason: 'expired' };
      if (count > max) return { ok: false, reason: 'too_many' };
      return { ok: true, from: { seq: pos.seq, floor }, count, sizes };
    },
    async replaySizes(userId, from, uptoSeq, limit) {
      const held = recent.count(userId, from.seq, uptoSeq, limit, limit);
      if (held) return held.sizes;
      return log.sizesForUser(db, { userId, afterSeq: from.seq, uptoSeq, floor: from.floor }, limit);
    },
    async replayPage(userId, from, throughSeq, limit) {
      const held = recent.forUser(userId, from.seq, throughSeq, limit);
      const rows = held
        ? undefined
        : await log.readForUser(
            db,
            { userId, afterSeq: from.seq, uptoSeq: throughSeq, floor: from.floor },
            limit,
          );
      // As in startResume: the mark after the rows. A prune past `from` may have cut this page short.
      if (from.seq < (await (held ? markForHeld() : prunedThrough()))) return { expired: true };
      // The ring's events are shared and never changed: a copy where data must still be filled in.
      const events = held
        ? held.map((e) => (e.dataJson === undefined ? { ...e } : e))
        : (rows as log.EventRow[]).map(toLogEvent);
      await withData(events);
      return { expired: false, events };
    },
    unreadCounts: deps.unreadCounts,
    adoptEpoch(next) {
      epoch = next;
      recent.clear();
      appended.clear();
      Object.assign(mark, { through: 0, readAt: -Infinity });
    },
    remember: (afterSeq, events) => recent.add(afterSeq, events),
    async prime(head) {
      if (deps.recent === undefined || deps.recent.events === 0) return;
      const after = Math.max(0, head - deps.recent.events);
      const events = (await readAfter(db, after, deps.recent.events, sent)).filter((e) => e.seq <= head);
      recent.add(after, await withData(events));
    },
    noteSent(message, recipients) {
      cache.set(Number(message.id), JSON.stringify(toPayload(message)));
      if (recipients) sent.set(Number(message.id), recipients);
    },
    noteAppended: (rows) => appended.add(rows),
    async prune(retentionSec, batches = 10, batchSize = 1000) {
      let total = 0;
      for (let i = 0; i < batches; i++) {
        const n = await log.pruneEvents(db, now() - retentionSec * 1000, batchSize);
        total += n;
        if (n > 0) await prunedThrough();
        if (n < batchSize) break;
        // Yield between batches so a large backlog never blocks the event loop for long.
        await new Promise((r) => setImmediate(r));
      }
      return total;
    },
  };
  return reader;
}
