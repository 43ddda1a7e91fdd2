/**
 * Idempotency (src/messages/idempotency.ts) on a real in-memory SQLite: a key stores the first answer
 * for its lifetime, a retry gets it without a second send, another request under the key is refused,
 * and only a committed send stores an answer.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { AppError, Errors } from '../../src/errors.ts';
import {
  createIdempotency,
  requestHash,
  type Idempotency,
  type Remember,
} from '../../src/messages/idempotency.ts';
import { openMessagesFixture, type MessagesFixture } from './fixture.ts';
import { pruneIdempotency } from '../../src/messages/idempotency.repository.ts';

const TTL_SEC = 60;
const SENDER = 7;

describe('idempotency', () => {
  let f: MessagesFixture;
  let idem: Idempotency;
  let sends: number;

  beforeEach(async () => {
    f = await openMessagesFixture();
    idem = createIdempotency({ db: f.db, ttlSec: TTL_SEC, now: f.now });
    sends = 0;
  });
  afterEach(() => f.close());

  /** A send that commits `answer` (remembering it when asked to) and counts its runs. */
  const sending = (answer: { n: number }) => (remember: Remember<{ n: number }> | undefined) => {
    sends++;
    return f.db.transaction().execute(async (trx) => {
      await remember?.(trx, answer, f.now());
      return answer;
    });
  };

  it('runs every send when there is no key, storing nothing', async () => {
    let given: unknown = 'unset';
    await idem.once(SENDER, undefined, { a: 1 }, async (remember) => ((given = remember), { n: 1 }));
    await idem.once(SENDER, undefined, { a: 1 }, sending({ n: 2 }));
    assert.equal(given, undefined);
    assert.equal(sends, 1);
    assert.equal(await f.count('idempotency_keys'), 0);
  });

  it('answers a retry with the stored answer without sending again', async () => {
    assert.deepEqual(await idem.once(SENDER, 'k1', { a: 1 }, sending({ n: 1 })), { n: 1 });
    assert.deepEqual(await idem.once(SENDER, 'k1', { a: 1 }, sending({ n: 2 })), { n: 1 });
    assert.equal(sends, 1);
    assert.equal(await f.count('idempotency_keys'), 1);
  });

  it('keeps keys apart per sender', async () => {
    await idem.once(SENDER, 'k1', { a: 1 }, sending({ n: 1 }));
    assert.deepEqual(await idem.once(SENDER + 1, 'k1', { a: 1 }, sending({ n: 2 })), { n: 2 });
    assert.equal(sends, 2);
  });

  it('refuses the same key with another request, without sending', async () => {
    await idem.once(SENDER, 'k1', { a: 1 }, sending({ n: 1 }));
    await assert.rejects(
      idem.once(SENDER, 'k1', { a: 2 }, sending({ n: 2 })),
      (e: unknown) => e instanceof AppError && e.code === Errors.IDEMPOTENCY_KEY_REUSED.code,
    );
    assert.equal(sends, 1);
  });

  it('forgets a key after its lifetime: the same key then sends again and replaces the old answer', async () => {
    await idem.once(SENDER, 'k1', { a: 1 }, sending({ n: 1 }));
    f.clock.t += TTL_SEC * 1000 - 1;
    assert.deepEqual(await idem.once(SENDER, 'k1', { a: 1 }, sending({ n: 2 })), { n: 1 });
    f.clock.t += 2;
    assert.deepEqual(await idem.once(SENDER, 'k1', { a: 2 }, sending({ n: 3 })), { n: 3 });
    assert.deepEqual(await idem.once(SENDER, 'k1', { a: 2 }, sending({ n: 4 })), { n: 3 });
    assert.equal(sends, 2);
    assert.equal(await f.count('idempotency_keys'), 1);
  });

  it('stores nothing when the send fails, so the key stays free', async () => {
    const refused = new AppError(Errors.UNKNOWN_TARGETS);
    await assert.rejects(
      idem.once(SENDER, 'k1', { a: 1 }, (remember) =>
        f.db.transaction().execute(async (trx) => {
          await remember?.(trx, { n: 1 }, f.now());
          throw refused;
        }),
      ),
      (e) => e === refused,
    );
    assert.equal(await f.count('idempotency_keys'), 0);
    assert.deepEqual(await idem.once(SENDER, 'k1', { a: 1 }, sending({ n: 2 })), { n: 2 });
  });

  it('answers with the first answer when a concurrent request with the key committed first', async () => {
    // The inner request commits while the outer one is under way; the outer one's own insert then hits
    // the primary key, and it answers with what the inner one stored.
    const answer = await idem.once(SENDER, 'k1', { a: 1 }, async (remember) => {
      await idem.once(SENDER, 'k1', { a: 1 }, sending({ n: 1 }));
      return sending({ n: 2 })(remember);
    });
    assert.deepEqual(answer, { n: 1 });
    assert.equal(sends, 2);
    assert.equal(await f.count('idempotency_keys'), 1);
  });

  it('prunes only keys past their lifetime', async () => {
    await idem.once(SENDER, 'old', { a: 1 }, sending({ n: 1 }));
    f.clock.t += TTL_SEC * 1000 + 1;
    await idem.once(SENDER, 'new', { a: 1 }, sending({ n: 2 }));
    await idem.prune();
    const keys = await f.db.selectFrom('idempotency_keys').select('key').execute();
    assert.deepEqual(
      keys.map((k) => k.key),
      ['new'],
    );
  });

  it('prunes in bounded batches, oldest first', async () => {
    const before = f.clock.t - TTL_SEC * 1000;
    const old = before - 10_000;
    const rows = Array.from({ length: 2500 }, (_, i) => ({
      sender_id: SENDER,
      key: `bulk-${i}`,
      request_hash: 'h',
      response: '{}',
      created_at: old + i,
    }));
    for (let i = 0; i < rows.length; i += 500)
      await f.db
        .insertInto('idempotency_keys')
        .values(rows.slice(i, i + 500))
        .execute();
    await idem.once(SENDER, 'fresh', { a: 1 }, sending({ n: 1 }));
    assert.equal(await pruneIdempotency(f.db, before, 2, 1000), 2000, 'two batches of 1,000');
    const left = await f.db.selectFrom('idempotency_keys').select('key').orderBy('created_at').execute();
    assert.equal(left.length, 501);
    assert.equal(left[0]?.key, 'bulk-2000', 'the oldest went first');
    assert.equal(await pruneIdempotency(f.db, before), 500);
    assert.deepEqual(
      (await f.db.selectFrom('idempotency_keys').select('key').execute()).map((k) => k.key),
      ['fresh'],
    );
  });

  it('hashes a request the same whatever the order of its fields', () => {
    assert.equal(requestHash({ a: 1, b: [2, 3] }), requestHash({ b: [2, 3], a: 1 }));
    assert.notEqual(requestHash({ a: 1, b: [2, 3] }), requestHash({ a: 1, b: [3, 2] }));
  });
});
