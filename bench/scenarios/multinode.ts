/**
 * Scenario 5: several skypush nodes on PostgreSQL + Redis holding ≥ 100k connections between them, with
 * heartbeats, and a broadcast through one node reaching everyone on every node. Runs only when skypush has
 * its Redis bus; otherwise the run reports why it was skipped.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { sleep } from '../lib/clock.ts';
import { REDIS_URL, pgReachable, redisPing, tempDatabase } from '../lib/services.ts';
import { ROOT, type Child } from '../lib/rpc.ts';
import { Fleet, totals } from '../load/fleet.ts';
import { createSkypush, type SkypushSystem } from '../systems/skypush.ts';
import { Collector, fmt, progress, userIds } from './context.ts';
import type { Plan, Sample } from './plan.ts';

const PER_NODE_MAX = 19_000;

/** Why the scenario cannot run here, or undefined when it can. */
export async function multinodeBlocker(): Promise<string | undefined> {
  // The bus is wired in app.ts or, since the redesign, app-cluster.ts (an older checkout may have neither).
  const wiring = ['src/app.ts', 'src/app-cluster.ts']
    .filter((f) => existsSync(join(ROOT, f)))
    .map((f) => readFileSync(join(ROOT, f), 'utf8'))
    .join('\n');
  if (!existsSync(join(ROOT, 'src/bus/redis-bus.ts')) || !/redis-bus/.test(wiring)) return 'needs Redis bus';
  if (!(await redisPing())) return 'needs Redis at 127.0.0.1:6379';
  if (!(await pgReachable())) return 'needs PostgreSQL at 127.0.0.1:5432';
  return undefined;
}

export async function runMultinode(plan: Plan, driver: Child): Promise<Sample[]> {
  const { nodes: k, connections, holdMs, bursts } = plan.multinode;
  const total = Math.min(connections, k * PER_NODE_MAX);
  const out = new Collector('skypush', total);
  const db = await tempDatabase('multinode');
  const shared = {
    heartbeatMs: plan.heartbeatMs,
    entry: plan.entry,
    databaseUrl: db.url,
    redisUrl: REDIS_URL,
    redisPrefix: `skypush-bench-${process.pid}:`,
    jwtSecret: randomBytes(32).toString('hex'),
    adminPassword: randomBytes(12).toString('hex'),
    maxConnections: PER_NODE_MAX + 500,
    nodeArgs: plan.serverNodeArgs,
  };
  const nodes: SkypushSystem[] = [];
  const fleets: Fleet[] = [];
  try {
    // One after the other: the first applies the migrations.
    for (let i = 0; i < k; i++) {
      const node = await createSkypush({ ...shared, nodeId: `bench-node-${i + 1}` });
      nodes.push(node);
      await node.start();
    }
    const first = nodes[0] as SkypushSystem;
    const users = userIds(total);
    await first.addUsers(users);
    await driver.call('configure', first.driverTarget(plan.contentLength));

    const share = nodes.map((_, i) => users.filter((_, j) => j % k === i));
    const started = Date.now();
    const connected = await Promise.all(
      nodes.map(async (node, i) => {
        const fleet = Fleet.start(share[i] as number[]);
        fleets.push(fleet);
        return totals(
          (
            await fleet.connect(node.clientTarget(), {
              concurrency: plan.connectConcurrency,
              timeoutMs: 120_000,
            })
          ).snaps,
        );
      }),
    );
    const ready = connected.reduce((n, t) => n + t.ready, 0);
    progress(
      `multinode: ${ready}/${total} connected to ${k} nodes in ${fmt((Date.now() - started) / 1000)} s`,
    );

    for (const f of fleets) await f.reset();
    const before = await Promise.all(nodes.map((n) => n.stats()));
    await sleep(holdMs);
    const after = await Promise.all(nodes.map((n) => n.stats(true)));
    const held = (await Promise.all(fleets.map(async (f) => totals(await f.snapshot())))).reduce(
      (a, t) => ({ ready: a.ready + t.ready, closes: a.closes + t.unexpectedCloses }),
      { ready: 0, closes: 0 },
    );
    const cpu = after.reduce((s, a, i) => s + a.cpuUs - (before[i]?.cpuUs ?? 0), 0);
    const wall = (after[0]?.atUs ?? 0) - (before[0]?.atUs ?? 0);
    out.add('multinode', 'connections held', 'count', held.ready);
    out.add('multinode', 'connections dropped while idle', 'count', held.closes);
    out.add('multinode', 'idle server CPU (all nodes)', '% core', (cpu / wall) * 100);
    const rss = after.reduce((s, a) => s + a.rss, 0);
    out.add('multinode', 'server RSS (all nodes)', 'MB', rss / 2 ** 20);
    out.add(
      'multinode',
      'server RSS per connection (process baseline included)',
      'KB',
      rss / 1024 / held.ready,
    );
    out.add(
      'multinode',
      'idle server CPU per 1,000 connections',
      '% core',
      (cpu / wall) * 100 * (1000 / held.ready),
    );
    progress(`multinode: ${held.ready} held for ${holdMs / 1000} s, ${held.closes} dropped`);

    for (let b = 0; b < bursts; b++) {
      const bases = await Promise.all(fleets.map((f) => f.reset()));
      const s0 = await Promise.all(nodes.map((n) => n.stats()));
      const sent = await driver.call<{ dueUs: number }>('one', { endpoint: 'broadcast', kind: 'b', id: b });
      const snaps = await Promise.all(
        fleets.map((f, i) => f.waitKind('b', f.readyCounts(bases[i] ?? []), 30_000)),
      );
      const s1 = await Promise.all(nodes.map((n) => n.stats()));
      const ts = snaps.map(totals);
      const got = ts.reduce((s, t) => s + t.count('b'), 0);
      const lastUs = Math.max(...ts.map((t) => t.lastUs('b')));
      const cpuB = s1.reduce((s, a, i) => s + a.cpuUs - (s0[i]?.cpuUs ?? 0), 0);
      out.add('multinode', 'broadcast: time to last receipt', 'ms', (lastUs - sent.dueUs) / 1000);
      out.add('multinode', 'broadcast: server CPU per delivery', 'µs', cpuB / got);
      out.add('multinode', 'broadcast: deliveries', 'count', got);
      progress(`multinode: broadcast ${got} deliveries, last after ${fmt((lastUs - sent.dueUs) / 1000)} ms`);
      await sleep(500);
    }
  } finally {
    await Promise.allSettled(fleets.map((f) => f.stop()));
    await Promise.allSettled(nodes.map((n) => n.dispose()));
    await db.drop();
  }
  return out.samples;
}
