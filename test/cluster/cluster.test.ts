/**
 * Three real skypush processes on loopback ports sharing the machine's PostgreSQL (a database created
 * for this test) and Redis (a key prefix of its own): fan-out across nodes, cluster-wide presence,
 * kill -9 of a node, and commit order under concurrent senders on several nodes.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { REDIS_URL, createPgDatabase } from '../helpers/app.ts';
import { api, loginAdmin, startNode, type NodeProcess } from '../helpers/node-process.ts';
import { ResumingClient } from '../helpers/resuming-client.ts';
import { mint } from '../helpers/tokens.ts';
import { connect, type TestSocket } from '../helpers/ws-client.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The nodes' fallback tail-read poll (SKYPUSH_EVENT_POLL_INTERVAL_MS), shorter than the 1 s default so
 * that "exactly once" checks can wait past more than two polls, any of which could deliver a duplicate.
 */
const POLL_MS = 200;

async function eventually(pred: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await sleep(50);
  }
}

describe('cluster: 3 nodes on PostgreSQL + Redis', () => {
  let nodes: NodeProcess[] = [];
  let drop: () => Promise<void>;
  let admin: string;
  let env: Record<string, string>;
  const [U, V] = [501, 502];

  before(async () => {
    const db = await createPgDatabase();
    drop = db.drop;
    env = {
      SKYPUSH_DATABASE_URL: db.url,
      SKYPUSH_REDIS_URL: REDIS_URL,
      SKYPUSH_REDIS_PREFIX: `skypush-test-${randomBytes(4).toString('hex')}:`,
      SKYPUSH_PRESENCE_TTL_MS: '1500',
      SKYPUSH_REDIS_PROBE_INTERVAL_MS: '500',
      SKYPUSH_EXPIRY_SWEEP_MS: '50',
      SKYPUSH_EVENT_POLL_INTERVAL_MS: String(POLL_MS),
    };
    const first = await startNode({ ...env, SKYPUSH_NODE_ID: 'A' });
    nodes = [
      first,
      ...(await Promise.all([
        startNode({ ...env, SKYPUSH_NODE_ID: 'B' }),
        startNode({ ...env, SKYPUSH_NODE_ID: 'C' }),
      ])),
    ];
    admin = await loginAdmin(first.url);
    const bulk = await api(first.url, 'POST', '/api/v1/users/bulk', {
      token: admin,
      body: {
        users: [
          { id: U, username: 'u' },
          { id: V, username: 'v' },
        ],
      },
    });
    assert.equal(bulk.status, 200);
  });
  after(async () => {
    await Promise.all(nodes.map((n) => n.kill()));
    await drop();
  });

  const node = (i: number) => nodes[i] as NodeProcess;
  const sendVia = async (i: number, targetIds: number[]) => {
    const r = await api<{ messageId: number }>(node(i).url, 'POST', '/api/v1/messages/send', {
      token: admin,
      body: { title: 'x', content: 'y', targetType: 'user', targetIds },
    });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return r.body.data.messageId;
  };

  it('delivers a message sent via C exactly once to tabs on A and B; broadcast and presence are cluster-wide', async () => {
    const tokenU = await mint(U);
    const tokenV = await mint(V);
    const tabs: TestSocket[] = [
      await connect(node(0).wsUrl, { token: tokenU }),
      await connect(node(1).wsUrl, { token: tokenU }),
    ];
    const other = await connect(node(1).wsUrl, { token: tokenV });
    for (const s of [...tabs, other]) await s.waitFor((f) => f.type === 'UNREAD_COUNT');

    const id = await sendVia(2, [U]);
    for (const tab of tabs) await tab.waitFor((f) => f.type === 'NEW_MESSAGE' && f.data['messageId'] === id);
    // Past more than two polls on every node: a duplicate from the poll would have arrived by now.
    await sleep(3 * POLL_MS);
    for (const tab of tabs)
      assert.equal(
        tab.frames.filter((f) => f.type === 'NEW_MESSAGE' && f.data['messageId'] === id).length,
        1,
      );
    assert.equal(other.frames.filter((f) => f.type === 'NEW_MESSAGE').length, 0, 'V got nothing meant for U');

    const online = await api<{ onlineCount: number; users: number[] }>(
      node(2).url,
      'GET',
      '/api/v1/ws/online/users',
      { token: admin },
    );
    assert.deepEqual(online.body.data, { onlineCount: 2, users: [U, V] });
    const check = await api<{ isOnline: boolean }>(
      node(2).url,
      'GET',
      `/api/v1/ws/online/check?userId=${V}`,
      { token: admin },
    );
    assert.equal(check.body.data.isOnline, true);

    const b = await api<{ recipients: number }>(node(2).url, 'POST', '/api/v1/ws/broadcast', {
      token: admin,
      body: { data: { title: 'all nodes' } },
    });
    assert.equal(b.body.data.recipients, 2);
    for (const s of [...tabs, other])
      await s.waitFor((f) => f.type === 'SYSTEM_NOTIFY' && f.data['title'] === 'all nodes');

    const all = await api<{ messageId: number }>(node(0).url, 'POST', '/api/v1/messages/send', {
      token: admin,
      body: { title: 'to everyone', content: 'c', targetType: 'all' },
    });
    for (const s of [...tabs, other])
      await s.waitFor((f) => f.type === 'NEW_MESSAGE' && f.data['messageId'] === all.body.data.messageId);
    await Promise.all([...tabs, other].map((s) => s.close()));
  });

  it('keeps cursor order under concurrent senders on two nodes, for a live client and a reconnecting one', async () => {
    const token = await mint(U);
    const live = await connect(node(1).wsUrl, { token });
    await live.waitFor((f) => f.type === 'UNREAD_COUNT');
    const hopper = new ResumingClient(node(0).wsUrl, token);
    await hopper.connect();
    const start = hopper.newMessageIds().length;
    const sent: number[] = [];
    let sending = true;
    const sender = async (i: number) => {
      while (sending) sent.push(await sendVia(i, [U]));
    };
    const senders = [sender(0), sender(2)];
    for (let i = 0; i < 15; i++) {
      await sleep(30);
      await hopper.drop();
      await hopper.connect();
    }
    sending = false;
    await Promise.all(senders);
    await hopper.until(
      () => hopper.newMessageIds().length - start >= sent.length,
      10_000,
      'hopper caught up',
    );
    const got = hopper.newMessageIds().slice(start);
    assert.deepEqual([...got].sort(), [...sent].sort(), 'reconnecting client: every message exactly once');
    const seqs = hopper.events.map((e) => Number(e.cursor?.split('.')[1]));
    for (let i = 1; i < seqs.length; i++)
      assert.ok((seqs[i] as number) > (seqs[i - 1] as number), 'reconnecting client: cursor order');

    await eventually(
      async () => live.frames.filter((f) => f.type === 'NEW_MESSAGE').length >= sent.length,
      10_000,
      'live client',
    );
    const liveFrames = live.frames.filter((f) => f.type === 'NEW_MESSAGE');
    assert.deepEqual(liveFrames.map((f) => f.data['messageId']).sort(), [...sent].sort());
    const liveSeqs = liveFrames.map((f) => Number(f.cursor?.split('.')[1]));
    for (let i = 1; i < liveSeqs.length; i++)
      assert.ok((liveSeqs[i] as number) > (liveSeqs[i - 1] as number), 'live client: cursor order');
    await live.close();
    await hopper.close();
  });

  it('announces each expired message once, though all three nodes look for expiries every 50 ms', async () => {
    const tab = await connect(node(0).wsUrl, { token: await mint(U) });
    await tab.waitFor((f) => f.type === 'UNREAD_COUNT');
    const ids: number[] = [];
    for (let i = 0; i < 6; i++) {
      const r = await api<{ messageId: number }>(node(i % 3).url, 'POST', '/api/v1/messages/send', {
        token: admin,
        body: {
          title: 'brief',
          content: 'c',
          targetType: i % 2 ? 'all' : 'user',
          ...(i % 2 ? {} : { targetIds: [U] }),
          expiresAt: new Date(Date.now() + 1000 + i * 100).toISOString(),
        },
      });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      ids.push(r.body.data.messageId);
    }
    const expired = (id: number) =>
      tab.frames.filter(
        (f) => f.type === 'MESSAGE_DELETED' && f.data['messageId'] === id && f.data['reason'] === 'expired',
      ).length;
    await eventually(async () => ids.every((id) => expired(id) > 0), 8000, 'every expiry announced');
    await sleep(500);
    assert.deepEqual(
      ids.map(expired),
      ids.map(() => 1),
    );
    await tab.close();
  });

  it('counts failed logins across nodes: the lockout holds cluster-wide, and Redis keys name no one', async () => {
    const login = (i: number, password: string) =>
      api(node(i).url, 'POST', '/api/v1/auth/login', { body: { username: 'lock-probe', password } });
    // Five failures (the default limit) for one pair, spread over the three nodes.
    for (const i of [0, 1, 2, 0, 1]) assert.equal((await login(i, 'wrong-password')).status, 401);
    for (const i of [0, 1, 2]) {
      const r = await login(i, 'wrong-password');
      assert.equal(r.status, 429, `node ${i} refuses the locked pair`);
      assert.equal(r.body.code, 42901);
    }
    const redis = new Redis(REDIS_URL);
    try {
      const keys = await redis.keys(`${env.SKYPUSH_REDIS_PREFIX}login:*`);
      assert.ok(keys.length > 0, 'the lock lives in Redis');
      assert.ok(
        keys.every((k) => !k.includes('lock-probe') && !k.includes('127.0.0.1')),
        keys.join(),
      );
      const ttl = await redis.pttl(keys.find((k) => k.endsWith(':lock')) as string);
      assert.ok(ttl > 0 && ttl <= 15 * 60_000, `lock expires by itself (${ttl} ms)`);
    } finally {
      redis.disconnect();
    }
    // Another account from the same address is not affected.
    const other = await api(node(2).url, 'POST', '/api/v1/auth/login', {
      body: { username: 'admin', password: 'wrong-password' },
    });
    assert.equal(other.status, 401);
  });

  it('after kill -9 of node B its clients resume on A with no gap or duplicate, and B’s users drop off the online list', async () => {
    const tokenU = await mint(U);
    const tokenV = await mint(V);
    const onB = new ResumingClient(node(1).wsUrl, tokenU);
    await onB.connect();
    const v = await connect(node(1).wsUrl, { token: tokenV });
    await v.waitFor((f) => f.type === 'UNREAD_COUNT');
    const before = onB.newMessageIds().length;
    const sent = [await sendVia(2, [U]), await sendVia(2, [U])];
    await onB.until(() => onB.newMessageIds().length === before + 2);

    await node(1).kill();
    // Messages sent while U has no connection at all.
    for (let i = 0; i < 5; i++) sent.push(await sendVia(2, [U]));
    const resumed = new ResumingClient(node(0).wsUrl, tokenU);
    resumed.cursor = onB.cursor;
    await resumed.connect();
    sent.push(await sendVia(2, [U]));
    await resumed.until(() => resumed.newMessageIds().length === 6, 10_000, 'resume on A');
    assert.deepEqual([...onB.newMessageIds().slice(before), ...resumed.newMessageIds()], sent);

    const started = Date.now();
    await eventually(
      async () => {
        const r = await api<{ users: number[] }>(node(0).url, 'GET', '/api/v1/ws/online/users', {
          token: admin,
        });
        return r.body.data.users.includes(U) && !r.body.data.users.includes(V);
      },
      1500 + 3000,
      'V leaves the online list',
    );
    assert.ok(Date.now() - started <= 4500);
    await resumed.close();
  });
});
