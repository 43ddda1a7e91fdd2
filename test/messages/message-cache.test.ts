/**
 * The NEW_MESSAGE data cache (event-log-reader.ts): most recently used kept, bounded in bytes, and
 * read through — a message read once is not read from the database again.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { KyselyPlugin, QueryResult, RootOperationNode, UnknownRow } from 'kysely';
import { createEventLogReader, MessageDataCache } from '../../src/messages/event-log-reader.ts';
import { insertMessage } from '../../src/messages/message.repository.ts';
import { openMessagesFixture } from './fixture.ts';

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
});
