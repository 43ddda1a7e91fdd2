/**
 * The NEW_MESSAGE data cache (event-log-reader.ts): most recently used kept, bounded in bytes, and
 * read through — a message read once is not read from the database again; and what a node keeps of
 * its own sends (their data and recipients, and on SQLite the appended rows) for the tail read that finds
 * them.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sql, type KyselyPlugin, type QueryResult, type RootOperationNode, type UnknownRow } from 'kysely';
import { createEventLogReader } from '../../src/messages/event-log-reader.ts';
import { createMemoryBus } from '../../src/bus/memory-bus.ts';
import { createEventLogWriter } from '../../src/messages/event-log-writer.ts';
import {
  APPENDED_ROWS,
  AppendedRows,
  MessageDataCache,
  SENT_HINT_IDS,
  SENT_HINTS,
  SentRecipients,
} from '../../src/messages/reader-caches.ts';
import { insertMessage } from '../../src/messages/message.repository.ts';
import { openMessagesFixture, smallInbox } from './fixture.ts';

describe('message data cache', () => {
  it('keeps the most recently used within its byte bound', () => {
    const c = new MessageDataCache(100);
    c.set(1, 'a'.repeat(20)); // 40 bytes
    c.set(2, 'b'.repeat(20));
    assert.equal(c.get(1), 'a'.repeat(20), 'touching 1 makes 2 the oldest');
    c.set(3, 'c'.repeat(20)); // 120 > 100: the oldest (2) goes
    assert.equal(c.get(2), undefined);
    assert.equal(c.get(1)?.length, 20);
    assert.equal(c.get(3)?.length, 20);
    assert.ok(c.size <= 100);
    c.set(4, 'd'.repeat(60)); // larger than the bound: not kept
    assert.equal(c.get(4), undefined);
  });

  it('reads a message from the database once, then from the cache', async () => {
    const f = await openMessagesFixture();
    try {
      let reads = 0;
      const counting: KyselyPlugin = {
        transformQuery: (args: { node: RootOperationNode }) => args.node,
        transformResult: async (args: { result: QueryResult<UnknownRow> }) => {
          reads++;
          return args.result;
        },
      };
      const id = await insertMessage(f.db, f.dialect, {
        title: 't',
        content: 'c',
        message_type: 'notice',
        priority: 1,
        sender_id: 1,
        sender_name: 'A',
        link_url: null,
        target_type: 'all',
        created_at: f.now(),
        expires_at: null,
      });
      const log = createEventLogReader({
        db: f.db.withPlugin(counting),
        unreadCounts: async () => new Map(),
      });
      const first = await log.messageData([id]);
      assert.equal(reads, 1);
      const again = await log.messageData([id]);
      assert.equal(reads, 1, 'no second read');
      assert.equal(again.get(id), first.get(id));
      assert.equal((JSON.parse(first.get(id) ?? '{}') as { title: string }).title, 't');
    } finally {
      await f.close();
    }
  });

  it('keeps the recipients of sends made here, each taken once, within its bounds', () => {
    const s = new SentRecipients();
    s.set(1, [10, 11]);
    assert.deepEqual(s.take(1), [10, 11]);
    assert.equal(s.take(1), undefined, 'taken once');
    for (let i = 0; i < SENT_HINTS + 5; i++) s.set(100 + i, [i]);
    assert.equal(s.size.sends, SENT_HINTS);
    assert.equal(s.take(100), undefined, 'the oldest went first');
    assert.deepEqual(s.take(100 + SENT_HINTS + 4), [SENT_HINTS + 4]);
    s.set(
      5000,
      Array.from({ length: SENT_HINT_IDS }, (_, i) => i),
    );
    assert.ok(s.size.ids <= SENT_HINT_IDS, 'bounded in ids');
    assert.equal(s.take(5000)?.length, SENT_HINT_IDS);
    s.set(
      5001,
      Array.from({ length: SENT_HINT_IDS + 1 }, (_, i) => i),
    );
    assert.equal(s.take(5001), undefined, 'a send with more ids than the bound is not kept');
  });

  it('delivers a send made on this node without reading its recipients or its data back', async () => {
    const f = await openMessagesFixture();
    try {
      const reads: string[] = [];
      const counting: KyselyPlugin = {
        transformQuery: (args: { node: RootOperationNode }) => {
          reads.push(args.node.kind);
          return args.node;
        },
        transformResult: async (args: { result: QueryResult<UnknownRow> }) => args.result,
      };
      const ann = await f.addUser(11);
      await f.addUser(12);
      const log = createEventLogReader({
        db: f.db.withPlugin(counting),
        unreadCounts: async () => new Map(),
      });
      const inbox = smallInbox(f, (m, r) => log.noteSent(m, r));
      const { messageId } = await inbox.send(ann, {
        title: 'here',
        content: 'c',
        targetType: 'user',
        targetIds: [11, 12],
      });
      reads.length = 0;
      const events = await log.readAfter(0, 100);
      assert.deepEqual(reads, ['SelectQueryNode'], 'the tail read only: no recipients, no message read');
      const ev = events.find((e) => e.messageId === messageId);
      assert.deepEqual(ev?.recipients, [11, 12]);
      const data = await log.messageData([messageId]);
      assert.equal(reads.length, 1, 'the data is in the cache');
      // The same data as a read from the database gives.
      const fresh = createEventLogReader({ db: f.db, unreadCounts: async () => new Map() });
      assert.equal(data.get(messageId), (await fresh.messageData([messageId])).get(messageId));
      assert.deepEqual(
        (await fresh.readAfter(0, 100)).find((e) => e.messageId === messageId)?.recipients,
        [11, 12],
      );
    } finally {
      await f.close();
    }
  });

  it('keeps appended rows until the tail read takes them: only a gapless run after the position', () => {
    const row = (seq: number) => ({
      seq,
      user_id: 1,
      type: 'T',
      data: '{}',
      message_id: null,
      mfloor: 0,
      created_at: 0,
    });
    const a = new AppendedRows();
    a.add([row(5), row(6)]);
    assert.equal(a.take(3, 10), undefined, 'seq 4 is not held: the database has it');
    assert.deepEqual(
      a.take(4, 1)?.map((r) => r.seq),
      [5],
    );
    assert.deepEqual(
      a.take(5, 10)?.map((r) => r.seq),
      [6],
    );
    assert.equal(a.size, 0, 'taken once');
    a.add([row(7), row(9)]);
    assert.equal(
      a.take(6, 10),
      undefined,
      'a gap (8) before a row still held: read it all from the database',
    );
    a.clear();
    a.add(Array.from({ length: APPENDED_ROWS + 10 }, (_, i) => row(100 + i)));
    assert.equal(a.size, APPENDED_ROWS, 'bounded; the oldest went first');
    assert.equal(a.take(99, 10), undefined);
    assert.equal(a.take(109, 5)?.[0]?.seq, 110);
  });

  it("reads nothing back for the node's own appends, and reads the log when another process wrote", async () => {
    const f = await openMessagesFixture();
    try {
      const ann = await f.addUser(11);
      await f.addUser(12);
      const log = createEventLogReader({
        db: f.db,
        unreadCounts: async () => new Map(),
      });
      const commit = createEventLogWriter({
        db: f.db,
        dialect: f.dialect,
        bus: createMemoryBus(),
        nodeId: 'n',
        now: f.now,
        appended: (rows) => log.noteAppended(rows),
      });
      const inbox = smallInbox({ ...f, commit }, (m, r) => log.noteSent(m, r));
      const fresh = createEventLogReader({ db: f.db, unreadCounts: async () => new Map() });
      const send = (title: string) =>
        inbox.send(ann, { title, content: 'c', targetType: 'user', targetIds: [11, 12] });
      await Promise.all([send('one'), send('two')]);
      await commit(async () => ({ result: 0, events: [{ userId: 12, type: 'READ', data: { id: 1 } }] }));
      const expected = await fresh.readAfter(0, 100);
      assert.equal(expected.length, 3);
      // Gone from the database: what the node's reader returns now can only come from what it kept.
      await sql`delete from events`.execute(f.db);
      assert.deepEqual(await log.readAfter(0, 100), expected, 'the same events as the read of the log');
      // Another process appends (seq 4), then this node (seq 5): the gap sends the read to the log.
      await sql`insert into events (user_id, type, data, mfloor, created_at) values (11, 'OTHER', '{}', 0, 0)`.execute(
        f.db,
      );
      await send('three');
      const next = await log.readAfter(3, 100);
      // OTHER was never kept here: it came from the log, with this node's row after it.
      assert.deepEqual(
        next.map((e) => e.type),
        ['OTHER', 'NEW_MESSAGE'],
      );
      assert.deepEqual(next, await fresh.readAfter(3, 100));
    } finally {
      await f.close();
    }
  });
});
