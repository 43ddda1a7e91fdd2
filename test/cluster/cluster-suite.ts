/**
 * The cluster suite, run once per shape of cluster (cluster.test.ts: PostgreSQL + Redis,
 * cluster-pg.test.ts: PostgreSQL alone): three real skypush processes on loopback ports sharing the
 * machine's PostgreSQL (a database created for the run) and, in the first shape, its Redis (a key
 * prefix of their own). Fan-out across nodes, cluster-wide presence, the shared login lockout, kill -9
 * of a node, commit order under concurrent senders on several nodes, and (where the shape can kill its
 * wake-up connections alone) delivery while every node's wake-up connection is killed.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createPgDatabase } from '../helpers/app.ts';
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

/** A pair's lockout as the cluster's shared store holds it. */
export interface LockRecords {
  /** Every key or row naming a locked-out pair, as text (checked for usernames and addresses). */
  names: string[];
  /** How long the pair's lock has left. */
  lockMs: number;
}

/** One shape of cluster: its extra environment, and how to look into what it shares. */
export interface ClusterShape {
  name: string;
  /** Environment for every node, beyond the database URL and the test's timings. */
  env(): Record<string, string>;
  /** The lockout the shared store holds for the cluster (`env` is the nodes' environment). */
  lockRecords(env: Record<string, string>): Promise<LockRecords>;
  /** Kills every node's wake-up connection without touching anything else; absent: not testable here. */
  killWakeUps?: (env: Record<string, string>) => Promise<void>;
  /** What a node logs once its wake-up connection is back. */
  reconnectedLine?: RegExp;
}

export function clusterSuite(shape: ClusterShape): void {
  describe(`cluster: 3 nodes on ${shape.name}`, () => {
    clusterTests(shape);
  });
}

function clusterTests(shape: ClusterShape): void {
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
      ...shape.env(),
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

  it('counts failed logins across nodes: the lockout holds cluster-wide, and its records name no one', async () => {
    const login = (i: number, password: string) =>
      api(node(i).url, 'POST', '/api/v1/auth/login', { body: { username: 'lock-probe', password } });
    // Five failures (the default limit) for one pair, spread over the three nodes.
    for (const i of [0, 1, 2, 0, 1]) assert.equal((await login(i, 'wrong-password')).status, 401);
    for (const i of [0, 1, 2]) {
      const r = await login(i, 'wrong-password');
      assert.equal(r.status, 429, `node ${i} refuses the locked pair`);
      assert.equal(r.body.code, 42901);
    }
    const { names, lockMs } = await shape.lockRecords(env);
    assert.ok(names.length > 0, `the lock lives in ${shape.name}`);
    assert.ok(
      names.every((k) => !k.includes('lock-probe') && !k.includes('127.0.0.1')),
      names.join(),
    );
    assert.ok(lockMs > 0 && lockMs <= 15 * 60_000, `lock expires by itself (${lockMs} ms)`);
    // Another account from the same address is not affected.
    const other = await api(node(2).url, 'POST', '/api/v1/auth/login', {
      body: { username: 'admin', password: 'wrong-password' },
    });
    assert.equal(other.status, 401);
  });

  const killWakeUps = shape.killWakeUps;
  if (killWakeUps)
    it('delivers every message exactly once, in order, while every node’s wake-up connection is killed', async () => {
      const client = new ResumingClient(node(0).wsUrl, await mint(U));
      await client.connect();
      const start = client.newMessageIds().length;
      const sent: number[] = [];
      let sending = true;
      const sender = (async () => {
        while (sending) {
          sent.push(await sendVia(2, [U]));
          await sleep(10);
        }
      })();
      await sleep(150);
      await killWakeUps(env);
      await sleep(400);
      sending = false;
      await sender;
      await client.until(() => client.newMessageIds().length - start >= sent.length, 10_000, 'all messages');
      await sleep(3 * POLL_MS);
      assert.deepEqual(client.newMessageIds().slice(start), sent, 'each once, in order');
      assert.equal(client.connects.length, 1, 'the client’s own connection was never touched');
      for (const n of nodes)
        await eventually(
          async () => (shape.reconnectedLine ?? /reconnected/).test(n.output.join('')),
          5000,
          'every node says its wake-ups are back',
        );
      await client.close();
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
    const onlineSeenByA = async () =>
      (await api<{ users: number[] }>(node(0).url, 'GET', '/api/v1/ws/online/users', { token: admin })).body
        .data.users;
    await eventually(async () => (await onlineSeenByA()).includes(V), 2000, 'A sees V online on B');

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
        const users = await onlineSeenByA();
        return users.includes(U) && !users.includes(V);
      },
      1500 + 3000,
      'V leaves the online list',
    );
    assert.ok(Date.now() - started <= 4500);
    await resumed.close();
  });
}
