/**
 * The newest events in memory (recent-events.ts): the ring's own rules with hand-made events, then the
 * reader answering resumes from it exactly as from the database, over a real (in-memory SQLite) log.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { LogEvent } from '../../src/event-log.ts';
import { encodeEventCursor } from '../../src/messages/cursor.ts';
import { createEventLogReader } from '../../src/messages/event-log-reader.ts';
import { RecentEvents } from '../../src/messages/recent-events.ts';
import { openMessagesFixture, smallInbox } from './fixture.ts';

const ev = (seq: number, userId: number | null, recipients?: number[], data = `{"n":${seq}}`): LogEvent => ({
  seq,
  userId,
  ...(recipients && { recipients }),
  type: 'NEW_MESSAGE',
  dataJson: data,
  createdAt: 0,
});
const seqs = (es: readonly LogEvent[] | undefined) => es?.map((e) => e.seq);

describe('recent events: the ring', () => {
  it("answers a user's events: their own, everyone's, and sends listing them (short and long lists)", () => {
    const long = Array.from({ length: 100 }, (_, i) => i + 10);
    const r = new RecentEvents(100, 1_048_576);
    r.add(0, [ev(1, 1), ev(2, null), ev(3, null, [1, 2]), ev(4, 2), ev(5, null, long), ev(7, 3)]);
    assert.deepEqual(seqs(r.forUser(1, 0, 7, 10)), [1, 2, 3]);
    assert.deepEqual(seqs(r.forUser(2, 0, 7, 10)), [2, 3, 4]);
    assert.deepEqual(seqs(r.forUser(50, 0, 7, 10)), [2, 5]);
    assert.deepEqual(seqs(r.forUser(2, 2, 4, 10)), [3, 4], 'after 2, up to 4');
    assert.deepEqual(seqs(r.forUser(2, 0, 7, 2)), [2, 3], 'at most limit');
    assert.deepEqual(r.count(1, 0, 7, 10, 2), {
      count: 3,
      sizes: [
        { seq: 1, chars: 7 },
        { seq: 2, chars: 7 },
      ],
    });
    assert.equal(r.count(1, 0, 7, 1, 0)?.count, 2, 'counts up to max + 1');
    assert.equal(r.covers(0, 7), true);
    assert.equal(r.covers(0, 8), false, 'nothing is known past the last read');
  });

  it('evicts the oldest past its count or bytes, and then no longer covers their range', () => {
    const r = new RecentEvents(3, 1_048_576);
    r.add(
      0,
      [1, 2, 3, 4, 5].map((s) => ev(s, null)),
    );
    assert.equal(r.size, 3);
    assert.equal(r.covers(1, 5), false);
    assert.equal(r.count(1, 1, 5, 10, 10), undefined);
    assert.deepEqual(seqs(r.forUser(1, 2, 5, 10)), [3, 4, 5]);
    const bytes = new RecentEvents(100, 1_000);
    bytes.add(
      0,
      [1, 2, 3].map((s) => ev(s, null, undefined, 'x'.repeat(200))),
    );
    assert.equal(bytes.size, 1, 'two events of ~520 bytes do not fit in 1,000');
    assert.equal(bytes.covers(2, 3), true);
    assert.equal(bytes.covers(1, 3), false);
    // Many evictions keep answering right (the array is compacted in chunks).
    const many = new RecentEvents(10, 1_048_576);
    for (let s = 1; s <= 5_000; s++) many.add(s - 1, [ev(s, s % 2)]);
    assert.deepEqual(seqs(many.forUser(1, 4_990, 5_000, 100)), [4_991, 4_993, 4_995, 4_997, 4_999]);
  });

  it('a read that does not continue the covered range starts a new one; a read again adds only what is new', () => {
    const r = new RecentEvents(100, 1_048_576);
    r.add(0, [ev(1, null), ev(2, null)]);
    r.add(1, [ev(2, null), ev(3, null)]);
    assert.equal(r.size, 3);
    assert.deepEqual(seqs(r.forUser(1, 0, 3, 10)), [1, 2, 3]);
    r.add(10, [ev(11, null)]);
    assert.equal(r.covers(0, 3), false, 'a gap: the old range is dropped');
    assert.equal(r.covers(10, 11), true);
    r.clear();
    assert.equal(r.covers(10, 11), false);
    assert.equal(r.size, 0);
  });

  it('does not answer what it lacks the data of, and holds nothing when sized 0', () => {
    const r = new RecentEvents(100, 1_048_576);
    r.add(0, [ev(1, null), { ...ev(2, null), dataJson: undefined }]);
    assert.equal(r.count(1, 0, 2, 10, 10), undefined);
    assert.equal(r.count(1, 0, 2, 10, 1)?.count, 2, 'only the sized part needs data');
    const off = new RecentEvents(0, 1_048_576);
    off.add(0, [ev(1, null)]);
    assert.equal(off.covers(0, 1), false);
  });
});

describe('recent events: the reader answers resumes from memory as from the database', () => {
  it('same counts, sizes and pages for every user and cursor, with no range read', async () => {
    const f = await openMessagesFixture();
    try {
      const users = [11, 12, 13];
      await Promise.all(users.map((id) => f.addUser(id)));
      const inbox = smallInbox(f);
      const sent: number[] = [];
      const send = async (targetType: 'user' | 'all', targetIds: number[], i: number) =>
        sent.push(
          (
            await inbox.send(f.admin, {
              title: `t${i}`,
              content: 'c'.repeat(i * 7),
              targetType,
              ...(targetType === 'user' && { targetIds }),
            })
          ).messageId,
        );
      for (let i = 0; i < 12; i++) {
        if (i % 4 === 0) await send('all', [], i);
        else
          await send(
            'user',
            users.filter((_, k) => (i + k) % 3 !== 0),
            i,
          );
      }
      await inbox.markRead(11, sent[1] as number);
      await inbox.remove(13, sent[2] as number);

      const fromDb = createEventLogReader({ db: f.db, unreadCounts: async () => new Map() });
      const fromMemory = createEventLogReader({
        db: f.db,
        unreadCounts: async () => new Map(),
        recent: { events: 1_000, bytes: 1_048_576 },
      });
      const head = await fromDb.head();
      // As the hub does: prime up to the head at start (the tail read would carry on from there).
      await fromMemory.prime?.(head);
      const epoch = await fromMemory.epoch();
      const answer = async (reader: typeof fromDb, userId: number, since: number) => {
        const start = await reader.startResume(userId, encodeEventCursor(epoch, since), head, 100, 3);
        assert.ok(start.ok);
        const page = await reader.replayPage(userId, start.from, head, 100);
        assert.ok(!page.expired);
        return {
          count: start.count,
          sized: start.sizes?.map((x) => x.seq),
          chars: start.sizes?.map((x) => x.chars) ?? [],
          page: page.events.map((e) => [e.seq, e.type, e.dataJson]),
        };
      };
      const expected = new Map<string, Awaited<ReturnType<typeof answer>>>();
      for (const userId of users)
        for (let since = 0; since <= head; since++)
          expected.set(`${userId}/${since}`, await answer(fromDb, userId, since));
      // With the log's rows gone, only memory can answer: the same answers prove no range was read.
      await f.db.deleteFrom('events').execute();
      for (const userId of users)
        for (let since = 0; since <= head; since++) {
          const m = await answer(fromMemory, userId, since);
          const d = expected.get(`${userId}/${since}`) as typeof m;
          const at = `user ${userId} after ${since}`;
          assert.equal(m.count, d.count, at);
          assert.deepEqual(m.sized, d.sized, at);
          assert.deepEqual(m.page, d.page, at);
          // Memory sizes the JSON itself; the database adds up the fields it is made of (a little less).
          m.chars.forEach((c, i) => assert.ok(c >= (d.chars[i] ?? Infinity), at));
        }
      assert.ok(
        [...expected.values()].some((x) => x.page.length >= 3),
        'some resumes replay several events',
      );
      // Too many is too many from memory as well.
      const tooMany = await fromMemory.startResume(11, encodeEventCursor(epoch, 0), head, 2, 3);
      assert.deepEqual(tooMany, { ok: false, reason: 'too_many' });
    } finally {
      await f.close();
    }
  });
});
