/**
 * The inbox's rules (src/messages/inbox.service.ts) on a real in-memory SQLite: who may send what, that a
 * refused send stores nothing, recipients, retention, paging, read / read-all / delete and their events,
 * and unread counts. The HTTP suite (test/http/messages.test.ts) covers the same over the wire.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { SendInput } from '../../src/api-types.ts';
import type { Principal } from '../../src/auth/auth.service.ts';
import { isAppError, Errors, type AppError, type ErrorSpec } from '../../src/errors.ts';
import { createExpiryAnnouncer, EXPIRY_GRACE_MS } from '../../src/messages/expiry.ts';
import { createIdempotency } from '../../src/messages/idempotency.ts';
import { createInboxService, expiryOf, type InboxService } from '../../src/messages/inbox.service.ts';
import { WIDE_QUEUE_PER_SLOT } from '../../src/messages/wide-lane.ts';
import { openMessagesFixture, type MessagesFixture } from './fixture.ts';

const LIMITS = {
  maxTargets: 3,
  wideSendTargets: 2,
  wideSendConcurrency: 1,
  maxMessageBytes: 4096,
  maxSendBytes: 1_000_000,
  retentionSec: undefined,
};

const isError = (spec: ErrorSpec) => (e: unknown) => isAppError(e, spec);

describe('inbox service', () => {
  let f: MessagesFixture;
  let inbox: InboxService;
  let ann: Principal;

  beforeEach(async () => {
    f = await openMessagesFixture();
    const idempotency = createIdempotency({ db: f.db, ttlSec: 60, now: f.now });
    inbox = createInboxService({
      db: f.db,
      dialect: f.dialect,
      commit: f.commit,
      idempotency,
      limits: LIMITS,
      now: f.now,
    });
    ann = await f.addUser(11);
    await f.addUser(12);
  });
  afterEach(() => f.close());

  const direct = (targetIds: number[], more: Partial<SendInput> = {}): SendInput => ({
    title: 'hello',
    content: 'body',
    targetType: 'user',
    targetIds,
    ...more,
  });
  const toAll: SendInput = { title: 'all', content: 'body', targetType: 'all' };

  /** Asserts that `send` is refused with `spec` and that nothing at all was written. */
  async function refused(send: Promise<unknown>, spec: ErrorSpec): Promise<AppError> {
    const before = [await f.count('messages'), await f.count('inbox'), await f.count('events')];
    let caught: unknown;
    await assert.rejects(send, (e) => ((caught = e), isError(spec)(e)));
    assert.deepEqual([await f.count('messages'), await f.count('inbox'), await f.count('events')], before);
    return caught as AppError;
  }

  describe('send', () => {
    it('stores one message, an inbox row per distinct target and one event by reference, and wakes the hubs once', async () => {
      const r = await inbox.send(ann, direct([11, 12, 12]));
      assert.equal(r.recipients, 2);
      assert.equal(await f.count('messages'), 1);
      assert.equal(await f.count('inbox'), 2);
      assert.deepEqual(
        (await f.events()).map((e) => [e.userId, e.type, e.data['messageId']]),
        [['recipients', 'NEW_MESSAGE', r.messageId]],
        'one event for all the targets, naming the message',
      );
      assert.equal(f.published.length, 1);
    });

    it('stores a send to all once, with one event, and counts the enabled users as recipients', async () => {
      await f.addUser(13, { disabled: true });
      const r = await inbox.send(f.admin, toAll);
      assert.equal(r.recipients, 3, 'the admin, ann and ben; not the disabled user');
      assert.equal(await f.count('inbox'), 0);
      assert.deepEqual(
        (await f.events()).map((e) => [e.userId, e.type]),
        [[null, 'NEW_MESSAGE']],
      );
    });

    it('lets only admins send to all', async () => {
      await refused(inbox.send(ann, toAll), Errors.ADMIN_REQUIRED);
    });

    it('refuses a direct send without targets, or with more than maxTargets', async () => {
      await refused(inbox.send(ann, direct([])), Errors.VALIDATION_FAILED);
      await refused(inbox.send(ann, direct([11, 12, 1, 11])), Errors.TOO_MANY_TARGETS);
    });

    it('refuses an expiresAt that is not in the future', async () => {
      const past = new Date(f.now()).toISOString();
      await refused(inbox.send(ann, direct([12], { expiresAt: past })), Errors.VALIDATION_FAILED);
    });

    it('refuses unknown targets as a whole; only an admin learns which ids are unknown', async () => {
      const asUser = await refused(inbox.send(ann, direct([12, 99])), Errors.UNKNOWN_TARGETS);
      assert.equal(asUser.data, null);
      assert.doesNotMatch(asUser.message, /99/);
      const asAdmin = await refused(inbox.send(f.admin, direct([98, 12, 99])), Errors.UNKNOWN_TARGETS);
      assert.deepEqual(asAdmin.data, { unknownIds: [98, 99] });
    });

    it('caps the expiry at the retention', () => {
      const t = Date.parse('2026-01-01T00:00:00Z');
      assert.equal(expiryOf(undefined, t, undefined), null);
      assert.equal(expiryOf(undefined, t, 60), t + 60_000);
      assert.equal(expiryOf('2026-01-01T00:00:30Z', t, 60), t + 30_000);
      assert.equal(expiryOf('2026-01-01T00:05:00Z', t, 60), t + 60_000);
      assert.equal(expiryOf('2026-01-01T00:05:00Z', t, undefined), t + 300_000);
    });

    it('answers a retry with the same Idempotency-Key without a second message', async () => {
      const first = await inbox.send(ann, direct([12]), 'key-1');
      assert.deepEqual(await inbox.send(ann, direct([12]), 'key-1'), first);
      assert.equal(await f.count('messages'), 1);
      assert.equal(await f.count('events'), 1);
    });
  });

  describe('reads', () => {
    it('pages the inbox newest first, direct and send-to-all merged', async () => {
      const ids: number[] = [];
      for (let i = 0; i < 3; i++) ids.push((await inbox.send(f.admin, direct([11]))).messageId);
      ids.push((await inbox.send(f.admin, toAll)).messageId);
      const first = await inbox.list(11, { limit: 3 });
      assert.deepEqual(
        first.items.map((m) => m.id),
        [ids[3], ids[2], ids[1]],
      );
      assert.ok(first.nextCursor);
      const second = await inbox.list(11, { limit: 3, cursor: first.nextCursor });
      assert.deepEqual(
        second.items.map((m) => m.id),
        [ids[0]],
      );
      assert.equal(second.nextCursor, null);
    });

    it('refuses a cursor that is not one', async () => {
      await assert.rejects(inbox.list(11, { cursor: 'nope' }), isError(Errors.INVALID_CURSOR));
    });

    it('hides someone else’s message behind the same 404 as a missing one', async () => {
      const { messageId } = await inbox.send(f.admin, direct([12]));
      await assert.rejects(inbox.get(11, messageId), isError(Errors.NOT_FOUND));
      await assert.rejects(inbox.get(11, messageId + 100), isError(Errors.NOT_FOUND));
      await assert.rejects(inbox.markRead(11, messageId), isError(Errors.NOT_FOUND));
      await assert.rejects(inbox.remove(11, messageId), isError(Errors.NOT_FOUND));
      assert.equal((await inbox.get(12, messageId)).messageId, messageId);
    });
  });

  describe('read, read-all and delete', () => {
    it('marks a message read once: a second read changes nothing and appends no event', async () => {
      const { messageId } = await inbox.send(f.admin, direct([11]));
      const first = await inbox.markRead(11, messageId);
      const events = await f.count('events');
      f.clock.t += 5000;
      assert.deepEqual(await inbox.markRead(11, messageId), first);
      assert.equal(await f.count('events'), events);
      assert.equal((await inbox.get(11, messageId)).isRead, true);
    });

    it('reads all unread messages, direct and to all, in one event', async () => {
      const a = (await inbox.send(f.admin, direct([11]))).messageId;
      const b = (await inbox.send(f.admin, toAll)).messageId;
      await inbox.send(f.admin, direct([12]));
      assert.equal(await inbox.unreadCount(11), 2);
      assert.deepEqual(await inbox.markAllRead(11), { count: 2, messageIds: [a, b] });
      assert.equal(await inbox.unreadCount(11), 0);
      assert.equal(await inbox.unreadCount(12), 2, 'ben still has his own and the one to all');
      const last = (await f.events()).at(-1);
      assert.deepEqual([last?.userId, last?.type, last?.data['messageIds']], [11, 'MESSAGE_READ', [a, b]]);
      assert.deepEqual(await inbox.markAllRead(11), { count: 0, messageIds: [] });
    });

    it('deletes a message for one user only', async () => {
      const { messageId } = await inbox.send(f.admin, toAll);
      assert.deepEqual(await inbox.remove(11, messageId), { messageId });
      await assert.rejects(inbox.get(11, messageId), isError(Errors.NOT_FOUND));
      assert.equal((await inbox.get(12, messageId)).messageId, messageId);
      assert.deepEqual(
        await inbox.unreadCounts([11, 12]),
        new Map([
          [11, 0],
          [12, 1],
        ]),
      );
      const last = (await f.events()).at(-1);
      assert.deepEqual([last?.userId, last?.type], [11, 'MESSAGE_DELETED']);
    });

    it('stops listing a message at its expiry, and counting it once the expiry is announced', async () => {
      const expiry = createExpiryAnnouncer({
        db: f.db,
        dialect: f.store.dialect,
        commit: f.commit,
        now: f.now,
      });
      const { messageId } = await inbox.send(
        f.admin,
        direct([11], { expiresAt: new Date(f.now() + 1000).toISOString() }),
      );
      assert.equal(await inbox.unreadCount(11), 1);
      f.clock.t += 1000;
      assert.deepEqual((await inbox.list(11, {})).items, []);
      await assert.rejects(inbox.get(11, messageId), isError(Errors.NOT_FOUND));
      await assert.rejects(inbox.markRead(11, messageId), isError(Errors.NOT_FOUND));
      assert.equal(await inbox.unreadCount(11), 1, 'counted until the announcement');
      f.clock.t += EXPIRY_GRACE_MS;
      assert.equal(await expiry.announce(), 1);
      assert.equal(await inbox.unreadCount(11), 0);
    });
  });
});

describe('inbox service: the wide lane', () => {
  let f: MessagesFixture;
  let inbox: InboxService;
  let ann: Principal;
  /** Transactions running now and at most, and a gate each waits at before it starts. */
  const tx = { running: 0, peak: 0, gate: Promise.resolve() };
  let open: () => void = () => {};

  beforeEach(async () => {
    f = await openMessagesFixture();
    tx.running = tx.peak = 0;
    tx.gate = new Promise<void>((r) => (open = r));
    inbox = createInboxService({
      db: f.db,
      dialect: f.dialect,
      commit: async (work) => {
        tx.running++;
        tx.peak = Math.max(tx.peak, tx.running);
        try {
          await tx.gate;
          return await f.commit(work);
        } finally {
          tx.running--;
        }
      },
      idempotency: createIdempotency({ db: f.db, ttlSec: 60, now: f.now }),
      limits: LIMITS,
      now: f.now,
    });
    ann = await f.addUser(11);
    await f.addUser(12);
    await f.addUser(13);
  });
  afterEach(() => f.close());

  const send = (targetIds: number[], gone?: () => AbortSignal) =>
    inbox.send(ann, { title: 't', content: 'c', targetType: 'user', targetIds }, undefined, gone);
  const turn = () => new Promise((r) => setImmediate(r));

  it('runs SKYPUSH_WIDE_SEND_CONCURRENCY wide sends at a time; narrow sends and sends to all pass them', async () => {
    const wide = [send([11, 12, 13]), send([11, 12, 13]), send([11, 12, 13])];
    await turn();
    assert.equal(tx.running, 1, 'one wide send in its transaction, two waiting for their turn');
    // Two targets is not wide (wideSendTargets: 2); a repeated id does not make a send wide.
    const narrow = [
      send([11]),
      send([11, 12]),
      send([11, 11, 12]),
      inbox.send(f.admin, { title: 'a', content: 'c', targetType: 'all' }),
    ];
    await turn();
    assert.equal(tx.running, 5, 'the narrow ones and the send to all did not queue');
    open();
    const done = await Promise.all([...wide, ...narrow]);
    assert.deepEqual(
      done.map((r) => r.recipients),
      [3, 3, 3, 1, 2, 2, 4],
    );
    assert.equal(await f.count('inbox'), 3 * 3 + 1 + 2 + 2);
  });

  it('drops a waiting wide send whose client hung up, and refuses past the queue bound with 503 WIDE_SENDS_BUSY', async () => {
    const first = send([11, 12, 13]);
    const ac = new AbortController();
    const abandoned = send([11, 12, 13], () => ac.signal);
    const queued = Array.from({ length: WIDE_QUEUE_PER_SLOT - 1 }, () => send([11, 12, 13]));
    await turn();
    await assert.rejects(send([11, 12, 13]), (e: AppError) => {
      assert.ok(isError(Errors.WIDE_SENDS_BUSY)(e));
      assert.match(String(e.headers?.['retry-after']), /^\d+$/);
      return true;
    });
    ac.abort(new Error('client gone'));
    await assert.rejects(abandoned, /client gone/);
    open();
    await Promise.all([first, ...queued]);
    assert.equal(tx.peak, 1, 'never two wide sends at once');
    assert.equal(
      await f.count('messages'),
      WIDE_QUEUE_PER_SLOT,
      'the abandoned and the refused send stored nothing',
    );
  });
});
