/**
 * Issue #13 item 5: a restored, point-in-time-recovered or failed-over database gets a new cursor epoch,
 * so a cursor from the lost history gets RESYNC "foreign" instead of resuming into other events that
 * reuse its seqs. Real pg_dump/pg_restore into a fresh database, a real SQLite file restored from a
 * backup, a log that goes back under a running node; and no rotation where nothing happened.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import SQLite from 'better-sqlite3';
import { sql } from 'kysely';
import type { App } from '../../src/app.ts';
import { HISTORY_MARK_FILE } from '../../src/store/history-mark.ts';
import { createPgDatabase, DIALECTS, startApp, type TestApp } from '../helpers/app.ts';
import { startRestartable } from '../helpers/restartable.ts';
import { hubCaughtUp } from '../helpers/realtime.ts';
import { connect, durable, type Frame, type TestSocket } from '../helpers/ws-client.ts';

const epochOf = (cursor: string) => cursor.split('.')[0] as string;
const seqOf = (cursor: string) => Number(cursor.split('.')[1]);

async function send(
  t: Pick<TestApp, 'request' | 'adminToken'>,
  userId: number,
  title: string,
): Promise<number> {
  const r = await t.request<{ messageId: number }>('POST', '/api/v1/messages/send', {
    token: t.adminToken,
    body: { title, content: 'c', targetType: 'user', targetIds: [userId] },
  });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body.data.messageId;
}

/** The cursor of the NEW_MESSAGE frame announcing `messageId` on `s`. */
async function cursorOfMessage(s: TestSocket, messageId: number): Promise<string> {
  const f = await s.waitFor((x) => x.type === 'NEW_MESSAGE' && x.data['messageId'] === messageId);
  return f.cursor as string;
}

interface Resumed {
  connected: Frame;
  resync: Frame | undefined;
  replayedIds: number[];
}

/** Connects with `since`, reads what the resume answers (CONNECTED, then RESYNC or the replay), closes. */
async function resume(wsUrl: string, token: string, since: string): Promise<Resumed> {
  const s = await connect(wsUrl, { token, since });
  try {
    const connected = await s.waitFor((f) => f.type === 'CONNECTED');
    const ok = (connected.data['resume'] as { ok: boolean }).ok;
    const resync = ok ? undefined : await s.waitFor((f) => f.type === 'RESYNC');
    await s.waitFor((f) => f.type === 'UNREAD_COUNT');
    const replayedIds = durable(s.frames)
      .filter((f) => f.type === 'NEW_MESSAGE')
      .map((f) => f.data['messageId'] as number);
    return { connected, resync, replayedIds };
  } finally {
    await s.close();
  }
}

async function storedEpoch(app: App): Promise<string> {
  const row = await app.store.db
    .selectFrom('skypush_meta')
    .select('value')
    .where('key', '=', 'epoch')
    .executeTakeFirstOrThrow();
  return row.value;
}

const rotations = (logs: string[]) => logs.filter((l) => l.includes('cursor epoch rotated'));

/**
 * Builds a history around a pg_dump to `file`: two messages before it, two after it (lost on a restore).
 * Returns a cursor from before the dump and the last cursor, from after it; stops the app's server.
 */
async function historyAroundDump(t: TestApp, user: { id: number; token: string }, file: string) {
  const live = await connect(t.wsUrl, { token: user.token });
  await live.waitFor((f) => f.type === 'CONNECTED');
  const beforeDump = await cursorOfMessage(live, await send(t, user.id, 'kept 1'));
  await cursorOfMessage(live, await send(t, user.id, 'kept 2'));
  execFileSync('/usr/bin/pg_dump', ['-Fc', '-f', file, '-d', t.config.database.url]);
  await cursorOfMessage(live, await send(t, user.id, 'lost 1'));
  const lost = await cursorOfMessage(live, await send(t, user.id, 'lost 2'));
  await live.close();
  await t.app.close();
  return { beforeDump, lost };
}

/** Resumes with each cursor and expects RESYNC "foreign" pointing into `epoch`, with nothing replayed. */
async function expectForeign(t: TestApp, token: string, epoch: string, cursors: string[]): Promise<void> {
  for (const since of cursors) {
    const r = await resume(t.wsUrl, token, since);
    assert.deepEqual(r.connected.data['resume'], { requested: true, ok: false, replayed: 0 });
    assert.equal(r.resync?.data['reason'], 'foreign', `cursor ${since}`);
    assert.equal(epochOf(r.resync?.data['cursor'] as string), epoch);
    assert.deepEqual(r.replayedIds, []);
  }
}

describe('postgres: a database restored with pg_dump/pg_restore', () => {
  it('into a fresh database: every cursor from before gets RESYNC "foreign"; cursors minted after resume', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'skypush-dump-'));
    const original = await startApp({ dialect: 'postgres' });
    const restored = await createPgDatabase();
    let after: TestApp | undefined;
    try {
      const u = await original.createUser('restored');
      const { beforeDump, lost } = await historyAroundDump(original, u, join(dir, 'dump'));
      execFileSync('/usr/bin/pg_restore', ['--no-owner', '-d', restored.url, join(dir, 'dump')]);
      after = await startApp({ dialect: 'postgres', env: { SKYPUSH_DATABASE_URL: restored.url } });
      await send(after, u.id, 'new 1');
      await send(after, u.id, 'new 2');

      const epoch = await storedEpoch(after.app);
      assert.notEqual(epoch, epochOf(lost), 'the restored database got a new epoch');
      assert.equal(rotations(after.logs).length, 1, 'rotated once, and said so');
      const fresh = await connect(after.wsUrl, { token: u.token });
      const minted = (await fresh.waitFor((f) => f.type === 'CONNECTED')).data['cursor'] as string;
      // The hazard itself: the new history reuses the lost cursor's seq for other events.
      assert.ok(seqOf(minted) >= seqOf(lost), `seqs are reused (head ${minted}, lost cursor ${lost})`);
      await expectForeign(after, u.token, epoch, [lost, beforeDump]);

      // A fresh connection works, and a cursor minted on the restored database resumes exactly.
      assert.equal(epochOf(minted), epoch);
      const liveId = await send(after, u.id, 'live');
      assert.equal(epochOf(await cursorOfMessage(fresh, liveId)), epoch);
      await fresh.close();
      const r = await resume(after.wsUrl, u.token, minted);
      assert.deepEqual(r.connected.data['resume'], { requested: true, ok: true, replayed: 1 });
      assert.deepEqual(r.replayedIds, [liveId]);
    } finally {
      await after?.close();
      await original.close();
      await restored.drop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('over the same database (pg_restore --clean): the same', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'skypush-dump-'));
    const original = await startApp({ dialect: 'postgres' });
    let after: TestApp | undefined;
    try {
      const u = await original.createUser('cleaned');
      const { beforeDump, lost } = await historyAroundDump(original, u, join(dir, 'dump'));
      const url = original.config.database.url;
      execFileSync('/usr/bin/pg_restore', [
        '--clean',
        '--if-exists',
        '--no-owner',
        '-d',
        url,
        join(dir, 'dump'),
      ]);
      after = await startApp({ dialect: 'postgres', env: { SKYPUSH_DATABASE_URL: url } });
      await send(after, u.id, 'new 1');
      await send(after, u.id, 'new 2');
      const epoch = await storedEpoch(after.app);
      assert.notEqual(epoch, epochOf(lost));
      assert.equal(rotations(after.logs).length, 1);
      await expectForeign(after, u.token, epoch, [lost, beforeDump]);
    } finally {
      await after?.close();
      await original.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('postgres: a restart on the same database', () => {
  it('keeps the epoch: an old cursor resumes normally', async () => {
    const first = await startApp({ dialect: 'postgres' });
    let second: TestApp | undefined;
    try {
      const u = await first.createUser('restart');
      const s = await connect(first.wsUrl, { token: u.token });
      await s.waitFor((f) => f.type === 'CONNECTED');
      const cursor = await cursorOfMessage(s, await send(first, u.id, 'before'));
      await s.close();
      await first.app.close();

      second = await startApp({
        dialect: 'postgres',
        env: { SKYPUSH_DATABASE_URL: first.config.database.url },
      });
      const missed = [await send(second, u.id, 'after 1'), await send(second, u.id, 'after 2')];
      await second.app.history.check();
      assert.equal(await storedEpoch(second.app), epochOf(cursor));
      assert.deepEqual(rotations([...first.logs, ...second.logs]), []);
      // The node has dispatched both: the resume replays them (none arrives live).
      await hubCaughtUp(second);
      const r = await resume(second.wsUrl, u.token, cursor);
      assert.deepEqual(r.connected.data['resume'], { requested: true, ok: true, replayed: 2 });
      assert.deepEqual(r.replayedIds, missed);
    } finally {
      await second?.close();
      await first.close();
    }
  });
});

describe('sqlite: a database file restored from a backup', () => {
  it('rotates the epoch at start-up when the log is behind the mark; a plain restart does not', async () => {
    const r = await startRestartable();
    const dir = mkdtempSync(join(tmpdir(), 'skypush-backup-'));
    try {
      const path = r.current.config.database.sqlitePath as string;
      const mark = join(r.current.config.dataDir, HISTORY_MARK_FILE);
      const u = await r.current.createUser('file');
      const s = await connect(r.wsUrl, { token: u.token });
      await s.waitFor((f) => f.type === 'CONNECTED');
      await cursorOfMessage(s, await send(r.current, u.id, 'kept'));
      // An online backup, as docs/OPERATIONS.md says (sqlite3 ".backup"): consistent whatever the WAL holds.
      const src = new SQLite(path, { readonly: true });
      await src.backup(join(dir, 'backup.db'));
      src.close();
      await cursorOfMessage(s, await send(r.current, u.id, 'lost 1'));
      const lost = await cursorOfMessage(s, await send(r.current, u.id, 'lost 2'));
      await s.close();
      await r.stop();
      assert.equal(statSync(mark).mode & 0o777, 0o600, 'the mark is private');

      copyFileSync(join(dir, 'backup.db'), path);
      for (const f of [`${path}-wal`, `${path}-shm`]) if (existsSync(f)) rmSync(f);
      await r.start();
      const reused = await send(r.current, u.id, 'new');
      const epoch = await storedEpoch(r.current.app);
      assert.notEqual(epoch, epochOf(lost));
      assert.equal(rotations(r.current.logs).length, 1);
      const fresh = await connect(r.wsUrl, { token: u.token });
      const newCursor = (await fresh.waitFor((f) => f.type === 'CONNECTED')).data['cursor'] as string;
      await fresh.close();
      assert.ok(
        seqOf(newCursor) >= seqOf(lost) - 1,
        `the restored file reuses seqs (${newCursor} vs ${lost})`,
      );
      const resumed = await resume(r.wsUrl, u.token, lost);
      assert.equal(resumed.resync?.data['reason'], 'foreign');
      assert.deepEqual(resumed.replayedIds, []);
      assert.ok(reused > 0);

      // A restart without a restore: same epoch, the cursor minted before it resumes.
      await r.stop();
      await r.start();
      assert.equal(await storedEpoch(r.current.app), epoch);
      assert.deepEqual(rotations(r.current.logs), []);
      const after = await send(r.current, u.id, 'after restart');
      await hubCaughtUp(r.current);
      const again = await resume(r.wsUrl, u.token, newCursor);
      assert.deepEqual(again.connected.data['resume'], { requested: true, ok: true, replayed: 1 });
      assert.deepEqual(again.replayedIds, [after]);
    } finally {
      await r.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('sqlite: the mark beside the database', () => {
  it('ignores a mark about another file; a mark of another epoch for this file rotates', async () => {
    const r = await startRestartable();
    try {
      const path = r.current.config.database.sqlitePath as string;
      const mark = join(r.current.config.dataDir, HISTORY_MARK_FILE);
      const epoch = await storedEpoch(r.current.app);
      await r.stop();
      const written = JSON.parse(readFileSync(mark, 'utf8')) as {
        database: string;
        epoch: string;
        seq: number;
      };
      assert.equal(written.epoch, epoch);
      assert.equal(written.database, resolve(path));

      writeFileSync(mark, JSON.stringify({ ...written, database: '/elsewhere/skypush.db', seq: 999 }));
      await r.start();
      assert.equal(await storedEpoch(r.current.app), epoch, 'another file: no rotation');
      await r.stop();

      // This file, but carrying an epoch other than the one served last (a copy from before a rotation).
      writeFileSync(mark, JSON.stringify({ ...written, epoch: 'abcdefabcdef' }));
      await r.start();
      assert.notEqual(await storedEpoch(r.current.app), epoch);
      assert.equal(rotations(r.current.logs).length, 1);
    } finally {
      await r.close();
    }
  });
});

for (const dialect of DIALECTS) {
  describe(`${dialect}: the log goes back under a running node`, () => {
    it('rotates the epoch, closes connections with 1012 and follows the new log', async () => {
      const t = await startApp({ dialect });
      try {
        const u = await t.createUser('regress');
        const s = await connect(t.wsUrl, { token: u.token });
        await s.waitFor((f) => f.type === 'CONNECTED');
        const first = await cursorOfMessage(s, await send(t, u.id, 'one'));
        await cursorOfMessage(s, await send(t, u.id, 'two'));
        const lost = await cursorOfMessage(s, await send(t, u.id, 'three'));

        // As a restore under a running node would: the log and its sequence go back to the first event.
        const { db } = t.app.store;
        await db.deleteFrom('events').where('seq', '>', seqOf(first)).execute();
        if (dialect === 'postgres')
          await sql`select setval(pg_get_serial_sequence('events', 'seq'), ${seqOf(first)})`.execute(db);
        else await sql`update sqlite_sequence set seq = ${seqOf(first)} where name = 'events'`.execute(db);
        const epoch = await t.app.history.check();

        assert.notEqual(epoch, epochOf(lost));
        assert.deepEqual(await s.closed, { code: 1012, reason: 'service restart' });
        const resumed = await resume(t.wsUrl, u.token, lost);
        assert.equal(resumed.resync?.data['reason'], 'foreign');
        assert.equal(epochOf(resumed.resync?.data['cursor'] as string), epoch);

        // The new log reuses seqs below the old tail: live delivery must follow it from its head.
        const fresh = await connect(t.wsUrl, { token: u.token });
        await fresh.waitFor((f) => f.type === 'CONNECTED');
        const id = await send(t, u.id, 'after');
        const cursor = await cursorOfMessage(fresh, id);
        assert.equal(epochOf(cursor), epoch);
        assert.ok(seqOf(cursor) <= seqOf(lost), `a reused seq (${cursor}) is delivered live`);
        await fresh.close();
        assert.equal(rotations(t.logs).length, 1);
      } finally {
        await t.close();
      }
    });
  });
}
