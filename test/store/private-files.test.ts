/**
 * Issue #11 item 6: the data folder is created 0700 and the SQLite database, its -wal/-shm and the kept
 * JWT secret 0600, whatever the umask; a kept secret shorter than 32 bytes stops start-up with a message
 * naming the file and never showing the secret. Checked on a real server process.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { api, loginAdmin, startNode } from '../helpers/node-process.ts';

const mode = (path: string) => statSync(path).mode & 0o777;

describe('private files', () => {
  const root = mkdtempSync(join(tmpdir(), 'skypush-files-'));
  after(() => rmSync(root, { recursive: true, force: true }));

  it('creates the data folder 0700 and the database, its WAL files and the secret 0600, even under umask 000', async () => {
    const dir = join(root, 'fresh', 'data');
    const previous = process.umask(0);
    let node;
    try {
      // The child inherits the umask: with 000, anything left to it would come out world-readable.
      node = await startNode({
        SKYPUSH_DATABASE_URL: `sqlite:${join(dir, 'skypush.db')}`,
        SKYPUSH_JWT_SECRET: '',
      });
    } finally {
      process.umask(previous);
    }
    try {
      const token = await loginAdmin(node.url);
      // A write, so the WAL holds something.
      const r = await api(node.url, 'POST', '/api/v1/users', { token, body: { username: 'carol' } });
      assert.equal(r.status, 201, JSON.stringify(r.body));
      assert.equal(mode(dir), 0o700);
      for (const f of ['skypush.db', 'skypush.db-wal', 'skypush.db-shm', 'jwt-secret'])
        assert.equal(mode(join(dir, f)).toString(8), '600', f);
    } finally {
      await node.stop();
    }
  });

  it('narrows an existing world-readable database to 0600', async () => {
    const dir = join(root, 'existing');
    mkdirSync(dir, { mode: 0o755 });
    writeFileSync(join(dir, 'skypush.db'), '', { mode: 0o644 });
    const node = await startNode({ SKYPUSH_DATABASE_URL: `sqlite:${join(dir, 'skypush.db')}` });
    try {
      assert.equal(mode(join(dir, 'skypush.db')), 0o600);
      // A folder the operator made is theirs: left as it is.
      assert.equal(mode(dir), 0o755);
    } finally {
      await node.stop();
    }
  });

  for (const [name, content] of [
    ['short', 'tiny-secret-Zq9\n'],
    ['empty', ''],
  ] as const) {
    it(`refuses to start with a ${name} jwt-secret file, naming the file and not the secret`, async () => {
      const dir = join(root, name);
      mkdirSync(dir, { mode: 0o700 });
      const file = join(dir, 'jwt-secret');
      writeFileSync(file, content, { mode: 0o600 });
      await assert.rejects(
        startNode({ SKYPUSH_DATABASE_URL: `sqlite:${join(dir, 'skypush.db')}`, SKYPUSH_JWT_SECRET: '' }),
        (e: Error) => {
          assert.match(e.message, /exited with [12] before listening/);
          assert.ok(e.message.includes(`${file}: the JWT secret kept there must be at least 32 bytes`));
          if (content) assert.ok(!e.message.includes(content.trim()), 'the secret was printed');
          return true;
        },
      );
    });
  }
});
