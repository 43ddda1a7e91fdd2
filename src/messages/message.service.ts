/**
 * The message service: the seed's SendMessage / MarkAsRead / DeleteMessage / SendToAll with its domain
 * rules. Each change is one transaction that also appends its durable events to the event log; the bus
 * is told only after commit, so a failed transaction publishes nothing and a bus failure loses nothing.
 */
import { createHash } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { InboxItem, InboxQuery, SendInput, SendResult } from '../api-types.ts';
import type { Principal } from '../auth/auth.service.ts';
import type { Bus } from '../bus/bus.ts';
import { AppError, Errors } from '../errors.ts';
import type { MessagePayload } from '../protocol.ts';
import type { Dialect } from '../store/database.ts';
import type { DB } from '../store/schema.ts';
import { existingUserIds } from '../users/user.repository.ts';
import { decodePageCursor, encodePageCursor } from './cursor.ts';
import { EXPIRY_CURSOR_KEY } from '../store/migrate.ts';
import { appendEvents, getMeta, getMetaLocked, setMeta, type NewEvent } from './event-log.ts';
import * as repo from './message.repository.ts';
import { checkSendSize } from './send-limits.ts';

export type { InboxItem, SendInput, SendResult } from '../api-types.ts';
export type ListQuery = InboxQuery;

/** How long after its expiry a message is announced at the earliest (see announceExpired). */
const EXPIRY_GRACE_MS = 1000;
/** Events one announcing transaction writes at most (a message's holders are never split). */
const EXPIRY_EVENTS_MAX = 10_000;

/** `<expires_at>:<id>` in skypush_meta (seeded by the migrations with the time they first ran). */
function parseExpiryCursor(value: string | undefined): [number, number] {
  const [at, id] = (value ?? '0:0').split(':').map(Number);
  return [at ?? 0, id ?? 0];
}

const iso = (ms: number | null) => (ms === null ? null : new Date(Number(ms)).toISOString());

export function toPayload(m: repo.MessageRow): MessagePayload {
  return {
    messageId: Number(m.id),
    title: m.title,
    content: m.content,
    messageType: m.message_type,
    priority: m.priority,
    senderId: Number(m.sender_id),
    senderName: m.sender_name,
    linkUrl: m.link_url,
    targetType: m.target_type,
    createTime: iso(m.created_at) as string,
    expiresAt: iso(m.expires_at),
  };
}

function toItem(m: repo.InboxItemRow): InboxItem {
  const { messageId, ...rest } = toPayload(m);
  return { id: messageId, messageId, ...rest, isRead: m.read_at !== null, readAt: iso(m.read_at) };
}

/** Stable JSON of a request, for comparing idempotent retries. */
function requestHash(input: SendInput): string {
  const canonical = JSON.stringify(input, Object.keys(input).sort());
  return createHash('sha256').update(canonical).digest('hex');
}

export interface MessageServiceDeps {
  db: Kysely<DB>;
  dialect: Dialect;
  bus: Bus;
  nodeId: string;
  maxTargets: number;
  /** SKYPUSH_MAX_MESSAGE_BYTES and SKYPUSH_MAX_SEND_BYTES (see send-limits.ts). */
  maxMessageBytes: number;
  maxSendBytes: number;
  idempotencyTtlSec: number;
  /** SKYPUSH_MESSAGE_RETENTION: the longest a message lives; undefined to keep them. */
  retentionSec?: number | undefined;
  now?: () => number;
  /** Called with the number of messages each send stores (metrics). */
  onSent?: (targetType: 'user' | 'all') => void;
}

export type MessageService = ReturnType<typeof createMessageService>;

export function createMessageService(deps: MessageServiceDeps) {
  const { db, dialect, bus } = deps;
  const now = deps.now ?? Date.now;

  /** Runs `work` in a transaction that appends `events`, then wakes every hub. */
  async function commitWithEvents<T>(
    work: (trx: Kysely<DB>, t: number) => Promise<{ result: T; events: NewEvent[] }>,
  ): Promise<T> {
    let head = 0;
    const result = await db.transaction().execute(async (trx) => {
      const t = now();
      const out = await work(trx, t);
      head = await appendEvents(trx, dialect, out.events, t);
      return out.result;
    });
    if (head > 0) {
      // After commit. A publish failure is not the caller's failure: the hubs' periodic tail read and
      // clients' resume deliver the committed events anyway.
      await bus.publish({ type: 'events', origin: deps.nodeId, head }).catch(() => {});
    }
    return result;
  }

  /** The expiry a message gets: the one asked for, capped by the retention when there is one. */
  function expiryOf(asked: string | null | undefined, t: number): number | null {
    const requested = asked ? Date.parse(asked) : null;
    if (deps.retentionSec === undefined) return requested;
    const cap = t + deps.retentionSec * 1000;
    return requested === null ? cap : Math.min(requested, cap);
  }

  async function sendOnce(
    sender: Principal,
    input: SendInput,
    idempotencyKey: string | undefined,
    hash: string,
  ): Promise<SendResult> {
    const targetIds = [...new Set(input.targetIds ?? [])];
    return commitWithEvents(async (trx, t) => {
      let recipients = targetIds.length;
      if (input.targetType === 'all') {
        const r = await trx
          .selectFrom('users')
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .where('disabled', '=', 0)
          .executeTakeFirstOrThrow();
        recipients = Number(r.n);
      }
      const row: Omit<repo.MessageRow, 'id'> = {
        title: input.title,
        content: input.content,
        message_type: input.messageType ?? 'notice',
        priority: input.priority ?? 1,
        sender_id: sender.userId,
        sender_name: sender.displayName,
        link_url: input.linkUrl ?? null,
        target_type: input.targetType,
        created_at: t,
        expires_at: expiryOf(input.expiresAt, t),
      };
      const messageId = await repo.insertMessage(trx, row);
      const payload = toPayload({ ...row, id: messageId });
      const events: NewEvent[] =
        input.targetType === 'all'
          ? [{ userId: null, type: 'NEW_MESSAGE', data: payload }]
          : targetIds.map((userId) => ({ userId, type: 'NEW_MESSAGE', data: payload }));
      if (input.targetType === 'user') {
        // Inbox rows are inserted for the targets that exist; fewer rows than targets means some do
        // not, and the whole transaction is rolled back.
        const inserted = await repo.insertInboxRows(trx, messageId, targetIds);
        if (inserted < targetIds.length) {
          // Only admins (the platform) learn which ids are unknown: anyone else could map the user ids.
          if (sender.role !== 'admin') throw new AppError(Errors.UNKNOWN_TARGETS);
          const found = await existingUserIds(trx, targetIds);
          const unknown = targetIds.filter((id) => !found.has(id));
          throw new AppError(
            Errors.UNKNOWN_TARGETS,
            `unknown target user ids: ${unknown.slice(0, 20).join(', ')}`,
            { data: { unknownIds: unknown.slice(0, 1000) } },
          );
        }
      }
      const result: SendResult = { messageId, targetType: input.targetType, recipients };
      if (idempotencyKey !== undefined) {
        // A use of this key older than the TTL no longer counts, but may not be pruned yet.
        const expired = t - deps.idempotencyTtlSec * 1000;
        await repo.deleteIdempotencyBefore(trx, sender.userId, idempotencyKey, expired);
        await repo.insertIdempotency(trx, {
          sender_id: sender.userId,
          key: idempotencyKey,
          request_hash: hash,
          response: JSON.stringify(result),
          created_at: t,
        });
      }
      return { result, events };
    });
  }

  async function replay(senderId: number, key: string, hash: string): Promise<SendResult | undefined> {
    const prior = await repo.findIdempotency(db, senderId, key);
    if (!prior || Number(prior.created_at) < now() - deps.idempotencyTtlSec * 1000) return undefined;
    if (prior.request_hash !== hash) throw new AppError(Errors.IDEMPOTENCY_KEY_REUSED);
    return JSON.parse(prior.response) as SendResult;
  }

  /** Returns the visible message or throws the same 404 whether it is missing or someone else's. */
  async function visible(userId: number, messageId: number): Promise<repo.InboxItemRow> {
    const m = await repo.findVisible(db, userId, messageId, now());
    if (!m) throw new AppError(Errors.NOT_FOUND, 'message not found');
    return m;
  }

  return {
    async send(sender: Principal, input: SendInput, idempotencyKey?: string): Promise<SendResult> {
      if (input.targetType === 'all' && sender.role !== 'admin')
        throw new AppError(Errors.ADMIN_REQUIRED, 'only admins may send to all users');
      if (input.targetType === 'user') {
        const n = input.targetIds?.length ?? 0;
        if (n === 0)
          throw new AppError(
            Errors.VALIDATION_FAILED,
            'targetIds must list at least one user when targetType is "user"',
            { data: { field: '/targetIds' } },
          );
        if (n > deps.maxTargets)
          throw new AppError(Errors.TOO_MANY_TARGETS, `at most ${deps.maxTargets} targetIds`);
      }
      const distinctTargets = input.targetType === 'user' ? new Set(input.targetIds).size : 0;
      checkSendSize(input, distinctTargets, deps);
      if (input.expiresAt && !(Date.parse(input.expiresAt) > now())) {
        throw new AppError(Errors.VALIDATION_FAILED, 'expiresAt must be a date-time in the future', {
          data: { field: '/expiresAt' },
        });
      }
      const hash = idempotencyKey === undefined ? '' : requestHash(input);
      if (idempotencyKey !== undefined) {
        const prior = await replay(sender.userId, idempotencyKey, hash);
        if (prior) return prior;
      }
      try {
        const r = await sendOnce(sender, input, idempotencyKey, hash);
        deps.onSent?.(input.targetType);
        return r;
      } catch (e) {
        // A concurrent request with the same key committed first: answer with its result.
        if (idempotencyKey !== undefined && !(e instanceof AppError)) {
          const prior = await replay(sender.userId, idempotencyKey, hash);
          if (prior) return prior;
        }
        throw e;
      }
    },

    async list(userId: number, q: ListQuery): Promise<{ items: InboxItem[]; nextCursor: string | null }> {
      const beforeId = q.cursor === undefined ? undefined : decodePageCursor(q.cursor);
      if (q.cursor !== undefined && beforeId === undefined)
        throw new AppError(Errors.INVALID_CURSOR, undefined, { data: { field: '/cursor' } });
      const limit = Math.min(Math.max(q.limit ?? 20, 1), 100);
      const rows = await repo.listInbox(db, userId, {
        beforeId,
        limit: limit + 1,
        status: q.status ?? 'all',
        messageType: q.messageType,
        now: now(),
      });
      const items = rows.slice(0, limit).map(toItem);
      const last = items.at(-1);
      return { items, nextCursor: rows.length > limit && last ? encodePageCursor(last.id) : null };
    },

    async get(userId: number, messageId: number): Promise<InboxItem> {
      return toItem(await visible(userId, messageId));
    },

    async unreadCount(userId: number): Promise<number> {
      return (await repo.unreadCounts(db, [userId], now())).get(userId) ?? 0;
    },

    /** Unread counts for many users in a constant number of queries (the hub's fan-out). */
    unreadCounts: (userIds: readonly number[]) => repo.unreadCounts(db, userIds, now()),

    async markRead(userId: number, messageId: number): Promise<{ messageId: number; readAt: string }> {
      return commitWithEvents(async (trx, t) => {
        const m = await repo.findVisible(trx, userId, messageId, t);
        if (!m) throw new AppError(Errors.NOT_FOUND, 'message not found');
        if (m.read_at !== null)
          return { result: { messageId, readAt: iso(m.read_at) as string }, events: [] };
        await repo.upsertState(trx, userId, [messageId], 'read_at', t);
        const readAt = iso(t) as string;
        return {
          result: { messageId, readAt },
          events: [{ userId, type: 'MESSAGE_READ', data: { messageId, messageIds: [messageId], readAt } }],
        };
      });
    },

    async markAllRead(userId: number): Promise<{ count: number; messageIds: number[] }> {
      return commitWithEvents(async (trx, t) => {
        const { direct, toAll } = await repo.unreadIds(trx, userId, t);
        const ids = [...direct, ...toAll].sort((a, b) => a - b);
        if (ids.length === 0) return { result: { count: 0, messageIds: [] }, events: [] };
        await repo.upsertState(trx, userId, ids, 'read_at', t);
        return {
          result: { count: ids.length, messageIds: ids },
          events: [{ userId, type: 'MESSAGE_READ', data: { messageIds: ids, readAt: iso(t) } }],
        };
      });
    },

    async remove(userId: number, messageId: number): Promise<{ messageId: number }> {
      return commitWithEvents(async (trx, t) => {
        const m = await repo.findVisible(trx, userId, messageId, t);
        if (!m) throw new AppError(Errors.NOT_FOUND, 'message not found');
        await repo.upsertState(trx, userId, [messageId], 'deleted_at', t);
        return { result: { messageId }, events: [{ userId, type: 'MESSAGE_DELETED', data: { messageId } }] };
      });
    },

    /** An admin's SYSTEM_NOTIFY to everyone: one durable event, no inbox rows. */
    async broadcast(type: string, data: Record<string, unknown>): Promise<void> {
      await commitWithEvents(async () => ({ result: undefined, events: [{ userId: null, type, data }] }));
    },

    /**
     * Announces messages that have expired: each holder of a direct message, or everyone for a message
     * to all, gets a durable MESSAGE_DELETED `{messageId, reason: "expired"}` (their hub then pushes the
     * new unread count). Runs on every node; the position in skypush_meta, locked on PostgreSQL, makes
     * each expiry announced once. Only messages expired for EXPIRY_GRACE_MS are taken, so a send that
     * commits a moment after its (near) expiry is not passed over. Returns how many were announced.
     */
    async announceExpired(limit = 200, eventsMax = EXPIRY_EVENTS_MAX): Promise<number> {
      const due = now() - EXPIRY_GRACE_MS;
      // A cheap look first: on most ticks nothing has expired, and no transaction is opened.
      const [at, id] = parseExpiryCursor(await getMeta(db, EXPIRY_CURSOR_KEY));
      if ((await repo.expiredAfter(db, at, id, due, 1)).length === 0) return 0;
      return commitWithEvents(async (trx) => {
        const locked = await getMetaLocked(trx, dialect, EXPIRY_CURSOR_KEY);
        const [lockedAt, lockedId] = parseExpiryCursor(locked);
        const expired = await repo.expiredAfter(trx, lockedAt, lockedId, due, limit);
        const events: NewEvent[] = [];
        let done = 0;
        // Whole messages only, and about EXPIRY_EVENTS_MAX events per transaction: the rest next tick.
        for (const m of expired) {
          if (done > 0 && events.length >= eventsMax) break;
          const data = { messageId: Number(m.id), reason: 'expired' };
          if (m.target_type === 'all') events.push({ userId: null, type: 'MESSAGE_DELETED', data });
          else
            for (const userId of await repo.holders(trx, Number(m.id)))
              events.push({ userId, type: 'MESSAGE_DELETED', data });
          done++;
        }
        const last = expired[done - 1];
        if (last) await setMeta(trx, EXPIRY_CURSOR_KEY, `${Number(last.expires_at)}:${Number(last.id)}`);
        return { result: done, events };
      });
    },

    /**
     * Housekeeping: deletes up to `limit` messages whose expiry has been announced (their inbox rows go
     * with them); returns how many. Before the announcement an open page would still show them.
     */
    async purgeExpired(limit = 500): Promise<number> {
      const [at, id] = parseExpiryCursor(await getMeta(db, EXPIRY_CURSOR_KEY));
      return repo.deleteAnnounced(db, at, id, limit);
    },

    /** Housekeeping: forget idempotency keys past their lifetime. */
    pruneIdempotency: () => repo.pruneIdempotency(db, now() - deps.idempotencyTtlSec * 1000),
  };
}
