/**
 * Expiry (src/messages/expiry.ts) on a real in-memory SQLite with a hand-moved clock: who is told about
 * an expired message, the grace before it, the per-call event cap that never splits a message, the
 * position that announces each expiry once, the purge of announced messages, and the timer's guards.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import {
  createExpiryAnnouncer,
  EXPIRY_GRACE_MS,
  startExpiryAnnouncer,
  type ExpiryAnnouncer,
} from '../../src/messages/expiry.ts';
import { changeState, insertInboxRows } from '../../src/messages/inbox.repository.ts';
import { insertMessage } from '../../src/messages/message.repository.ts';
import { openMessagesFixture, type MessagesFixture } from './fixture.ts';

describe('expiry announcer', () => {
  let f: MessagesFixture;
  let expiry: ExpiryAnnouncer;

  beforeEach(async () => {
    f = await openMessagesFixture();
    expiry = createExpiryAnnouncer({ db: f.db, dialect: f.store.dialect, commit: f.commit, now: f.now });
    for (const id of [11, 12, 13]) await f.addUser(id);
  });
  afterEach(() => f.close());

  /** Stores a message expiring `inMs` from now, direct to `to` or (without `to`) to all; returns its id. */
  async function store(inMs: number, to?: number[]): Promise<number> {
    const id = await insertMessage(f.db, f.dialect, {
      title: 't',
      content: '',
      message_type: 'notice',
      priority: 1,
      sender_id: f.admin.userId,
      sender_name: f.admin.displayName,
      link_url: null,
      target_type: to ? 'user' : 'all',
      created_at: f.now(),
      expires_at: f.now() + inMs,
    });
    if (to) await insertInboxRows(f.db, id, to);
    return id;
  }

  it('announces nothing, and opens no transaction, while nothing has expired', async () => {
    await store(10_000, [11]);
    assert.equal(await expiry.announce(), 0);
    assert.equal(await f.count('events'), 0);
    assert.equal(f.published.length, 0);
  });

  it('waits for the grace after expiry, then tells each holder once', async () => {
    const id = await store(100, [11, 12]);
    f.clock.t += 100 + EXPIRY_GRACE_MS - 1;
    assert.equal(await expiry.announce(), 0);
    f.clock.t += 1;
    assert.equal(await expiry.announce(), 1);
    assert.equal(await expiry.announce(), 0);
    assert.deepEqual(await f.events(), [
      { userId: 11, type: 'MESSAGE_DELETED', data: { messageId: id, reason: 'expired' } },
      { userId: 12, type: 'MESSAGE_DELETED', data: { messageId: id, reason: 'expired' } },
    ]);
    assert.equal(f.published.length, 1, 'one wake-up for the announcing commit');
  });

  it('skips holders who deleted the message and tells everyone once for a message to all', async () => {
    const direct = await store(100, [11, 12]);
    await changeState(f.db, 12, [{ id: direct, target_type: 'user' }], 'deleted_at', f.now());
    const toAll = await store(200);
    f.clock.t += 200 + EXPIRY_GRACE_MS;
    assert.equal(await expiry.announce(), 2);
    assert.deepEqual(
      (await f.events()).map((e) => [e.userId, e.data['messageId']]),
      [
        [11, direct],
        [null, toAll],
      ],
    );
  });

  it('caps the events of one call without splitting a message, the rest on later calls', async () => {
    const a = await store(100, [11, 12, 13]);
    const b = await store(110, [11]);
    const c = await store(120, [12, 13]);
    f.clock.t += 120 + EXPIRY_GRACE_MS;
    // a alone is over the cap of 2 and still goes whole; b and c then fit one call each under the cap.
    assert.equal(await expiry.announce(200, 2), 1);
    assert.equal(await expiry.announce(200, 2), 2);
    assert.equal(await expiry.announce(200, 2), 0);
    const ids = (await f.events()).map((e) => e.data['messageId']);
    assert.deepEqual(ids, [a, a, a, b, c, c]);
  });

  it('takes at most `limit` messages per call, in expiry order', async () => {
    const later = await store(300, [11]);
    const sooner = await store(100, [11]);
    f.clock.t += 300 + EXPIRY_GRACE_MS;
    assert.equal(await expiry.announce(1), 1);
    assert.equal(await expiry.announce(1), 1);
    assert.deepEqual(
      (await f.events()).map((e) => e.data['messageId']),
      [sooner, later],
    );
  });

  it('purges announced messages with their inbox rows, and not those still to announce', async () => {
    await store(100, [11, 12]);
    f.clock.t += 100 + EXPIRY_GRACE_MS;
    await expiry.announce();
    const pending = await store(50, [13]);
    f.clock.t += 50 + EXPIRY_GRACE_MS;
    assert.equal(await expiry.purgeAnnounced(), 1);
    assert.deepEqual(
      (await f.db.selectFrom('messages').select('id').execute()).map((r) => Number(r.id)),
      [pending],
    );
    assert.equal(await f.count('inbox'), 1);
    assert.equal(await expiry.purgeAnnounced(), 0);
  });

  it('purges in bounded batches', async () => {
    for (let i = 0; i < 5; i++) await store(100 + i, [11]);
    f.clock.t += 200 + EXPIRY_GRACE_MS;
    await expiry.announce();
    assert.equal(await expiry.purgeAnnounced(2, 2), 4);
    assert.equal(await expiry.purgeAnnounced(2, 2), 1);
  });
});

describe('expiry timer', () => {
  // The announcer's timer is unref'd (it never holds a process open): this one keeps the test alive.
  let keepAlive: NodeJS.Timeout;
  beforeEach(() => void (keepAlive = setInterval(() => {}, 1000)));
  afterEach(() => clearInterval(keepAlive));

  it('logs a failed run and tries again on the next tick, one run at a time', async () => {
    const warnings: string[] = [];
    let runs = 0;
    let inFlight = 0;
    let overlapped = false;
    const stop = startExpiryAnnouncer({
      announcer: {
        async announce() {
          runs++;
          overlapped ||= inFlight > 0;
          inFlight++;
          await new Promise((r) => setTimeout(r, 5));
          inFlight--;
          throw new Error(`boom ${runs}`);
        },
      },
      intervalMs: 1,
      logger: { warn: (_o: unknown, msg: string) => void warnings.push(msg) },
    });
    while (runs < 3) await new Promise((r) => setTimeout(r, 2));
    await stop();
    assert.equal(overlapped, false);
    assert.ok(warnings.length >= 2);
    assert.ok(warnings.every((w) => w === 'announcing expired messages failed'));
  });

  it('stop waits for the run in progress and no run starts after it', async () => {
    let runs = 0;
    let finished = false;
    let started!: () => void;
    const running = new Promise<void>((r) => (started = r));
    const stop = startExpiryAnnouncer({
      announcer: {
        async announce() {
          runs++;
          started();
          await new Promise((r) => setTimeout(r, 20));
          finished = true;
          return 0;
        },
      },
      intervalMs: 1,
      logger: { warn: () => {} },
    });
    await running;
    await stop();
    assert.equal(finished, true);
    const after = runs;
    await new Promise((r) => setTimeout(r, 10));
    assert.equal(runs, after);
  });
});
