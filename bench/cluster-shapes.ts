/**
 * `node --import tsx bench/cluster-shapes.ts` — the two shapes of cluster side by side, in one run on
 * this machine: two skypush processes on one PostgreSQL database, woken through Redis pub/sub
 * ("PostgreSQL + Redis") or through LISTEN/NOTIFY ("PostgreSQL alone"). The fallback poll is set to a
 * minute, so every delivery below travels by a wake-up. Clients hold one socket each on node B; every
 * send goes through node A's HTTP API. Figures (docs/OPERATIONS.md, "PostgreSQL alone or PostgreSQL +
 * Redis"):
 *
 *   wake-up latency   sequential 1-target sends: from the HTTP request on A to NEW_MESSAGE on B (p50, p99)
 *   send throughput   32 concurrent senders of 1-target sends for 5 s: sends/s, all delivered on B, and
 *                     the CPU both nodes used per send (wall-clock rates suffer from a busy machine)
 *   fan-out           one send to all USERS listed users: time until every socket on B has it (median of 5)
 *   broadcast burst   200 sends to all (`targetType: all`) as fast as 8 senders go: deliveries/s on B,
 *                     and the nodes' CPU per 1,000 deliveries
 *
 * and, in this process, the bus alone (two bus instances, one database):
 *
 *   bus wake-up       a transaction appending one row and its wake-up (NOTIFY inside it; or PUBLISH after
 *                     commit) until the other instance's handler has it: p50, p99 over 500
 *   commits/s         16 concurrent writers of such transactions for 3 s, with the event log's advisory
 *                     lock (as appends take it today) and without any lock (does the wake-up cost commits?)
 *
 * Each shape runs --reps times, alternating; the table shows medians.
 *
 *   options: --users 2000  --shapes redis,pg  --reps 3
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { parseArgs } from 'node:util';
import { SignJWT } from 'jose';
import pg from 'pg';
import { sql, type RawBuilder } from 'kysely';
import pino from 'pino';
import WebSocket from 'ws';
import type { Bus, BusMessage } from '../src/bus/bus.ts';
import { PgBus } from '../src/bus/pg-bus.ts';
import { RedisBus } from '../src/bus/redis-bus.ts';
import { openStore, type Store } from '../src/store/database.ts';
import { ROOT } from './lib/rpc.ts';

const PG_ADMIN = process.env['SKYPUSH_BENCH_PG_URL'] ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const REDIS_URL = process.env['SKYPUSH_BENCH_REDIS_URL'] ?? 'redis://127.0.0.1:6379';
const SECRET = randomBytes(32).toString('hex');
const ADMIN_PASSWORD = randomBytes(12).toString('hex');

type Shape = 'redis' | 'pg';
const SHAPE_NAMES: Record<Shape, string> = { redis: 'PostgreSQL + Redis', pg: 'PostgreSQL alone' };

interface Node {
  proc: ChildProcess;
  url: string;
  wsUrl: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** CPU milliseconds (user + system) a process has used so far, from /proc (Linux). */
function cpuMs(pid: number | undefined): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  // utime and stime are fields 14 and 15 of stat, 12 and 13 after "pid (comm) ".
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
}
const CLOCK_TICKS = 100;

/** CPU both nodes used while `work` ran. */
async function nodesCpu<T>(nodes: Node[], work: () => Promise<T>): Promise<{ result: T; cpu: number }> {
  const before = nodes.map((n) => cpuMs(n.proc.pid));
  const result = await work();
  const cpu = nodes.reduce((sum, n, i) => sum + cpuMs(n.proc.pid) - (before[i] as number), 0);
  return { result, cpu };
}

async function adminQuery(text: string): Promise<void> {
  const c = new pg.Client({ connectionString: PG_ADMIN });
  await c.connect();
  try {
    await c.query(text);
  } finally {
    await c.end();
  }
}

function startNode(env: Record<string, string>): Promise<Node> {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SKYPUSH_')));
  const proc = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', 'serve'], {
    cwd: ROOT,
    env: { ...clean, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error('node did not start within 30 s'));
    }, 30_000);
    let buf = '';
    proc.stdout?.on('data', (d: Buffer) => {
      buf += d.toString();
      const line = buf.split('\n').find((l) => l.includes('skypush listening'));
      if (!line) return;
      const { address } = JSON.parse(line) as { address: string };
      clearTimeout(timer);
      proc.stdout?.removeAllListeners('data');
      proc.stdout?.resume();
      resolve({ proc, url: address, wsUrl: `${address.replace(/^http/, 'ws')}/api/v1/ws/messages` });
    });
    proc.once('exit', (code) => reject(new Error(`node exited with ${code}`)));
  });
}

async function api<T>(url: string, path: string, token: string | undefined, body: unknown): Promise<T> {
  const res = await fetch(url + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token && { authorization: `Bearer ${token}` }) },
    body: JSON.stringify(body),
  });
  const json = (await res.json()) as { data: T };
  if (!res.ok) throw new Error(`${path}: ${res.status} ${JSON.stringify(json)}`);
  return json.data;
}

const mint = (sub: number) =>
  new SignJWT({ role: 'user' })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(String(sub))
    .setExpirationTime('1h')
    .sign(new TextEncoder().encode(SECRET));

/** One client per user on node B, counting NEW_MESSAGE frames; `arrival` times one of them. */
class Clients {
  readonly sockets: WebSocket[] = [];
  private readonly waiters = new Map<string, (t: number) => void>();
  /** When a frame someone will ask about arrived before they asked (`user:message` → time). */
  private readonly early = new Map<string, number>();
  /** Record early arrivals only while timing one at a time (the latency run). */
  timing = false;
  received = 0;

  async open(wsUrl: string, userIds: number[]): Promise<void> {
    for (let i = 0; i < userIds.length; i += 100)
      await Promise.all(userIds.slice(i, i + 100).map((u) => this.one(wsUrl, u)));
  }

  private async one(wsUrl: string, userId: number): Promise<void> {
    const ws = new WebSocket(`${wsUrl}?token=${await mint(userId)}`);
    this.sockets.push(ws);
    await new Promise<void>((resolve, reject) => {
      ws.on('message', (raw: Buffer) => {
        const f = JSON.parse(raw.toString()) as { type: string; data: { messageId?: number } };
        if (f.type === 'CONNECTED') resolve();
        if (f.type !== 'NEW_MESSAGE') return;
        this.received++;
        const key = `${userId}:${f.data.messageId}`;
        const waiter = this.waiters.get(key);
        if (waiter) {
          this.waiters.delete(key);
          waiter(performance.now());
        } else if (this.timing) this.early.set(key, performance.now());
      });
      ws.once('error', reject);
    });
  }

  /** When NEW_MESSAGE `messageId` reached `userId` (now or later). */
  arrival(userId: number, messageId: number): Promise<number> {
    const key = `${userId}:${messageId}`;
    const at = this.early.get(key);
    this.early.delete(key);
    if (at !== undefined) return Promise.resolve(at);
    return new Promise((resolve) => this.waiters.set(key, resolve));
  }

  close(): void {
    for (const ws of this.sockets) ws.terminate();
  }
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
};

/** Sequential sends to one user each: the send's HTTP request on A until NEW_MESSAGE on B. */
async function wakeUpLatency(a: Node, admin: string, clients: Clients, users: number[]) {
  const ms: number[] = [];
  clients.timing = true;
  for (let i = 0; i < 300; i++) {
    const u = users[i % users.length] as number;
    const t0 = performance.now();
    // The frame may arrive before the HTTP answer that names its id: Clients keeps its arrival time.
    const { messageId } = await api<{ messageId: number }>(a.url, '/api/v1/messages/send', admin, {
      title: 't',
      content: 'c',
      targetType: 'user',
      targetIds: [u],
    });
    ms.push((await clients.arrival(u, messageId)) - t0);
  }
  clients.timing = false;
  return { p50: pct(ms, 50), p99: pct(ms, 99) };
}

/** 32 concurrent senders of 1-target sends for 5 s; then waits until B delivered them all. */
async function sendThroughput(a: Node, admin: string, clients: Clients, users: number[]) {
  const start = clients.received;
  let sends = 0;
  const until = performance.now() + 5000;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: 32 }, async (_, w) => {
      for (let i = w; performance.now() < until; i += 32) {
        const u = users[i % users.length] as number;
        await api(a.url, '/api/v1/messages/send', admin, {
          title: 't',
          content: 'c',
          targetType: 'user',
          targetIds: [u],
        });
        sends++;
      }
    }),
  );
  while (clients.received - start < sends) await sleep(5);
  return { sends, sendsPerSec: sends / ((performance.now() - t0) / 1000) };
}

/** One send to every user: time until every socket on B has it; median of 5. */
async function fanOut(a: Node, admin: string, clients: Clients, users: number[]) {
  const ms: number[] = [];
  for (let i = 0; i < 5; i++) {
    const start = clients.received;
    const t0 = performance.now();
    await api(a.url, '/api/v1/messages/send', admin, {
      title: 'wide',
      content: 'c',
      targetType: 'user',
      targetIds: users,
    });
    while (clients.received - start < users.length) await sleep(1);
    ms.push(performance.now() - t0);
  }
  return { median: pct(ms, 50) };
}

/** 200 sends to all from 8 senders: deliveries per second on B until the last arrives. */
async function broadcastBurst(a: Node, admin: string, clients: Clients, users: number[]) {
  const start = clients.received;
  const t0 = performance.now();
  let n = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (n < 200) {
        n++;
        await api(a.url, '/api/v1/messages/send', admin, { title: 'all', content: 'c', targetType: 'all' });
      }
    }),
  );
  while (clients.received - start < n * users.length) await sleep(5);
  return {
    deliveries: n * users.length,
    deliveriesPerSec: (n * users.length) / ((performance.now() - t0) / 1000),
  };
}

/**
 * The stand-in for an event append: one row, after the event log's transaction-scoped advisory lock
 * when `locked` (as messages/event-log.repository.ts takes it today, held until commit).
 */
async function append(trx: Parameters<RawBuilder<unknown>['execute']>[0], head: number, locked: boolean) {
  if (locked) await sql`select pg_advisory_xact_lock(1)`.execute(trx);
  await sql`insert into t values (${head})`.execute(trx);
}

/** Two bus instances of a shape on one database; `wake` commits a row and wakes the other instance. */
async function openBuses(shape: Shape, store: Store, listenUrl: string) {
  const logger = pino({ level: 'silent' });
  const common = { prefix: `shapes-${randomBytes(4).toString('hex')}:`, probeIntervalMs: 60_000, logger };
  if (shape === 'redis') {
    const [one, two] = ['one', 'two'].map((nodeId) => new RedisBus({ ...common, url: REDIS_URL, nodeId }));
    await Promise.all([one, two].map((b) => (b as RedisBus).ready()));
    const wake = async (head: number, locked = false) => {
      await store.db.transaction().execute((trx) => append(trx, head, locked));
      await (one as RedisBus).publish({ type: 'events', origin: 'one', head });
    };
    return { buses: [one, two] as Bus[], wake };
  }
  const [one, two] = ['one', 'two'].map(
    (nodeId) => new PgBus({ ...common, listenUrl, db: store.db, nodeId, connectTimeoutMs: 3000 }),
  );
  await Promise.all([one, two].map((b) => (b as PgBus).start()));
  const wake = (head: number, locked = false) =>
    store.db.transaction().execute(async (trx) => {
      await append(trx, head, locked);
      await (one as PgBus).wakeInTransaction(trx, head);
    });
  return { buses: [one, two] as Bus[], wake };
}

/** The bus alone: commit-to-handler latency on the other instance, and commits/s with the wake-up. */
async function busFigures(shape: Shape) {
  const db = `skypush_shapes_bus_${process.pid}_${shape}`;
  await adminQuery(`CREATE DATABASE ${db}`);
  const url = PG_ADMIN.replace(/\/[^/]*$/, `/${db}`);
  const store = openStore({
    url,
    kind: 'postgres',
    poolSize: 16,
    statementTimeoutMs: 5000,
    connectTimeoutMs: 3000,
  });
  const { buses, wake } = await openBuses(shape, store, url);
  try {
    await sql`create table t (x bigint)`.execute(store.db);
    const heard = new Map<number, (t: number) => void>();
    (buses[1] as Bus).subscribe((m: BusMessage) => {
      if (m.type === 'events') heard.get(m.head)?.(performance.now());
    });
    const ms: number[] = [];
    for (let i = 1; i <= 500; i++) {
      const arrived = new Promise<number>((resolve) => heard.set(i, resolve));
      const t0 = performance.now();
      await wake(i);
      ms.push((await arrived) - t0);
      heard.delete(i);
    }
    const rate = async (locked: boolean) => {
      let commits = 0;
      const until = performance.now() + 3000;
      await Promise.all(
        Array.from({ length: 16 }, async () => {
          while (performance.now() < until) await wake(1_000_000 + commits++, locked);
        }),
      );
      return commits / 3;
    };
    const lockedRate = await rate(true);
    return { p50: pct(ms, 50), p99: pct(ms, 99), lockedRate, freeRate: await rate(false) };
  } finally {
    for (const b of buses) await b.close();
    await store.close();
    await adminQuery(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
  }
}

async function runShape(shape: Shape, userCount: number) {
  const db = `skypush_shapes_${process.pid}_${shape}`;
  await adminQuery(`CREATE DATABASE ${db}`);
  const env = {
    SKYPUSH_HOST: '127.0.0.1',
    SKYPUSH_PORT: '0',
    SKYPUSH_DATABASE_URL: PG_ADMIN.replace(/\/[^/]*$/, `/${db}`),
    SKYPUSH_JWT_SECRET: SECRET,
    SKYPUSH_ADMIN_PASSWORD: ADMIN_PASSWORD,
    SKYPUSH_LOG_LEVEL: 'info', // the start-up line says where the node listens
    SKYPUSH_EVENT_POLL_INTERVAL_MS: '60000',
    SKYPUSH_SEND_RATE_LIMIT_ADMIN: '0',
    ...(shape === 'redis' && {
      SKYPUSH_REDIS_URL: REDIS_URL,
      SKYPUSH_REDIS_PREFIX: `shapes-${randomBytes(4).toString('hex')}:`,
    }),
  };
  const nodes: Node[] = [];
  const clients = new Clients();
  try {
    const a = await startNode({ ...env, SKYPUSH_NODE_ID: 'A' });
    nodes.push(a);
    const b = await startNode({ ...env, SKYPUSH_NODE_ID: 'B' });
    nodes.push(b);
    const { accessToken: admin } = await api<{ accessToken: string }>(
      a.url,
      '/api/v1/auth/login',
      undefined,
      {
        username: 'admin',
        password: ADMIN_PASSWORD,
      },
    );
    const users = Array.from({ length: userCount }, (_, i) => 10_000 + i);
    await api(a.url, '/api/v1/users/bulk', admin, {
      users: users.map((id) => ({ id, username: `u${id}` })),
    });
    await clients.open(b.wsUrl, users);
    return {
      latency: await wakeUpLatency(a, admin, clients, users),
      throughput: await nodesCpu([a, b], () => sendThroughput(a, admin, clients, users)),
      fanOut: await fanOut(a, admin, clients, users),
      broadcast: await nodesCpu([a, b], () => broadcastBurst(a, admin, clients, users)),
    };
  } finally {
    clients.close();
    for (const n of nodes) n.proc.kill('SIGKILL');
    await sleep(200);
    await adminQuery(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
  }
}

type Figures = Record<string, number>;

/** One repetition of a shape: the bus alone, then two nodes end to end, as flat named figures. */
async function measure(shape: Shape, userCount: number): Promise<Figures> {
  const bus = await busFigures(shape);
  const e2e = await runShape(shape, userCount);
  return {
    busP50: bus.p50,
    busP99: bus.p99,
    commitsLocked: bus.lockedRate,
    commitsFree: bus.freeRate,
    sendP50: e2e.latency.p50,
    sendP99: e2e.latency.p99,
    sends: e2e.throughput.result.sendsPerSec,
    cpuPerSend: e2e.throughput.cpu / e2e.throughput.result.sends,
    fanOut: e2e.fanOut.median,
    toAll: e2e.broadcast.result.deliveriesPerSec,
    cpuPer1kDeliveries: (1000 * e2e.broadcast.cpu) / e2e.broadcast.result.deliveries,
  };
}

const median = (xs: number[]) => pct(xs, 50);

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { users: { type: 'string' }, shapes: { type: 'string' }, reps: { type: 'string' } },
  });
  const userCount = Number(values.users ?? 2000);
  const reps = Number(values.reps ?? 3);
  const shapes = (values.shapes ?? 'redis,pg').split(',') as Shape[];
  const cpu = cpus()[0]?.model.trim() ?? 'unknown';
  console.log(
    `${cpu}, ${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}; ` +
      `${userCount} clients on node B; load average ${loadavg()[0]?.toFixed(2)}; medians of ${reps}`,
  );
  const runs = new Map<Shape, Figures[]>(shapes.map((s) => [s, []]));
  for (let rep = 0; rep < reps; rep++)
    for (const shape of rep % 2 ? [...shapes].reverse() : shapes) {
      const f = await measure(shape, userCount);
      runs.get(shape)?.push(f);
      console.log(
        `  ${SHAPE_NAMES[shape]} #${rep + 1}: ${JSON.stringify(f, (_, v) => (typeof v === 'number' ? Math.round(v * 10) / 10 : v))}`,
      );
    }
  console.log(
    `\n| shape | bus wake-up p50 / p99 | commits/s with wake-up: event-log lock / no lock | send → delivery on the other node p50 / p99 | 1-target sends/s (nodes' CPU per send) | send to ${userCount} listed users, all delivered | to-all deliveries/s (nodes' CPU per 1,000) |`,
  );
  console.log('| --- | --- | --- | --- | --- | --- | --- |');
  for (const shape of shapes) {
    const fs = runs.get(shape) ?? [];
    const m = (k: string) => median(fs.map((f) => f[k] as number));
    console.log(
      `| ${SHAPE_NAMES[shape]} | ${m('busP50').toFixed(2)} / ${m('busP99').toFixed(2)} ms | ` +
        `${Math.round(m('commitsLocked'))} / ${Math.round(m('commitsFree'))} | ` +
        `${m('sendP50').toFixed(1)} / ${m('sendP99').toFixed(1)} ms | ` +
        `${Math.round(m('sends'))} (${m('cpuPerSend').toFixed(2)} ms) | ${Math.round(m('fanOut'))} ms | ` +
        `${Math.round(m('toAll'))} (${m('cpuPer1kDeliveries').toFixed(1)} ms) |`,
    );
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
