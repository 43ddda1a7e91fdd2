/**
 * PostgreSQL contention (issue #13): `nodes` skypush processes on one PostgreSQL database with Redis as
 * the cluster bus, and `senders` closed-loop HTTP senders spread over the nodes (load/closed-loop.ts),
 * one send in `wideEvery` listing `wideTargets` users, the others one user. Reports the latency of both
 * kinds (goal: 1-target p99 ≤ 50 ms), throughput, and the time spent waiting for ordering, read from
 * PostgreSQL: pg_stat_activity is sampled every ~10 ms, and a sample counts the skypush sessions waiting
 * on an advisory lock (today's event-log lock) and on any lock at all (whatever ordering replaces it).
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { sleep } from '../lib/clock.ts';
import { busyPercent, cpuTimes } from '../lib/machine.ts';
import { quantile, type HistogramData } from '../lib/histogram.ts';
import type { Child } from '../lib/rpc.ts';
import { REDIS_URL, tempDatabase } from '../lib/services.ts';
import type { ClosedLoopResult } from '../load/closed-loop.ts';
import { createSkypush, type SkypushSystem } from '../systems/skypush.ts';
import { Collector, fmt, profiled, progress, userIds } from './context.ts';
import type { Plan } from './plan.ts';
import { storageEnv, type StorageOutcome } from './storage.ts';

interface LockSamples {
  samples: number;
  /** Samples in which at least one session waited on the advisory lock. */
  withAdvisoryWait: number;
  advisoryWaiters: number;
  lockWaiters: number;
  active: number;
}

/** Samples skypush's sessions on the database until `until` settles. */
async function sampleLocks(url: string, until: Promise<unknown>): Promise<LockSamples> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  let done = false;
  void until.then(
    () => (done = true),
    () => (done = true),
  );
  const s: LockSamples = { samples: 0, withAdvisoryWait: 0, advisoryWaiters: 0, lockWaiters: 0, active: 0 };
  try {
    while (!done) {
      const r = await c.query<{ advisory: number; locks: number; active: number }>(
        `select count(*) filter (where wait_event_type = 'Lock' and wait_event = 'advisory')::int as advisory,
                count(*) filter (where wait_event_type = 'Lock')::int as locks,
                count(*) filter (where state = 'active')::int as active
           from pg_stat_activity
          where datname = current_database() and application_name = 'skypush'`,
      );
      const row = r.rows[0];
      s.samples++;
      if ((row?.advisory ?? 0) > 0) s.withAdvisoryWait++;
      s.advisoryWaiters += row?.advisory ?? 0;
      s.lockWaiters += row?.locks ?? 0;
      s.active += row?.active ?? 0;
      await sleep(10);
    }
  } finally {
    await c.end();
  }
  return s;
}

async function startNodes(plan: Plan, url: string): Promise<SkypushSystem[]> {
  const p = plan.storage.pgContention;
  const shared = {
    heartbeatMs: plan.heartbeatMs,
    entry: plan.entry,
    databaseUrl: url,
    redisUrl: REDIS_URL,
    redisPrefix: `skypush-bench-contention-${process.pid}:`,
    jwtSecret: randomBytes(32).toString('hex'),
    adminPassword: randomBytes(12).toString('hex'),
    nodeArgs: plan.serverNodeArgs,
    env: storageEnv({ SKYPUSH_MAX_TARGETS: String(Math.max(10_000, p.wideTargets)) }),
  };
  const nodes: SkypushSystem[] = [];
  // One after the other: the first applies the migrations.
  for (let i = 0; i < p.nodes; i++) {
    const node = await createSkypush({ ...shared, nodeId: `bench-contention-${i + 1}` });
    nodes.push(node);
    await node.start();
  }
  return nodes;
}

function record(out: Collector, plan: Plan, r: ClosedLoopResult, locks: LockSamples): void {
  const p = plan.storage.pgContention;
  const windowS = (r.endUs - r.startUs) / 1e6;
  const sends = r.narrow.count + r.wide.count;
  const ms = (h: HistogramData, q: number) => quantile(h, q) / 1000;
  const wide = `${p.wideTargets.toLocaleString('en-US')}-target`;
  out.add('pg-contention', '1-target send latency p50', 'ms', ms(r.narrow, 0.5));
  out.add('pg-contention', '1-target send latency p99', 'ms', ms(r.narrow, 0.99));
  out.add('pg-contention', `${wide} send latency p50`, 'ms', ms(r.wide, 0.5));
  out.add('pg-contention', `${wide} send latency p99`, 'ms', ms(r.wide, 0.99));
  out.add('pg-contention', 'sends/s', '/s', sends / windowS);
  out.add('pg-contention', 'recipients/s', '/s', (r.narrow.count + r.wide.count * p.wideTargets) / windowS);
  out.add('pg-contention', 'sends failed', 'count', r.failed);
  const n = Math.max(1, locks.samples);
  out.add('pg-contention', 'pg_stat_activity samples', 'count', locks.samples);
  out.add(
    'pg-contention',
    'samples with a sender waiting for the advisory lock',
    '%',
    (locks.withAdvisoryWait / n) * 100,
  );
  out.add(
    'pg-contention',
    'sessions waiting for the advisory lock (mean)',
    'count',
    locks.advisoryWaiters / n,
  );
  out.add('pg-contention', 'sessions waiting for any lock (mean)', 'count', locks.lockWaiters / n);
  out.add('pg-contention', 'active sessions (mean)', 'count', locks.active / n);
  // Little's law: mean waiters × window = session-time spent waiting; shared out over the sends.
  out.add(
    'pg-contention',
    'advisory lock wait per send (estimate)',
    'ms',
    ((locks.advisoryWaiters / n) * windowS * 1000) / Math.max(1, sends),
  );
  progress(
    `pg-contention: ${sends} sends in ${fmt(windowS)} s, 1-target p99 ${fmt(ms(r.narrow, 0.99))} ms, ` +
      `${wide} p99 ${fmt(ms(r.wide, 0.99))} ms; advisory wait in ${fmt((locks.withAdvisoryWait / n) * 100)} % of ${locks.samples} samples` +
      (r.failed > 0 ? `; ${r.failed} failed: ${r.errors.join(' | ')}` : ''),
  );
}

export async function runPgContention(plan: Plan, driver: Child): Promise<StorageOutcome> {
  const p = plan.storage.pgContention;
  const out = new Collector('skypush', p.senders);
  const db = await tempDatabase('contention');
  let nodes: SkypushSystem[] = [];
  try {
    nodes = await startNodes(plan, db.url);
    const first = nodes[0] as SkypushSystem;
    const users = userIds(p.wideTargets);
    await first.addUsers(users);
    await driver.call('configure', first.driverTarget(plan.contentLength));
    for (let rep = 0; rep < plan.reps; rep++) {
      const run = driver.call<ClosedLoopResult>(
        'closedLoop',
        {
          ports: nodes.map((n) => n.port),
          workers: p.senders,
          warmupMs: p.warmupMs,
          durationMs: p.durationMs,
          wideEvery: p.wideEvery,
          wideTargets: users,
          narrowTargets: users,
        },
        p.warmupMs + p.durationMs + 600_000,
      );
      run.catch(() => {}); // awaited below; this only keeps a failure during the warm-up from going unhandled
      await sleep(p.warmupMs);
      // With --cpu-prof, the first node's measured window is profiled (bench/results/profiles/).
      const cpu0 = cpuTimes();
      const locks = await profiled(plan, first, p.senders, 'pg-contention', () => sampleLocks(db.url, run));
      // The whole machine (nodes, PostgreSQL, Redis, the load generator): is the window CPU-bound?
      out.add('pg-contention', 'machine CPU busy', '%', busyPercent(cpu0, cpuTimes()));
      record(out, plan, await run, locks);
    }
  } finally {
    await Promise.allSettled(nodes.map((n) => n.dispose()));
    await db.drop();
  }
  return { samples: out.samples };
}
