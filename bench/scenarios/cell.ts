/**
 * One system at one size: start it, connect N clients, and run the single-node scenarios in order —
 * connect, idle, broadcast bursts, broadcast stream, per-user sends, reconnect storm — reading server
 * CPU and memory from inside the server process and receipts from the load clients.
 */
import { nowUs, sleep } from '../lib/clock.ts';
import type { ServerStats } from '../lib/probe.ts';
import type { Child } from '../lib/rpc.ts';
import { Fleet, totals } from '../load/fleet.ts';
import { createPeer } from '../systems/peers.ts';
import { createSkypush } from '../systems/skypush.ts';
import type { System, SystemName } from '../systems/system.ts';
import { Collector, cpuDelta, fmt, profiled, progress, userIds, type ScenarioCtx } from './context.ts';
import { scenariosFor, type Plan, type Sample } from './plan.ts';
import { runBroadcast, runFanout, runSends } from './delivery.ts';
import { runSustained } from './sustained.ts';

export interface Cell {
  plan: Plan;
  system: SystemName;
  n: number;
  driver: Child;
}

async function createSystem(plan: Plan, name: SystemName): Promise<System> {
  const common = { heartbeatMs: plan.heartbeatMs, nodeArgs: plan.serverNodeArgs };
  return name === 'skypush' ? createSkypush({ ...common, entry: plan.entry }) : createPeer(name, common);
}

export async function runCell(cell: Cell): Promise<Sample[]> {
  const { plan, n, driver } = cell;
  const scenarios = new Set(scenariosFor(cell.system, plan));
  const out = new Collector(cell.system, n);
  const sys = await createSystem(plan, cell.system);
  const users = userIds(n);
  let fleet: Fleet | undefined;
  try {
    await sys.start();
    await sys.addUsers(users);
    await driver.call('configure', sys.driverTarget(plan.contentLength));
    await sleep(300);

    // ---- connect, in two halves: memory per connection is the slope between them ----
    // (so what the process holds anyway — code, pools, the young generation — is not charged to connections)
    fleet = Fleet.start(users, Math.max(1, Math.ceil(n / 2)));
    const opts = { concurrency: plan.connectConcurrency, timeoutMs: 60_000 };
    const halves: Array<{ ms: number; cpuUs: number; ready: number; mem: ServerStats }> = [];
    let mem = await sys.stats(true);
    for (let i = 0; i < fleet.clients.length; i++) {
      const before = await sys.stats();
      const f = fleet;
      const { startedUs, snaps } = await profiled(plan, sys, n, 'connect', () =>
        f.connect(sys.clientTarget(), opts, [i]),
      );
      const after = await sys.stats();
      const t = totals(snaps);
      halves.push({
        ms: (t.lastReadyUs - startedUs) / 1000,
        cpuUs: cpuDelta(before, after),
        ready: t.ready,
        mem,
      });
      await sleep(500);
      mem = await sys.stats(true);
    }
    const ready = halves.reduce((a, h) => a + h.ready, 0);
    const connectMs = halves.reduce((a, h) => a + h.ms, 0);
    if (ready < n) progress(`${sys.name} n=${n}: only ${ready} of ${n} connected`);
    if (scenarios.has('connect')) {
      out.add('connect', 'connections/s', '/s', ready / (connectMs / 1000));
      out.add('connect', 'server CPU per connect', 'µs', halves.reduce((a, h) => a + h.cpuUs, 0) / ready);
    }
    progress(`${sys.name} n=${n}: ${ready} connected in ${fmt(connectMs, 0)} ms`);

    // ---- idle ----
    if (scenarios.has('idle')) {
      const last = halves.at(-1) as (typeof halves)[number];
      const first = halves.length > 1 ? last.mem : (halves[0] as (typeof halves)[number]).mem;
      const per = (k: 'rss' | 'heapUsed') =>
        (mem[k] - first[k]) / (halves.length > 1 ? last.ready : ready) / 1024;
      out.add('idle', 'RSS per connection', 'KB', per('rss'));
      out.add('idle', 'heap per connection', 'KB', per('heapUsed'));
      await fleet.reset();
      const i0 = await sys.stats();
      await profiled(plan, sys, n, 'idle', () => sleep(plan.idleWindowMs));
      const i1 = await sys.stats();
      const idle = totals(await fleet.snapshot());
      const cpuPct = (cpuDelta(i0, i1) / (i1.atUs - i0.atUs)) * 100;
      out.add('idle', 'idle server CPU', '% core', cpuPct);
      out.add(
        'idle',
        'connections dropped while idle',
        'count',
        idle.unexpectedCloses + (ready - idle.ready),
      );
      progress(
        `${sys.name} n=${n}: idle RSS ${fmt(per('rss'))} KB/conn, heap ${fmt(per('heapUsed'))} KB/conn, CPU ${fmt(cpuPct, 2)} %`,
      );
    }

    const ctx = { plan, sys, fleet, driver, out, n, users };
    for (const [name, run] of [
      ['broadcast', runBroadcast],
      ['fanout', runFanout],
      ['sends', runSends],
    ] as const) {
      if (scenarios.has(name)) await profiled(plan, sys, n, name, () => run(ctx));
    }
    if (scenarios.has('sustained') && n === sustainedCell(plan))
      await profiled(plan, sys, n, 'sustained', () => runSustained(ctx));
    if (scenarios.has('storm')) await runStorm(ctx);
  } finally {
    await fleet?.stop();
    await sys.dispose();
  }
  return out.samples;
}

/** The one cell the rate curve runs in: the plan's `sustained.n` if measured, else the largest n. */
export function sustainedCell(plan: Plan): number {
  return plan.ns.includes(plan.sustained.n) ? plan.sustained.n : Math.max(...plan.ns);
}

/** Restart the server under N connected clients; time until all are back (skypush: resumed, replayed). */
async function runStorm(ctx: Omit<ScenarioCtx, 'users'>): Promise<void> {
  const { plan, sys, fleet, driver, out, n } = ctx;
  const resume = sys.name === 'skypush';
  await fleet.expectCloses();
  await sys.stop();
  await fleet.waitClosed(30_000);
  await sys.start();
  await driver.call('configure', sys.driverTarget(plan.contentLength));
  // An event the clients missed while away: skypush must replay it on resume.
  if (resume) await driver.call('one', { endpoint: 'broadcast', kind: 'r', id: 1 });
  await fleet.reset();
  const { s0, t0, snaps, s1 } = await profiled(plan, sys, n, 'storm', async () => {
    const s0 = await sys.stats();
    const t0 = nowUs();
    const snaps = await fleet.reconnect({
      resume,
      expectReplay: resume,
      concurrency: plan.connectConcurrency,
      timeoutMs: 60_000,
    });
    return { s0, t0, snaps, s1: await sys.stats() };
  });
  const t = totals(snaps);
  const ms = (t.lastReadyUs - t0) / 1000;
  out.add('storm', 'time until all back', 'ms', ms);
  out.add('storm', 'server CPU per reconnect', 'µs', cpuDelta(s0, s1) / Math.max(1, t.ready));
  out.add('storm', 'clients back', 'count', t.ready);
  if (resume) out.add('storm', 'missed event replayed', 'count', t.count('r'));
  progress(
    `${sys.name} n=${n}: storm ${t.ready}/${n} back in ${fmt(ms, 0)} ms${resume ? `, ${t.count('r')} replayed` : ''}`,
  );
}
