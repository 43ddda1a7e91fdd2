/**
 * Infrastructure failures: a private redis-server killed and restarted mid-traffic, a pub/sub
 * connection killed by Redis, PostgreSQL cut off behind a TCP proxy, a user disabled mid-handshake (with
 * and without Redis), and, without Redis, a node's LISTEN connection cut off. Nothing committed is lost;
 * requests fail fast with 503 while the database is away and recover without a restart.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import pino from 'pino';
import { RedisBus } from '../../src/bus/redis-bus.ts';
import type { BusMessage } from '../../src/bus/bus.ts';
import { PG_ADMIN_URL, REDIS_URL, createPgDatabase, startApp, type TestApp } from '../helpers/app.ts';
import { api, freePort, loginAdmin, startNode, type NodeProcess } from '../helpers/node-process.ts';
import { waitUntil } from '../helpers/realtime.ts';
import { TcpProxy } from '../helpers/tcp-proxy.ts';
import { ResumingClient } from '../helpers/resuming-client.ts';
import { connect, type TestSocket } from '../helpers/ws-client.ts';
import { CloseCode } from '../../src/protocol.ts';
import { mint } from '../helpers/tokens.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The socket's close code and reason, or undefined if it is still open after `ms`. */
function closedWithin(sock: TestSocket, ms: number): Promise<{ code: number; reason: string } | undefined> {
  return Promise.race([sock.closed, sleep(ms).then(() => undefined)]);
}

/** Waits for a node to print a line matching `re` (its output arrives through a pipe, a little late). */
async function logged(node: NodeProcess, re: RegExp): Promise<void> {
  await waitUntil(() => re.test(node.output.join('')), 3000).catch(() => {});
  assert.match(node.output.join(''), re);
}

/** A redis-server of our own on a free port (never the machine's shared one). */
async function startRedis(port: number): Promise<ChildProcess> {
  const proc = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { stdio: 'ignore' },
  );
  const probe = new Redis(port, '127.0.0.1', {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  probe.on('error', () => {});
  for (let i = 0; i < 100; i++) {
    try {
      await probe.connect();
      await probe.ping();
      probe.disconnect();
      return proc;
    } catch {
      await sleep(50);
    }
  }
  throw new Error('private redis-server did not start');
}

describe('Redis restart and pub/sub loss lose no message', () => {
  let redisPort: number;
  let redis: ChildProcess;
  let nodes: NodeProcess[];
  let dropDb: () => Promise<void>;
  let admin: string;

  before(async () => {
    redisPort = await freePort();
    redis = await startRedis(redisPort);
    const db = await createPgDatabase();
    dropDb = db.drop;
    const env = {
      SKYPUSH_DATABASE_URL: db.url,
      SKYPUSH_REDIS_URL: `redis://127.0.0.1:${redisPort}`,
      SKYPUSH_REDIS_PROBE_INTERVAL_MS: '300',
      SKYPUSH_PRESENCE_TTL_MS: '2000',
    };
    const a = await startNode({ ...env, SKYPUSH_NODE_ID: 'A' });
    nodes = [a, await startNode({ ...env, SKYPUSH_NODE_ID: 'B' })];
    admin = await loginAdmin(a.url);
    await api(a.url, 'POST', '/api/v1/users/bulk', {
      token: admin,
      body: { users: [{ id: 900, username: 'r' }] },
    });
  });
  after(async () => {
    await Promise.all(nodes.map((n) => n.kill()));
    redis.kill('SIGKILL');
    await dropDb();
  });

  async function traffic(client: ResumingClient, during: () => Promise<void>): Promise<number[]> {
    const sent: number[] = [];
    let on = true;
    const sender = (async () => {
      while (on) {
        const r = await api<{ messageId: number }>(
          (nodes[1] as NodeProcess).url,
          'POST',
          '/api/v1/messages/send',
          {
            token: admin,
            body: { title: 't', content: 'c', targetType: 'user', targetIds: [900] },
          },
        );
        assert.equal(r.status, 200, 'sends succeed while Redis is away: the store is the truth');
        sent.push(r.body.data.messageId);
        await sleep(15);
      }
    })();
    await during();
    on = false;
    await sender;
    return sent;
  }

  it('delivers every message sent while Redis was killed and restarted', async () => {
    const client = new ResumingClient((nodes[0] as NodeProcess).wsUrl, await mint(900));
    await client.connect();
    const start = client.newMessageIds().length;
    const sent = await traffic(client, async () => {
      await sleep(200);
      redis.kill('SIGKILL');
      await sleep(300);
      const a = (nodes[0] as NodeProcess).url;
      const online = await api(a, 'GET', '/api/v1/ws/online/users', { token: admin });
      assert.equal(online.status, 503, 'presence says it is unavailable instead of guessing');
      const b = await api<{ recipients: number | null }>(a, 'POST', '/api/v1/ws/broadcast', {
        token: admin,
        body: { data: { title: 'during outage' } },
      });
      assert.equal(b.status, 200, 'a broadcast is still accepted and stored');
      assert.equal(b.body.data.recipients, null);
      await sleep(500);
      redis = await startRedis(redisPort);
      await sleep(800);
    });
    await client.until(() => client.newMessageIds().length - start >= sent.length, 10_000, 'all messages');
    assert.deepEqual(client.newMessageIds().slice(start), sent);
    // The live connection itself survived: no reconnect was needed.
    assert.equal(client.connects.length, 1);
    await client.close();
  });

  it('recovers from CLIENT KILL TYPE pubsub without losing a message', async () => {
    const client = new ResumingClient((nodes[0] as NodeProcess).wsUrl, await mint(900));
    await client.connect();
    const start = client.newMessageIds().length;
    const killer = new Redis(redisPort, '127.0.0.1');
    const sent = await traffic(client, async () => {
      await sleep(200);
      await killer.client('KILL', 'TYPE', 'pubsub');
      await sleep(600);
    });
    killer.disconnect();
    await client.until(() => client.newMessageIds().length - start >= sent.length, 10_000, 'all messages');
    assert.deepEqual(client.newMessageIds().slice(start), sent);
    // And fan-out through Redis works again: a message arrives well before the 1 s fallback poll.
    const r = await api<{ messageId: number }>(
      (nodes[1] as NodeProcess).url,
      'POST',
      '/api/v1/messages/send',
      {
        token: admin,
        body: { title: 'after', content: 'c', targetType: 'user', targetIds: [900] },
      },
    );
    await client.until(
      () => client.newMessageIds().includes(r.body.data.messageId),
      5000,
      'post-recovery message',
    );
    await client.close();
  });

  it('disables a user while Redis is away: the change stands, sockets close here at once, elsewhere on reconnect', async () => {
    const [a, b] = nodes as [NodeProcess, NodeProcess];
    await api(a.url, 'POST', '/api/v1/users/bulk', {
      token: admin,
      body: { users: [{ id: 902, username: 'd' }] },
    });
    const token = await mint(902);
    const onA = await connect(a.wsUrl, { token });
    const onB = await connect(b.wsUrl, { token });
    await Promise.all([onA, onB].map((s) => s.waitFor((f) => f.type === 'UNREAD_COUNT')));
    redis.kill('SIGKILL');
    await sleep(300);
    try {
      const patch = await api(a.url, 'PATCH', '/api/v1/users/902', {
        token: admin,
        body: { disabled: true },
      });
      assert.equal(patch.status, 200, 'committed is committed: a lost publish does not fail the request');
      const hereClosed = await closedWithin(onA, 1000);
      assert.equal(
        hereClosed?.code,
        CloseCode.USER_DISABLED.code,
        'the node that disabled closes its sockets',
      );
      await sleep(300);
      assert.equal(onB.ws.readyState, onB.ws.OPEN, 'B could not hear it yet');
    } finally {
      redis = await startRedis(redisPort);
    }
    const thereClosed = await closedWithin(onB, 5000);
    assert.equal(thereClosed?.code, CloseCode.USER_DISABLED.code, 'B asks the store once its bus is back');
    await logged(b, /closed sockets of users disabled during a bus gap/);
  });

  it('keeps the login lockout on each node while Redis is away', async () => {
    const login = (i: number) =>
      api((nodes[i] as NodeProcess).url, 'POST', '/api/v1/auth/login', {
        body: { username: 'while-away', password: 'wrong-password' },
      });
    redis.kill('SIGKILL');
    await sleep(300);
    try {
      for (let i = 0; i < 5; i++)
        assert.equal((await login(0)).status, 401, 'a failure is answered, not hung');
      const locked = await login(0);
      assert.equal(locked.status, 429, 'the node that saw five failures locks the pair by itself');
      assert.equal(locked.body.code, 42901);
      // Node B saw none of them and Redis could not tell it: per node, as documented.
      assert.equal((await login(1)).status, 401);
      await logged(nodes[0] as NodeProcess, /login lockout counts on this node only/);
    } finally {
      redis = await startRedis(redisPort);
    }
    await sleep(800);
  });

  it('notices a subscription that died silently (self-probe) and rebuilds it', async () => {
    const bus = new RedisBus({
      url: `redis://127.0.0.1:${redisPort}`,
      prefix: 'probe-test:',
      nodeId: 'probe-node',
      probeIntervalMs: 100,
      logger: pino({ level: 'silent' }),
    });
    try {
      await bus.ready();
      const got: BusMessage[] = [];
      bus.subscribe((m) => got.push(m));
      let reconnects = 0;
      bus.onReconnect(() => reconnects++);
      // The connection stays up but no longer listens: nothing but the probe can tell.
      await bus.subscriber.unsubscribe('probe-test:bus');
      // probeFailures counts when the loss is seen; listeners hear of it once the rebuild is done.
      const deadline = Date.now() + 3000;
      while ((bus.probeFailures === 0 || reconnects === 0) && Date.now() < deadline) await sleep(20);
      assert.ok(bus.probeFailures >= 1, 'the probe noticed');
      assert.ok(reconnects >= 1, 'subscribers were told to re-read the log');
      await bus.publish({ type: 'events', origin: 'other', head: 42 });
      const until = Date.now() + 2000;
      while (!got.some((m) => m.type === 'events' && m.head === 42) && Date.now() < until) await sleep(20);
      assert.ok(
        got.some((m) => m.type === 'events' && m.head === 42),
        'messages flow again',
      );
    } finally {
      await bus.close();
    }
  });
});

/** A fresh PostgreSQL database, its URL and the same database's URL through a TcpProxy. */
async function proxiedPgDatabase(): Promise<{
  url: string;
  viaProxy: string;
  proxy: TcpProxy;
  drop: () => Promise<void>;
}> {
  const db = await createPgDatabase();
  const target = new URL(PG_ADMIN_URL);
  const proxy = new TcpProxy(await freePort(), { host: target.hostname, port: Number(target.port || 5432) });
  await proxy.open();
  const viaProxy = new URL(db.url);
  viaProxy.port = String(proxy.port);
  return { url: db.url, viaProxy: viaProxy.toString(), proxy, drop: db.drop };
}

describe('PostgreSQL cut off behind a proxy', () => {
  let t: TestApp;
  let proxy: TcpProxy;
  let dropDb: () => Promise<void>;

  before(async () => {
    const db = await proxiedPgDatabase();
    proxy = db.proxy;
    dropDb = db.drop;
    t = await startApp({
      dialect: 'sqlite',
      env: {
        SKYPUSH_DATABASE_URL: db.viaProxy,
        SKYPUSH_DB_CONNECT_TIMEOUT_MS: '500',
        SKYPUSH_DB_STATEMENT_TIMEOUT_MS: '1000',
      },
    });
  });
  after(async () => {
    await t.close().catch(() => {});
    await proxy.cut();
    await dropDb();
  });

  it('answers 503 quickly while the database is away, keeps sockets up, and recovers without a restart', async () => {
    const u = await t.createUser('pgcut');
    const sock = await connect(t.wsUrl, { token: u.token });
    await sock.waitFor((f) => f.type === 'UNREAD_COUNT');

    await proxy.cut();
    const started = Date.now();
    const r = await t.request('GET', '/api/v1/messages/unread-count', { token: u.token });
    assert.equal(r.status, 503);
    assert.equal(r.body.code, 50301);
    assert.ok(Date.now() - started < 3000, `answered within the timeout (${Date.now() - started} ms)`);
    assert.equal((await t.request('GET', '/readyz')).status, 503);
    assert.equal((await t.request('GET', '/healthz')).status, 200);
    await sleep(300);
    assert.equal(sock.ws.readyState, sock.ws.OPEN, 'existing sockets stay up');

    await proxy.open();
    const deadline = Date.now() + 5000;
    let ok = false;
    while (!ok && Date.now() < deadline) {
      ok = (await t.request('GET', '/readyz')).status === 200;
      if (!ok) await sleep(100);
    }
    assert.ok(ok, '/readyz recovers');
    const sent = await t.request<{ messageId: number }>('POST', '/api/v1/messages/send', {
      token: t.adminToken,
      body: { title: 'back', content: 'c', targetType: 'user', targetIds: [u.id] },
    });
    assert.equal(sent.status, 200);
    await sock.waitFor((f) => f.type === 'NEW_MESSAGE' && f.data['messageId'] === sent.body.data.messageId);
    await sock.close();
  });
});

/** The two shapes of cluster, as the environment both nodes share (`direct`: the database, not proxied). */
const SHAPES: Array<{ name: string; env: (direct: string) => Record<string, string> }> = [
  {
    name: 'PostgreSQL + Redis',
    env: () => ({
      SKYPUSH_REDIS_URL: REDIS_URL,
      SKYPUSH_REDIS_PREFIX: `race-${randomBytes(4).toString('hex')}:`,
    }),
  },
  // The wake-ups' LISTEN connection goes to the database directly: only the pool's answers are held.
  { name: 'PostgreSQL alone', env: (direct) => ({ SKYPUSH_DB_LISTEN_URL: direct }) },
];

for (const shape of SHAPES)
  describe(`a user disabled while their socket is being authenticated (${shape.name})`, () => {
    disabledWhileAuthenticating(shape.env);
  });

function disabledWhileAuthenticating(shapeEnv: (direct: string) => Record<string, string>): void {
  let a: TestApp;
  let b: TestApp;
  let proxy: TcpProxy;
  let dropDb: () => Promise<void>;

  before(async () => {
    const db = await proxiedPgDatabase();
    proxy = db.proxy;
    dropDb = db.drop;
    const shared = shapeEnv(db.url);
    // Two nodes of one cluster: A reads the database through the proxy, B directly.
    b = await startApp({ env: { SKYPUSH_DATABASE_URL: db.url, ...shared } });
    // A polls the log rarely: while answers are held, a poll would take the pool's warm connection and
    // the user-row read would wait for a new one instead of reaching the database at once.
    a = await startApp({
      env: { SKYPUSH_DATABASE_URL: db.viaProxy, SKYPUSH_EVENT_POLL_INTERVAL_MS: '60000', ...shared },
    });
  });
  after(async () => {
    proxy.release();
    await a.close().catch(() => {});
    await b.close().catch(() => {});
    await proxy.cut();
    await dropDb();
  });

  it('closes with 4003 a socket whose user row was read just before the user was disabled', async () => {
    const u = await b.createUser('racer');
    proxy.hold();
    // A reads the user row (still enabled) but does not get the answer yet: the socket is not registered.
    const pending = connect(a.wsUrl, { token: u.token });
    pending.catch(() => {}); // awaited below; a refusal there means the row was read after the disable
    // The row was read (its answer, with the username, is held at the proxy) before the user is disabled.
    await waitUntil(() => proxy.holds('racer'), 10_000);
    const patch = await b.request('PATCH', `/api/v1/users/${u.id}`, {
      token: b.adminToken,
      body: { disabled: true },
    });
    assert.equal(patch.status, 200);
    await sleep(300); // A hears user-disabled (Redis, or its direct LISTEN) while the socket authenticates
    proxy.release();
    const sock = await pending;
    const closed = await closedWithin(sock, 3000);
    assert.equal(
      closed?.code,
      CloseCode.USER_DISABLED.code,
      'the socket is closed, not left open until its token expires',
    );
    assert.ok(!sock.frames.some((f) => f.type === 'CONNECTED'), 'and never went live');
  });
}

describe('PostgreSQL alone: a node’s LISTEN connection cut off', () => {
  let a: TestApp;
  let b: TestApp;
  let proxy: TcpProxy;
  let dropDb: () => Promise<void>;

  before(async () => {
    const db = await proxiedPgDatabase();
    proxy = db.proxy;
    dropDb = db.drop;
    // Both nodes use the database directly; only B's wake-ups come through the proxy.
    a = await startApp({ env: { SKYPUSH_DATABASE_URL: db.url } });
    b = await startApp({
      env: {
        SKYPUSH_DATABASE_URL: db.url,
        SKYPUSH_DB_LISTEN_URL: db.viaProxy,
        SKYPUSH_EVENT_POLL_INTERVAL_MS: '300',
      },
    });
  });
  after(async () => {
    await a.close().catch(() => {});
    await b.close().catch(() => {});
    await proxy.cut();
    await dropDb();
  });

  it('delivers by the poll meanwhile, and closes a user disabled meanwhile once the connection is back', async () => {
    const u = await a.createUser('cut-listen');
    const onA = await connect(a.wsUrl, { token: u.token });
    const onB = await connect(b.wsUrl, { token: u.token });
    await Promise.all([onA, onB].map((s) => s.waitFor((f) => f.type === 'UNREAD_COUNT')));

    await proxy.cut();
    const sent = await a.request<{ messageId: number }>('POST', '/api/v1/messages/send', {
      token: a.adminToken,
      body: { title: 'while cut', content: 'c', targetType: 'user', targetIds: [u.id] },
    });
    await onB.waitFor((f) => f.type === 'NEW_MESSAGE' && f.data['messageId'] === sent.body.data.messageId);
    const patch = await a.request('PATCH', `/api/v1/users/${u.id}`, {
      token: a.adminToken,
      body: { disabled: true },
    });
    assert.equal(patch.status, 200);
    assert.equal((await closedWithin(onA, 1000))?.code, CloseCode.USER_DISABLED.code, 'closed on A at once');
    await sleep(300);
    assert.equal(onB.ws.readyState, onB.ws.OPEN, 'B could not hear it');

    await proxy.open();
    const closed = await closedWithin(onB, 5000);
    assert.equal(closed?.code, CloseCode.USER_DISABLED.code, 'B asks the store once it listens again');
    await waitUntil(
      () => b.logs.join('').includes('closed sockets of users disabled during a bus gap'),
      3000,
    );
    assert.match(b.logs.join(''), /postgres bus reconnected/);
  });
});
