/**
 * How SQLite runs a resume's reads (its query plans, which do not depend on timing): the direct part
 * must start from the user's own inbox rows and look events up by message id. Without statistics SQLite
 * otherwise walks every direct send's event in the range and probes the inbox for each one — O(sends
 * since the cursor) per resume, which a reconnect storm after heavy traffic pays once per client.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import SQLite from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import { encodeEventCursor } from '../../src/messages/cursor.ts';
import { createEventLogReader } from '../../src/messages/event-log-reader.ts';
import { migrateToLatest } from '../../src/store/migrate.ts';
import type { DB } from '../../src/store/schema.ts';

describe('resume reads on SQLite: query plans', () => {
  it('the direct part drives from the inbox (user, message id), never from every event in the range', async () => {
    const sqlite = new SQLite(':memory:');
    const statements: string[] = [];
    const db = new Kysely<DB>({
      dialect: new SqliteDialect({ database: sqlite }),
      log: (e) => {
        if (e.level === 'query') statements.push(e.query.sql);
      },
    });
    try {
      await migrateToLatest({ db, dialect: 'sqlite', ping: async () => {}, close: async () => {} });
      const reader = createEventLogReader({ db, unreadCounts: async () => new Map() });
      const epoch = await reader.epoch();
      statements.length = 0;
      const start = await reader.startResume(7, encodeEventCursor(epoch, 0), 100, 1_000, 10);
      assert.ok(start.ok);
      await reader.replaySizes(7, start.from, 100, 10);
      await reader.replayPage(7, start.from, 100, 10);
      const reads = statements.filter((s) => /\binbox\b/.test(s));
      assert.equal(reads.length, 3, 'the start, the sizes and the page each read the inbox');
      for (const text of reads) {
        const params = Array.from({ length: (text.match(/\?/g) ?? []).length }, () => 1);
        const plan = sqlite
          .prepare(`explain query plan ${text}`)
          .all(...params)
          .map((r) => (r as { detail: string }).detail);
        const inbox = plan.filter((d) => d.startsWith('SEARCH inbox'));
        assert.ok(inbox.length > 0, plan.join('\n'));
        // A range of the user's rows from the floor (not one probe per event: message_id=?), and each
        // event found by its message id.
        for (const d of inbox) assert.match(d, /\(user_id=\? AND message_id>\?\)/, plan.join('\n'));
        assert.ok(
          plan.some((d) => d.startsWith('SEARCH events USING INDEX events_message_id')),
          plan.join('\n'),
        );
      }
    } finally {
      await db.destroy();
    }
  });
});
