/**
 * Resume against a prune that commits in the middle of it: the rows and the prune mark are read by two
 * statements, and a prune committing between them must never turn into a replay with a hole. Whatever
 * the interleaving, resume either replays every event after the cursor or answers RESYNC (expired).
 * Two connections to one SQLite file: the reader's, and another that prunes between the reader's reads.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { KyselyPlugin, PluginTransformResultArgs, QueryResult, UnknownRow } from 'kysely';
import { encodeEventCursor } from '../../src/messages/cursor.ts';
import { createEventLogReader } from '../../src/messages/event-log-reader.ts';
import { appendEvents } from '../../src/messages/event-log-append.ts';
import { pruneEvents } from '../../src/messages/event-log.repository.ts';
import { openStore, type Store } from '../../src/store/database.ts';
import { migrateToLatest } from '../../src/store/migrate.ts';

/** Runs `between` once, right after the first query that returns rows once armed. */
class BetweenReads implements KyselyPlugin {
  armed = false;
  constructor(private readonly between: () => Promise<unknown>) {}
  transformQuery: KyselyPlugin['transformQuery'] = (args) => args.node;
  async transformResult(args: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    if (this.armed) {
      this.armed = false;
      await this.between();
    }
    return args.result;
  }
}

/** A connection of its own to the SQLite file in `dir` (two of them play two processes). */
const openIn = (dir: string): Store =>
  openStore({
    kind: 'sqlite',
    url: `sqlite:${join(dir, 'db.sqlite')}`,
    sqlitePath: join(dir, 'db.sqlite'),
    poolSize: 1,
    statementTimeoutMs: 5000,
    connectTimeoutMs: 5000,
  });

describe('resume while a prune commits between its reads', () => {
  let dir: string;
  let reader: Store;
  let pruner: Store;
  const USER = 7;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'skypush-prune-'));
    const open = () => openIn(dir);
    reader = open();
    await migrateToLatest(reader);
    pruner = open();
    await pruner.db
      .insertInto('users')
      .values({
        id: USER,
        username: 'u7',
        display_name: 'u7',
        password_hash: null,
        role: 'user',
        disabled: 0,
        created_at: 0,
        updated_at: 0,
      })
      .execute();
  });
  after(async () => {
    await reader.close();
    await pruner.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Appends 5 old events for USER; returns the seq of the first. */
  async function fiveOldEvents(): Promise<{ first: number; head: number }> {
    const old = Date.now() - 10 * 86_400_000;
    const events = Array.from({ length: 5 }, (_, i) => ({
      userId: USER,
      type: 'SYSTEM_NOTIFY',
      data: { i },
    }));
    const head = await appendEvents(pruner.db, pruner.dialect, events, old);
    return { first: head - 4, head };
  }

  /** The whole replay of USER from `after` through `head`, page by page, or 'expired'. */
  async function replayAll(
    log: ReturnType<typeof createEventLogReader>,
    floor: number,
    after: number,
    head: number,
  ) {
    const seqs: number[] = [];
    let pos = { seq: after, floor };
    while (pos.seq < head) {
      const page = await log.replayPage(USER, pos, head, 2);
      if (page.expired) return 'expired';
      if (page.events.length === 0) break;
      seqs.push(...page.events.map((e) => e.seq));
      pos = { seq: seqs.at(-1) as number, floor };
    }
    return seqs;
  }

  it('never starts a replay with the pruned head missing', async () => {
    const { first, head } = await fiveOldEvents();
    const plugin = new BetweenReads(() => pruneEvents(pruner.db, Date.now(), 3));
    const log = createEventLogReader({
      db: reader.db.withPlugin(plugin),
      unreadCounts: async () => new Map(),
    });
    const epoch = await log.epoch();
    plugin.armed = true;
    const r = await log.startResume(USER, encodeEventCursor(epoch, first - 1), head, 100, 100);
    assert.equal(plugin.armed, false, 'the prune ran between the reads');
    if (r.ok) {
      assert.deepEqual(
        await replayAll(log, r.from.floor, first - 1, head),
        [first, first + 1, first + 2, first + 3, first + 4],
        'a replay is whole',
      );
    } else {
      assert.equal(r.reason, 'expired');
    }
  });

  it('never serves a page with its head pruned between the rows and the mark', async () => {
    const { first, head } = await fiveOldEvents();
    const plugin = new BetweenReads(() => pruneEvents(pruner.db, Date.now(), 3));
    const log = createEventLogReader({
      db: reader.db.withPlugin(plugin),
      unreadCounts: async () => new Map(),
    });
    const epoch = await log.epoch();
    const r = await log.startResume(USER, encodeEventCursor(epoch, first - 1), head, 100, 100);
    assert.equal(r.ok, true);
    plugin.armed = true;
    const page = await log.replayPage(USER, { seq: first - 1, floor: 0 }, head, 5);
    assert.equal(plugin.armed, false, 'the prune ran between the reads');
    assert.equal(page.expired, true, 'the page read before the prune is not served as whole');
  });
});

describe('resume from memory and the prune mark', () => {
  let dir: string;
  let node: Store;
  let other: Store;
  const USER = 7;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'skypush-prune-mark-'));
    node = openIn(dir);
    await migrateToLatest(node);
    other = openIn(dir);
  });
  after(async () => {
    await node.close();
    await other.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves a held range with the mark read within the second; its own prune counts at once', async () => {
    const old = Date.now() - 10 * 86_400_000;
    const five = () =>
      appendEvents(
        other.db,
        other.dialect,
        Array.from({ length: 5 }, (_, i) => ({ userId: USER, type: 'SYSTEM_NOTIFY', data: { i } })),
        old,
      );
    let head = await five();
    const first = head - 4;
    let t = Date.now();
    const log = createEventLogReader({
      db: node.db,
      unreadCounts: async () => new Map(),
      now: () => t,
      recent: { events: 100, bytes: 1_048_576 },
    });
    await log.prime?.(head);
    const cursor = encodeEventCursor(await log.epoch(), first - 1);
    const resume = async () => {
      const r = await log.startResume(USER, cursor, head, 100, 100);
      if (!r.ok) return r.reason;
      const page = await log.replayPage(USER, r.from, head, 100);
      return page.expired ? 'expired' : page.events.map((e) => e.seq);
    };
    const whole = [first, first + 1, first + 2, first + 3, first + 4];
    assert.deepEqual(await resume(), whole, 'the mark was read: nothing pruned yet');

    // Another node prunes the five: this node still holds them, and replays them whole.
    assert.equal(await pruneEvents(other.db, Date.now(), 100), 5);
    t += 500;
    assert.deepEqual(await resume(), whole, 'within the second: the held range, whole');
    t += 600;
    assert.equal(await resume(), 'expired', 'past the second the mark is read again');

    // The node's own prune is seen at once.
    const before = head;
    head = await five();
    // As the hub's tail read does: the new events into memory.
    log.remember?.(before, await log.readAfter(before, 100));
    const fresh = encodeEventCursor(await log.epoch(), before);
    const ok = await log.startResume(USER, fresh, head, 100, 100);
    assert.equal(ok.ok, true, 'the new five are held and unpruned');
    assert.equal(await log.prune(60), 5);
    assert.deepEqual(await log.startResume(USER, fresh, head, 100, 100), { ok: false, reason: 'expired' });
  });
});
