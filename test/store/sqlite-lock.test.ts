/**
 * Issue #11 item 7: while another process holds the SQLite write lock, waiting for it does not block
 * the event loop. /healthz and reads answer at once; a send waits (asynchronously) and succeeds once the
 * lock is released, or answers 503 + Retry-After after SKYPUSH_SQLITE_LOCK_TIMEOUT_MS having written
 * nothing. The lock is held by a real second process with its own connection to the same file.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { after, before, describe, it } from 'node:test';
import { startApp, type TestApp } from '../helpers/app.ts';
import { connect } from '../helpers/ws-client.ts';

const BETTER_SQLITE3 = createRequire(import.meta.url).resolve('better-sqlite3');

// The holder writes a row inside its transaction, so the lock is the write lock, then commits after HOLD_MS.
const HOLDER = `
const Database = require(process.env.BSQL);
const db = new Database(process.env.DB);
db.exec('BEGIN IMMEDIATE');
db.prepare("insert into skypush_meta (key, value) values ('held', '1') on conflict (key) do update set value = '1'").run();
process.stdout.write('locked\\n');
setTimeout(() => {
  db.exec('COMMIT');
  db.close();
  process.stdout.write('released\\n');
}, Number(process.env.HOLD_MS));
`;

interface Holder {
  /** performance.now() when the holder said it committed. */
  released: Promise<number>;
}

/** Starts a process holding the write lock on `path` for `holdMs`; resolves once it holds it. */
function holdWriteLock(path: string, holdMs: number): Promise<Holder> {
  const proc = spawn(process.execPath, ['-e', HOLDER], {
    env: { ...process.env, BSQL: BETTER_SQLITE3, DB: path, HOLD_MS: String(holdMs) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  let onReleased: (at: number) => void = () => {};
  const released = new Promise<number>((resolve) => (onReleased = resolve));
  return new Promise((resolve, reject) => {
    proc.once('exit', (code) => (code === 0 ? undefined : reject(new Error(`holder exited ${code}`))));
    proc.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      if (out.includes('released')) onReleased(performance.now());
      if (out.includes('locked')) resolve({ released });
    });
  });
}

/** Polls `cond` every 5 ms; throws after `ms`. */
async function waitFor(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > end) throw new Error(`no ${what} within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Duration of one request, in ms, and its status. */
async function timed(t: TestApp, method: string, path: string, token?: string) {
  const start = performance.now();
  const r = await t.request(method, path, token === undefined ? {} : { token });
  return { ms: performance.now() - start, status: r.status };
}

async function countMessages(t: TestApp): Promise<number> {
  const r = await t.app.store.db
    .selectFrom('messages')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .executeTakeFirstOrThrow();
  return Number(r.n);
}

const send = (t: TestApp, targetIds: number[], title: string) =>
  t.request<{ messageId: number }>('POST', '/api/v1/messages/send', {
    token: t.adminToken,
    body: { title, content: 'c', targetType: 'user', targetIds },
  });

describe('sqlite: another process holds the write lock', () => {
  let t: TestApp;
  let bob: { id: number; token: string };
  before(async () => {
    t = await startApp({ dialect: 'sqlite' });
    bob = await t.createUser('bob', { id: 4001 });
  });
  after(async () => t.close());

  it('keeps /healthz, reads and sockets answering while a send waits, then the send succeeds after release', async () => {
    const sock = await connect(t.wsUrl, { token: bob.token });
    await sock.waitFor((f) => f.type === 'CONNECTED');
    const holder = await holdWriteLock(t.config.database.sqlitePath as string, 3000);
    const sending = send(t, [bob.id], 'waited');
    let sentAt = 0;
    void sending.then(() => (sentAt = performance.now()));
    // Generous liveness bounds: with a blocking busy_timeout these took seconds.
    for (let i = 0; i < 10; i++) {
      const h = await timed(t, 'GET', '/healthz');
      assert.equal(h.status, 200);
      assert.ok(h.ms < 200, `/healthz took ${h.ms} ms`);
      const list = await timed(t, 'GET', '/api/v1/messages', bob.token);
      assert.equal(list.status, 200);
      assert.ok(list.ms < 500, `an inbox read took ${list.ms} ms`);
      sock.send({ type: 'HEARTBEAT', data: { ping: 'pong' }, timestamp: Math.floor(Date.now() / 1000) });
      const replies = () => sock.frames.filter((f) => f.type === 'HEARTBEAT_REPLY').length;
      await waitFor(() => replies() === i + 1, 500, 'a HEARTBEAT_REPLY');
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(sentAt, 0, 'the send finished while the lock was held');
    const r = await sending;
    const releasedAt = await holder.released;
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.ok(sentAt >= releasedAt, 'the send finished before the holder released the lock');
    const inbox = await t.request<{ items: Array<{ title: string }> }>('GET', '/api/v1/messages', {
      token: bob.token,
    });
    assert.deepEqual(
      inbox.body.data.items.map((m) => m.title),
      ['waited'],
    );
    const pushed = await sock.waitFor((f) => f.type === 'NEW_MESSAGE');
    assert.equal(pushed.data['title'], 'waited');
    await sock.close();
  });
});

describe('sqlite: the write lock is held past SKYPUSH_SQLITE_LOCK_TIMEOUT_MS', () => {
  let t: TestApp;
  let bob: { id: number; token: string };
  before(async () => {
    t = await startApp({ dialect: 'sqlite', env: { SKYPUSH_SQLITE_LOCK_TIMEOUT_MS: '500' } });
    bob = await t.createUser('bob', { id: 4002 });
  });
  after(async () => t.close());

  it('answers 503 with Retry-After, writes nothing, and serves again after release', async () => {
    const before = await countMessages(t);
    const holder = await holdWriteLock(t.config.database.sqlitePath as string, 2000);
    const r = await send(t, [bob.id], 'refused');
    assert.equal(r.status, 503);
    assert.equal(r.body.code, 50301);
    assert.equal(r.headers.get('retry-after'), '1');
    const h = await timed(t, 'GET', '/healthz');
    assert.equal(h.status, 200);
    await holder.released;
    assert.equal(await countMessages(t), before);
    const unread = await t.request<{ count: number }>('GET', '/api/v1/messages/unread-count', {
      token: bob.token,
    });
    assert.equal(unread.status, 200);
    assert.deepEqual(unread.body.data, { count: 0 });
    const again = await send(t, [bob.id], 'after');
    assert.equal(again.status, 200, JSON.stringify(again.body));
    assert.equal(await countMessages(t), before + 1);
  });
});
