/**
 * Login floods over real HTTP: concurrent wrong guesses for one pair are cut off at the lockout
 * threshold before they are hashed (one node and two nodes sharing Redis), and /healthz and sends keep
 * answering while hundreds of logins hammer the hasher.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { REDIS_URL, startApp, type TestApp } from '../helpers/app.ts';
import { heldKdf, until, type HeldKdf } from '../auth/held-kdf.ts';

const LOGIN = '/api/v1/auth/login';
const FLOODER = fileURLToPath(new URL('../auth/login-flooder.ts', import.meta.url));
const MAX_FAILURES = 5;

interface Answer {
  status: number;
  code: number;
  retryAfter: string | null;
}

async function login(url: string, username: string, password: string, ip?: string): Promise<Answer> {
  const res = await fetch(url + LOGIN, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(ip && { 'x-forwarded-for': ip }) },
    body: JSON.stringify({ username, password }),
  });
  const body = (await res.json()) as { code: number };
  return { status: res.status, code: body.code, retryAfter: res.headers.get('retry-after') };
}

const guardPatch = (c: TestApp['config']) => ({
  ...c,
  // The per-source limit is tested apart (login-limits.test.ts); here only the lockout may cut in.
  auth: { ...c.auth, loginMaxFailures: MAX_FAILURES, loginRateLimit: 100_000 },
});

/**
 * Fires `total` concurrent wrong guesses for one pair, spread over `urls`, while hashes are held; checks
 * that all but `MAX_FAILURES` are refused with 429 before any held hash is let go, then lets them go.
 */
async function floodOnePair(urls: string[], k: HeldKdf, total: number): Promise<Answer[]> {
  k.reset();
  k.hold();
  let settled = 0;
  const answers = Array.from({ length: total }, (_, i) =>
    login(urls[i % urls.length] as string, 'victim', 'wrong-password').finally(() => settled++),
  );
  try {
    await until(() => settled >= total - MAX_FAILURES, 'the refusals', 60_000);
  } finally {
    k.release();
  }
  const all = await Promise.all(answers);
  const refused = all.filter((a) => a.status === 429);
  const checked = all.filter((a) => a.status === 401);
  assert.equal(checked.length + refused.length, total, 'only 401 and 429 answers');
  assert.equal(checked.length, MAX_FAILURES, 'exactly the threshold was checked');
  assert.ok(k.runs <= MAX_FAILURES, `${k.runs} hashes ran for ${total} guesses`);
  for (const r of refused) {
    assert.equal(r.code, 42901);
    assert.ok(Number(r.retryAfter) >= 1, `Retry-After ${r.retryAfter}`);
  }
  return all;
}

describe('login flood: attempts are counted before the hash', () => {
  it('one node: 1,000 concurrent wrong guesses for one pair run at most the threshold of hashes', async () => {
    const k = heldKdf();
    const t = await startApp({ kdf: k.kdf, patch: guardPatch });
    try {
      await t.createUser('victim', { password: 'victim-password' });
      await t.createUser('owner', { password: 'owner-password' });
      await floodOnePair([t.url], k, 1000);
      const after = await login(t.url, 'victim', 'victim-password');
      assert.equal(after.status, 429, 'the pair is locked out now, right password included');
      // Fewer concurrent failures than the threshold leave the right password through.
      const near = await Promise.all(
        Array.from({ length: MAX_FAILURES - 1 }, () => login(t.url, 'owner', 'wrong-password')),
      );
      assert.deepEqual(
        near.map((a) => a.status),
        Array(MAX_FAILURES - 1).fill(401),
      );
      assert.equal((await login(t.url, 'owner', 'owner-password')).status, 200);
      assert.ok(
        !t.logs.some((l) => /victim|owner|wrong-password/.test(l)),
        'no username or password in the logs',
      );
    } finally {
      await t.close();
    }
  });

  it('two nodes sharing Redis: 1,000 guesses spread over both run at most the threshold of hashes in all', async () => {
    const k = heldKdf();
    const prefix = `test-flood-${randomUUID()}:`;
    const env = { SKYPUSH_REDIS_URL: REDIS_URL, SKYPUSH_REDIS_PREFIX: prefix };
    const nodes = [
      await startApp({ kdf: k.kdf, env, patch: guardPatch }),
      await startApp({ kdf: k.kdf, env, patch: guardPatch }),
    ];
    const redis = new Redis(REDIS_URL);
    try {
      for (const n of nodes) await n.createUser('victim', { password: 'victim-password' });
      await floodOnePair(
        nodes.map((n) => n.url),
        k,
        1000,
      );
      for (const n of nodes) assert.equal((await login(n.url, 'victim', 'victim-password')).status, 429);
      const keys = await redis.keys(`${prefix}login:*`);
      assert.ok(
        keys.some((key) => key.endsWith(':lock')),
        'the lock lives in Redis',
      );
    } finally {
      for (const n of nodes) await n.close();
      const keys = await redis.keys(`${prefix}*`);
      if (keys.length > 0) await redis.del(...keys);
      await redis.quit();
    }
  });
});

describe('login flood: the node keeps serving', () => {
  it('answers /healthz and sends promptly while hundreds of logins hash at real cost (200 in flight from another process)', async () => {
    const t = await startApp({
      env: { SKYPUSH_TRUST_PROXY: 'true' },
      // Real work on libuv's pool: ~50 ms a hash here, so the hasher stays saturated.
      patch: (c) => ({ ...c, auth: { ...c.auth, scryptN: 2 ** 14 } }),
    });
    let flooder: ChildProcess | undefined;
    try {
      const user = await t.createUser('flood-target', { password: 'flood-password' });
      const child = spawn(process.execPath, ['--import', 'tsx', FLOODER, t.url, '200', '4000'], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      flooder = child;
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      const done = once(child, 'exit');
      // Checks start once the flood is on: the hasher is full.
      await until(() => t.app.hasher.load().queued >= t.config.auth.hashQueue, 'a full hasher', 30_000);
      const timings: Array<{ what: string; ms: number; status: number }> = [];
      while (child.exitCode === null && timings.length < 20) {
        let start = performance.now();
        const health = await fetch(`${t.url}/healthz`);
        timings.push({ what: 'healthz', ms: performance.now() - start, status: health.status });
        start = performance.now();
        const send = await t.request('POST', '/api/v1/messages/send', {
          token: t.adminToken,
          body: { title: 'during a flood', content: 'still here', targetType: 'user', targetIds: [user.id] },
        });
        timings.push({ what: 'send', ms: performance.now() - start, status: send.status });
        await new Promise((r) => setTimeout(r, 200));
      }
      await done;
      const statuses = JSON.parse(out) as Record<string, number>;
      assert.ok(timings.length >= 4, `${timings.length} checks during the flood`);
      // Generous bounds: this box may be shared, so one slow answer is allowed for; a loop that
      // hashed on its own thread would be slow on every check.
      const sorted = timings.map((c) => c.ms).sort((a, b) => a - b);
      const median = sorted[Math.floor(sorted.length / 2)] ?? Infinity;
      assert.ok(median < 1000, `median answer ${Math.round(median)} ms`);
      for (const c of timings) {
        assert.equal(c.status, 200, `${c.what} answered ${c.status}`);
        assert.ok(c.ms < 5000, `${c.what} took ${Math.round(c.ms)} ms`);
      }
      assert.ok((statuses['503'] ?? 0) > 0, `the hasher was full at times: ${out}`);
      for (const s of Object.keys(statuses)) assert.ok(['401', '429', '503'].includes(s), `flood got ${s}`);
    } finally {
      if (flooder?.exitCode === null) flooder.kill();
      await t.close();
    }
  });
});
