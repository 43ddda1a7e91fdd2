import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createPasswordHasher } from '../src/auth/password.ts';
import { openStore } from '../src/store/database.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const MAIN = ['--import', 'tsx', 'src/main.ts'];

/** The parent's environment without any SKYPUSH_ variable, plus `env`. */
function childEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SKYPUSH_')));
  return { ...clean, SKYPUSH_HOST: '127.0.0.1', SKYPUSH_PORT: '0', SKYPUSH_SHUTDOWN_DRAIN_MS: '0', ...env };
}

interface Output {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI to completion. */
function run(args: string[], env: Record<string, string>, timeoutMs = 30_000): Promise<Output> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [...MAIN, ...args], { cwd: ROOT, env: childEnv(env) });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    proc.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`skypush ${args.join(' ')} did not exit; stdout=${stdout} stderr=${stderr}`));
    }, timeoutMs);
    proc.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

interface Server {
  proc: ChildProcess;
  url: string;
  output: () => Output;
  /** SIGTERM, then wait for the exit code. */
  stop(): Promise<number | null>;
}

/** Starts `serve` and resolves once it logs its address. */
function serve(env: Record<string, string>, timeoutMs = 30_000): Promise<Server> {
  const proc = spawn(process.execPath, [...MAIN, 'serve'], { cwd: ROOT, env: childEnv(env) });
  let stdout = '';
  let stderr = '';
  const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`serve did not start; stdout=${stdout} stderr=${stderr}`));
    }, timeoutMs);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`serve exited with ${code}; stdout=${stdout} stderr=${stderr}`));
    });
    proc.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    proc.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
      const m = /"address":"(http:\/\/[^"]+)"[^\n]*"msg":"skypush listening"/.exec(stdout);
      if (!m?.[1]) return;
      clearTimeout(timer);
      resolve({
        proc,
        url: m[1],
        output: () => ({ code: proc.exitCode, stdout, stderr }),
        async stop() {
          proc.kill('SIGTERM');
          return exited;
        },
      });
    });
  });
}

async function login(url: string, username: string, password: string) {
  const res = await fetch(`${url}/api/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password }),
  });
  return { status: res.status, body: (await res.json()) as { data: { accessToken: string } } };
}

describe('the skypush CLI', { concurrency: true }, () => {
  const dirs: string[] = [];
  const tempDir = () => {
    const d = mkdtempSync(join(tmpdir(), 'skypush-cli-'));
    dirs.push(d);
    return d;
  };
  after(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('refuses to serve with a bad variable: non-zero exit and a message naming it', async () => {
    const dir = tempDir();
    const r = await run(['serve'], {
      SKYPUSH_DATABASE_URL: `sqlite:${join(dir, 'db.sqlite')}`,
      SKYPUSH_PORT: 'eighty',
      SKYPUSH_LOG_LEVEL: 'loud',
    });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /SKYPUSH_PORT="eighty"/);
    assert.match(r.stderr, /SKYPUSH_LOG_LEVEL="loud"/);
    assert.doesNotMatch(r.stderr, /\bat .+\.ts:\d+/, 'a message, not a stack trace');
  });

  it('refuses an unknown command with a non-zero exit', async () => {
    const r = await run(['frobnicate'], { SKYPUSH_DATABASE_URL: 'sqlite::memory:' });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /unknown command "frobnicate"/);
  });

  it('creates the first admin with a generated password printed once on stdout, and keeps it and the tokens over a restart', async () => {
    const dir = tempDir();
    const env = { SKYPUSH_DATABASE_URL: `sqlite:${join(dir, 'skypush.db')}` };
    const first = await serve(env);
    let password: string;
    let token: string;
    try {
      const m = /Created admin user "admin" with password: (\S+)/.exec(first.output().stdout);
      assert.ok(m?.[1], first.output().stdout);
      password = m[1];
      const ok = await login(first.url, 'admin', password);
      assert.equal(ok.status, 200);
      token = ok.body.data.accessToken;
    } finally {
      assert.equal(await first.stop(), 0);
    }
    const out1 = first.output();
    assert.equal(out1.stdout.split(password).length - 1, 1, 'the password is printed exactly once');
    assert.equal(out1.stderr.includes(password), false);
    // The generated JWT secret is kept in the data folder, readable by the owner only.
    assert.equal(statSync(join(dir, 'jwt-secret')).mode & 0o777, 0o600);

    const second = await serve(env);
    try {
      assert.doesNotMatch(second.output().stdout, /Created admin user/);
      assert.equal((await login(second.url, 'admin', password)).status, 200);
      const me = await fetch(`${second.url}/api/v1/auth/me`, {
        headers: { authorization: `Bearer ${token}` },
      });
      assert.equal(me.status, 200, 'a token from before the restart is still valid');
    } finally {
      assert.equal(await second.stop(), 0);
    }
    assert.equal(second.output().stdout.includes(password), false);
  });

  it('uses SKYPUSH_ADMIN_PASSWORD for the first admin without printing it', async () => {
    const dir = tempDir();
    const server = await serve({
      SKYPUSH_DATABASE_URL: `sqlite:${join(dir, 'skypush.db')}`,
      SKYPUSH_ADMIN_USERNAME: 'root',
      SKYPUSH_ADMIN_PASSWORD: 'chosen-admin-password',
    });
    try {
      assert.equal((await login(server.url, 'root', 'chosen-admin-password')).status, 200);
    } finally {
      await server.stop();
    }
    const out = server.output();
    assert.doesNotMatch(out.stdout, /Created admin user/);
    assert.equal(`${out.stdout}${out.stderr}`.includes('chosen-admin-password'), false);
  });

  it('adds a user with `user add` against a SQLite file, hashed at the OWASP cost', async () => {
    const dir = tempDir();
    const env = { SKYPUSH_DATABASE_URL: `sqlite:${join(dir, 'cli.db')}` };
    const r = await run(
      [
        'user',
        'add',
        '--username',
        'cli-user',
        '--password',
        'cli-password-1',
        '--role',
        'admin',
        '--id',
        '4242',
      ],
      env,
    );
    assert.equal(r.code, 0, r.stderr);
    const user = JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '') as Record<string, unknown>;
    assert.equal(user['id'], 4242);
    assert.equal(user['username'], 'cli-user');
    assert.equal(user['role'], 'admin');
    assert.equal(user['hasPassword'], true);
    assert.equal(`${r.stdout}${r.stderr}`.includes('cli-password-1'), false);

    const again = await run(['user', 'add', '--username', 'cli-user'], env);
    assert.notEqual(again.code, 0);
    assert.match(again.stderr, /username already exists/);
    const badRole = await run(['user', 'add', '--username', 'x', '--role', 'root'], env);
    assert.notEqual(badRole.code, 0);
    assert.match(badRole.stderr, /--role must be admin or user/);

    const store = openStore({
      url: env.SKYPUSH_DATABASE_URL,
      kind: 'sqlite',
      sqlitePath: join(dir, 'cli.db'),
      poolSize: 1,
      statementTimeoutMs: 5000,
      connectTimeoutMs: 5000,
    });
    try {
      const rows = await store.db.selectFrom('users').selectAll().execute();
      assert.equal(rows.length, 1);
      const hash = rows[0]?.password_hash ?? '';
      assert.match(hash, /^scrypt\$131072\$8\$1\$/);
      const hasher = createPasswordHasher({ N: 2 ** 17, concurrency: 1 });
      assert.equal(await hasher.verify('cli-password-1', hash), true);
    } finally {
      await store.close();
    }
  });
});
