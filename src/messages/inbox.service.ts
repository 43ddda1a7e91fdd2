/**
 * The inbox: the seed's SendMessage / MarkAsRead / DeleteMessage with its domain rules, and the reads
 * (list, one message, unread counts). Every change is one transaction through the event log writer, so
 * it appends its durable events and wakes the hubs after commit. Rows become API types here
 * (message.mapping.ts); the SQL is in inbox.repository.ts, message.repository.ts and, for the unread
 * counters every change keeps, counters.repository.ts.
 */
import type { Kysely } from 'kysely';
import type { InboxItem, InboxQuery, SendInput, SendResult } from '../api-types.ts';
import type { Principal } from '../auth/auth.service.ts';
import { AppError, Errors } from '../errors.ts';
import type { Dialect } from '../store/database.ts';
import type { DB } from '../store/schema.ts';
import { existingUserIds } from '../users/user.repository.ts';
import * as counters from './counters.repository.ts';
import { decodePageCursor, encodePageCursor } from './cursor.ts';
import type { CommitWithEvents, NewEvent } from './event-log-writer.ts';
import type { Idempotency, Remember } from './idempotency.ts';
import * as inbox from './inbox.repository.ts';
import { iso, toItem } from './message.mapping.ts';
import { insertMessage, type MessageRow, type NewMessageRow } from './message.repository.ts';
import { checkSendSize, type SendLimits } from './send-limits.ts';
import { wideLane } from './wide-lane.ts';

export interface InboxLimits extends SendLimits {
  /** SKYPUSH_MAX_TARGETS: targetIds one send may list. */
  maxTargets: number;
  /** SKYPUSH_WIDE_SEND_TARGETS: more distinct targets than this make a wide send. */
  wideSendTargets: number;
  /** SKYPUSH_WIDE_SEND_CONCURRENCY: wide sends running at once on this node. */
  wideSendConcurrency: number;
  /** SKYPUSH_MESSAGE_RETENTION: the longest a message lives; undefined to keep them. */
  retentionSec?: number | undefined;
}

export interface InboxDeps {
  db: Kysely<DB>;
  /** Counter updates lock rows on PostgreSQL (counters.repository.ts). */
  dialect: Dialect;
  commit: CommitWithEvents;
  idempotency: Idempotency;
  limits: InboxLimits;
  now: () => number;
  /** Told of each send once it has committed: the message and its recipients (null: to all). */
  sent?: ((message: MessageRow, recipients: readonly number[] | null) => void) | undefined;
}

/** The inbox as the routes (and the hub's unread counts) use it. */
export interface InboxService {
  /**
   * Stores a message and its events; with an Idempotency-Key, a retry gets the first answer. A wide
   * send waits for its turn in the node's wide lane; the signal `gone` returns (the client hung up) drops
   * it from there.
   */
  send(
    sender: Principal,
    input: SendInput,
    idempotencyKey?: string,
    gone?: () => AbortSignal,
  ): Promise<SendResult>;
  /** One page of the user's inbox, newest first. */
  list(userId: number, q: InboxQuery): Promise<{ items: InboxItem[]; nextCursor: string | null }>;
  get(userId: number, messageId: number): Promise<InboxItem>;
  unreadCount(userId: number): Promise<number>;
  /** Unread counts for many users in a constant number of queries (the hub's fan-out). */
  unreadCounts(userIds: readonly number[]): Promise<Map<number, number>>;
  markRead(userId: number, messageId: number): Promise<{ messageId: number; readAt: string }>;
  markAllRead(userId: number): Promise<{ count: number; messageIds: number[] }>;
  /** Deletes the message for this user only. */
  remove(userId: number, messageId: number): Promise<{ messageId: number }>;
}

/** Refuses a send that breaks a rule, before anything is read or written. */
export function checkSend(sender: Principal, input: SendInput, limits: InboxLimits, now: number): void {
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
    if (n > limits.maxTargets)
      throw new AppError(Errors.TOO_MANY_TARGETS, `at most ${limits.maxTargets} targetIds`);
  }
  const distinctTargets = input.targetType === 'user' ? new Set(input.targetIds).size : 0;
  checkSendSize(input, distinctTargets, limits);
  if (input.expiresAt && !(Date.parse(input.expiresAt) > now)) {
    throw new AppError(Errors.VALIDATION_FAILED, 'expiresAt must be a date-time in the future', {
      data: { field: '/expiresAt' },
    });
  }
}

/** The expiry a message gets: the one asked for, capped by the retention when there is one. */
export function expiryOf(asked: string | null | undefined, t: number, retentionSec?: number): number | null {
  const requested = asked ? Date.parse(asked) : null;
  if (retentionSec === undefined) return requested;
  const cap = t + retentionSec * 1000;
  return requested === null ? cap : Math.min(requested, cap);
}

/** Only admins (the platform) learn which ids are unknown: anyone else could map the user ids. */
async function unknownTargets(trx: Kysely<DB>, sender: Principal, targetIds: number[]): Promise<AppError> {
  if (sender.role !== 'admin') return new AppError(Errors.UNKNOWN_TARGETS);
  const found = await existingUserIds(trx, targetIds);
  const unknown = targetIds.filter((id) => !found.has(id));
  return new AppError(Errors.UNKNOWN_TARGETS, `unknown target user ids: ${unknown.slice(0, 20).join(', ')}`, {
    data: { unknownIds: unknown.slice(0, 1000) },
  });
}

/** Stores the message, its inbox rows and events, and (with a key) its answer, in one transaction. */
function sendOnce(
  deps: InboxDeps,
  sender: Principal,
  input: SendInput,
  remember: Remember<SendResult> | undefined,
): Promise<SendResult> {
  const targetIds = [...new Set(input.targetIds ?? [])];
  return deps.commit(async (trx, t) => {
    const recipients = input.targetType === 'all' ? await inbox.countAllRecipients(trx) : targetIds.length;
    const row: NewMessageRow = {
      title: input.title,
      content: input.content,
      message_type: input.messageType ?? 'notice',
      priority: input.priority ?? 1,
      sender_id: sender.userId,
      sender_name: sender.displayName,
      link_url: input.linkUrl ?? null,
      target_type: input.targetType,
      created_at: t,
      expires_at: expiryOf(input.expiresAt, t, deps.limits.retentionSec),
    };
    const messageId = await insertMessage(trx, deps.dialect, row);
    // One event by reference, whatever the number of targets (docs/decisions/0009).
    const events: NewEvent[] = [
      { newMessage: messageId, to: input.targetType === 'all' ? 'all' : 'recipients' },
    ];
    // Inbox rows are inserted for the targets that exist; fewer rows than targets means some do not,
    // and the whole transaction is rolled back.
    if (
      input.targetType === 'user' &&
      (await inbox.insertInboxRows(trx, messageId, targetIds, deps.dialect)) < targetIds.length
    )
      throw await unknownTargets(trx, sender, targetIds);
    await counters.countSend(trx, deps.dialect, { ...row, id: messageId }, targetIds, t);
    const result: SendResult = { messageId, targetType: input.targetType, recipients };
    await remember?.(trx, result, t);
    const sent = deps.sent;
    const committed =
      sent && (() => sent({ ...row, id: messageId }, input.targetType === 'all' ? null : targetIds));
    return { result, events, ...(committed && { committed }) };
  });
}

/** The visible message or the same 404 whether it is missing or someone else's. */
async function visible(trx: Kysely<DB>, userId: number, messageId: number, t: number) {
  const m = await inbox.findVisible(trx, userId, messageId, t);
  if (!m) throw new AppError(Errors.NOT_FOUND, 'message not found');
  return m;
}

async function list(deps: InboxDeps, userId: number, q: InboxQuery) {
  const beforeId = q.cursor === undefined ? undefined : decodePageCursor(q.cursor);
  if (q.cursor !== undefined && beforeId === undefined)
    throw new AppError(Errors.INVALID_CURSOR, undefined, { data: { field: '/cursor' } });
  const limit = Math.min(Math.max(q.limit ?? 20, 1), 100);
  const rows = await inbox.listInbox(deps.db, userId, {
    beforeId,
    limit: limit + 1,
    status: q.status ?? 'all',
    messageType: q.messageType,
    now: deps.now(),
  });
  const items = rows.slice(0, limit).map(toItem);
  const last = items.at(-1);
  return { items, nextCursor: rows.length > limit && last ? encodePageCursor(last.id) : null };
}

type Target = { id: number; target_type: string };

/**
 * Sets read_at or deleted_at on the user's messages whose expiry is not announced yet, and moves the
 * user's unread counter by what actually changed, in the caller's transaction. Returns those messages:
 * an announced one is gone for everyone, even where this transaction's clock still showed it.
 */
async function changeStates(
  deps: InboxDeps,
  trx: Kysely<DB>,
  userId: number,
  messages: readonly Target[],
  field: 'read_at' | 'deleted_at',
  t: number,
): Promise<Target[]> {
  const live = await counters.liveAmong(
    trx,
    deps.dialect,
    messages.map((m) => Number(m.id)),
  );
  const changing = messages.filter((m) => live.has(Number(m.id)));
  const change = await inbox.changeState(trx, userId, changing, field, t);
  await counters.addToUser(trx, userId, {
    unreadDirect: -change.directWereUnread,
    seenAll: change.toAllFirstSeen,
  });
  return changing;
}

/** Changes one visible message; the same 404 as `visible` when its expiry has been announced meanwhile. */
async function changeOne(
  deps: InboxDeps,
  trx: Kysely<DB>,
  userId: number,
  m: Target,
  field: 'read_at' | 'deleted_at',
  t: number,
) {
  if ((await changeStates(deps, trx, userId, [m], field, t)).length === 0)
    throw new AppError(Errors.NOT_FOUND, 'message not found');
}

function markRead(deps: InboxDeps, userId: number, messageId: number) {
  return deps.commit(async (trx, t) => {
    const m = await visible(trx, userId, messageId, t);
    if (m.read_at !== null) return { result: { messageId, readAt: iso(m.read_at) as string }, events: [] };
    await changeOne(deps, trx, userId, m, 'read_at', t);
    const readAt = iso(t) as string;
    return {
      result: { messageId, readAt },
      events: [{ userId, type: 'MESSAGE_READ', data: { messageId, messageIds: [messageId], readAt } }],
    };
  });
}

function markAllRead(deps: InboxDeps, userId: number) {
  return deps.commit(async (trx, t) => {
    const { direct, toAll } = await inbox.unreadIds(trx, userId, t);
    const unread = [
      ...direct.map((id) => ({ id, target_type: 'user' })),
      ...toAll.map((id) => ({ id, target_type: 'all' })),
    ];
    const changed = await changeStates(deps, trx, userId, unread, 'read_at', t);
    const ids = changed.map((m) => Number(m.id)).sort((a, b) => a - b);
    if (ids.length === 0) return { result: { count: 0, messageIds: [] as number[] }, events: [] };
    return {
      result: { count: ids.length, messageIds: ids },
      events: [{ userId, type: 'MESSAGE_READ', data: { messageIds: ids, readAt: iso(t) } }],
    };
  });
}

function remove(deps: InboxDeps, userId: number, messageId: number) {
  return deps.commit(async (trx, t) => {
    const m = await visible(trx, userId, messageId, t);
    await changeOne(deps, trx, userId, m, 'deleted_at', t);
    return { result: { messageId }, events: [{ userId, type: 'MESSAGE_DELETED', data: { messageId } }] };
  });
}

export function createInboxService(deps: InboxDeps): InboxService {
  const { db, now } = deps;
  const inLane = wideLane(deps.limits);
  return {
    async send(sender, input, idempotencyKey, gone) {
      checkSend(sender, input, deps.limits, now());
      return inLane(
        input,
        () =>
          deps.idempotency.once<SendResult>(sender.userId, idempotencyKey, input, (remember) =>
            sendOnce(deps, sender, input, remember),
          ),
        gone,
      );
    },
    list: (userId, q) => list(deps, userId, q),
    get: async (userId, messageId) => toItem(await visible(db, userId, messageId, now())),
    unreadCount: async (userId) => (await counters.unreadCounts(db, deps.dialect, [userId])).get(userId) ?? 0,
    unreadCounts: (userIds) => counters.unreadCounts(db, deps.dialect, userIds),
    markRead: (userId, messageId) => markRead(deps, userId, messageId),
    markAllRead: (userId) => markAllRead(deps, userId),
    remove: (userId, messageId) => remove(deps, userId, messageId),
  };
}
