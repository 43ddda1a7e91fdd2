/**
 * The event log writer's wake-up from inside the transaction (used by the PostgreSQL bus): called once,
 * inside the transaction, before the ordered part (so it adds no round trip under the event-log lock),
 * with WAKE_ANY as the head; it replaces the publish after commit; and
 * its failure rolls the change back. (The publish after commit is tested in test/http/events.test.ts.)
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Kysely } from 'kysely';
import { WAKE_ANY, type BusMessage } from '../../src/bus/bus.ts';
import { createMemoryBus } from '../../src/bus/memory-bus.ts';
import { createEventLogWriter } from '../../src/messages/event-log-writer.ts';
import { openStore, type Store } from '../../src/store/database.ts';
import { migrateToLatest } from '../../src/store/migrate.ts';
import type { DB } from '../../src/store/schema.ts';

describe('event log writer: the wake-up sent inside the transaction', () => {
  let store: Store;
  before(async () => {
    store = openStore({
      kind: 'sqlite',
      url: 'sqlite::memory:',
      sqlitePath: ':memory:',
      poolSize: 1,
      statementTimeoutMs: 5000,
      connectTimeoutMs: 5000,
    });
    await migrateToLatest(store);
  });
  after(() => store.close());

  const countEvents = async (db: Kysely<DB>) =>
    Number(
      (
        await db
          .selectFrom('events')
          .select((eb) => eb.fn.countAll().as('n'))
          .executeTakeFirstOrThrow()
      ).n,
    );

  function writer(inTransaction: (trx: Kysely<DB>, head: number) => Promise<void>) {
    const bus = createMemoryBus();
    const published: BusMessage[] = [];
    bus.subscribe((m) => void published.push(m));
    const commit = createEventLogWriter({
      db: store.db,
      dialect: store.dialect,
      bus,
      nodeId: 'n',
      now: Date.now,
      inTransaction,
    });
    return { commit, published };
  }

  it('is called once, inside the transaction before the append, saying "read on"; nothing is published after', async () => {
    const calls: Array<{ head: number; seen: number }> = [];
    const { commit, published } = writer(async (trx, head) => {
      calls.push({ head, seen: await countEvents(trx) });
    });
    const before = await countEvents(store.db);
    await commit(async () => ({
      result: undefined,
      events: [
        { userId: 1, type: 'X', data: {} },
        { userId: 2, type: 'X', data: {} },
      ],
    }));
    await commit(async () => ({ result: undefined, events: [] }));
    await new Promise((r) => setTimeout(r, 10));
    assert.equal(calls.length, 1, 'once per commit with events; none without');
    assert.deepEqual(calls, [{ head: WAKE_ANY, seen: before }], 'before the append, inside the transaction');
    assert.equal(await countEvents(store.db), before + 2);
    assert.deepEqual(published, [], 'the wake-up went with the transaction, not after it');
  });

  it('rolls the change back when the wake-up cannot be sent', async () => {
    const { commit } = writer(async () => {
      throw new Error('no notify');
    });
    const before = await countEvents(store.db);
    await assert.rejects(
      commit(async () => ({ result: undefined, events: [{ userId: 1, type: 'X', data: {} }] })),
      /no notify/,
    );
    assert.equal(await countEvents(store.db), before);
  });
});
