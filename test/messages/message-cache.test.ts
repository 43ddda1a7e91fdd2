/**
 * The NEW_MESSAGE data cache (event-log-reader.ts): most recently used kept, bounded in bytes, and
 * read through — a message read once is not read from the database again; and what a node keeps of
 * its own sends (their data and recipients) for the tail read that finds them.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { KyselyPlugin, QueryResult, RootOperationNode, UnknownRow } from 'kysely';
import { createEventLogReader } from '../../src/messages/event-log-reader.ts';
import {
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
});
