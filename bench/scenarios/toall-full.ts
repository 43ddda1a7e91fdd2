/**
 * Send-to-all with full inboxes (issue #13): `users` users online, an admin's send-to-all, measured
 * until every client has both its NEW_MESSAGE and its UNREAD_COUNT — first with empty inboxes, then
 * after seeding `messagesPerUser` messages into every inbox (seed-inbox.ts). The goal: full ≤ 1.2× empty
 * in server CPU. On PostgreSQL the unread recount runs in the database's backends, so their CPU is
 * reported too, and the ratio is taken over both. Heartbeats are slowed down (a 1-hour timeout) so that a
 * node stalled by a long recount keeps its clients and its CPU can be measured; the longest stall of
 * its event loop is reported instead (with the default 60 s timeout a stall that long drops them all).
 */
import { join } from 'node:path';
import type { Child } from '../lib/rpc.ts';
import { median } from '../lib/stats.ts';
import { backendCpuDelta, pgCpuMeter, type PgCpuMeter } from '../lib/pg-cpu.ts';
import { Fleet, totals } from '../load/fleet.ts';
import type { SkypushSystem } from '../systems/skypush.ts';
import { Collector, fmt, progress, userIds } from './context.ts';
import type { DialectName, Plan } from './plan.ts';
import { seedInboxes } from './seed-inbox.ts';
import { usableDialects, withSkypush, type StorageOutcome } from './storage.ts';

interface ToAllResult {
  /** The node's CPU, and on PostgreSQL the node's plus the database backends'. */
  cpuUs: number;
  totalCpuUs: number;
  wallMs: number;
  /** Clients without their NEW_MESSAGE or their UNREAD_COUNT when the wait ended. */
  missing: number;
  /** Connections closed by the server meanwhile. */
  dropped: number;
  /** The longest event-loop stall of the node, ms. */
  stallMs: number;
}

const WAIT_MS = 300_000;

async function sendToAll(
  sys: SkypushSystem,
  driver: Child,
  fleet: Fleet,
  pgCpu: PgCpuMeter | undefined,
  id: number,
  profile?: string,
): Promise<ToAllResult> {
  const base = await fleet.reset();
  const online = fleet.readyCounts(base);
  const expected = online.reduce((a, b) => a + b, 0);
  if (expected === 0) throw new Error('toall-full: no client is online');
  await sys.loopDelayMax(true);
  const db0 = await pgCpu?.read();
  if (profile) await sys.profileStart();
  const s0 = await sys.stats();
  const sent = await driver.call<{ dueUs: number }>('one', { endpoint: 'toall', kind: 'b', id }, WAIT_MS);
  const t = totals(await fleet.waitKind('b', online, WAIT_MS, online));
  const s1 = await sys.stats();
  if (profile) await sys.profileStop(profile);
  const db1 = await pgCpu?.read();
  const cpuUs = s1.cpuUs - s0.cpuUs;
  const missing = Math.max(0, expected - t.count('b')) + Math.max(0, expected - t.unread);
  return {
    cpuUs,
    totalCpuUs: cpuUs + (db0 && db1 ? backendCpuDelta(db0, db1) : 0),
    wallMs: missing > 0 ? NaN : (Math.max(t.lastUs('b'), t.lastUnreadUs) - sent.dueUs) / 1000,
    missing,
    dropped: t.unexpectedCloses,
    stallMs: await sys.loopDelayMax(),
  };
}

/**
 * `reps` measured sends after an unmeasured one: the first send of a fresh server, or the first after
 * the node sat idle while the inboxes were seeded, pays warm-up costs the state does not cause.
 */
async function measureState(
  plan: Plan,
  run: (id: number) => Promise<ToAllResult>,
  firstId: number,
): Promise<ToAllResult[]> {
  await run(firstId);
  const rs: ToAllResult[] = [];
  for (let rep = 1; rep <= plan.reps; rep++) rs.push(await run(firstId + rep));
  return rs;
}

function record(out: Collector, dialect: DialectName, empty: ToAllResult[], full: ToAllResult[]): void {
  const pg = dialect === 'postgres';
  for (const [state, rs] of [
    ['empty', empty],
    ['full', full],
  ] as const) {
    for (const r of rs) {
      out.add('toall-full', `server CPU, ${state} inboxes (${dialect})`, 'ms', r.cpuUs / 1000);
      if (pg)
        out.add(
          'toall-full',
          `server + PostgreSQL CPU, ${state} inboxes (${dialect})`,
          'ms',
          r.totalCpuUs / 1000,
        );
      out.add('toall-full', `time until all have both frames, ${state} inboxes (${dialect})`, 'ms', r.wallMs);
      out.add('toall-full', `longest event-loop stall, ${state} inboxes (${dialect})`, 'ms', r.stallMs);
      out.add('toall-full', `clients missing a frame, ${state} inboxes (${dialect})`, 'count', r.missing);
      out.add('toall-full', `clients dropped, ${state} inboxes (${dialect})`, 'count', r.dropped);
    }
  }
  // Paired by repetition: the i-th full send against the i-th empty one.
  for (let i = 0; i < Math.min(empty.length, full.length); i++) {
    const e = empty[i] as ToAllResult;
    const f = full[i] as ToAllResult;
    out.add(
      'toall-full',
      `full / empty, ${pg ? 'server + PostgreSQL' : 'server'} CPU (${dialect})`,
      '×',
      f.totalCpuUs / e.totalCpuUs,
    );
    out.add('toall-full', `full / empty, time until all have both (${dialect})`, '×', f.wallMs / e.wallMs);
  }
}

async function onDialect(plan: Plan, driver: Child, dialect: DialectName, out: Collector): Promise<void> {
  const t = plan.storage.toallFull;
  const env = { SKYPUSH_HEARTBEAT_INTERVAL_MS: '60000', SKYPUSH_HEARTBEAT_TIMEOUT_MS: '3600000' };
  await withSkypush(plan, dialect, { tag: 'toall', maxConnections: t.users + 1_000, env }, async (sys) => {
    const users = userIds(t.users);
    await sys.addUsers(users);
    const fleet = Fleet.start(users, Math.max(1, Math.ceil(t.users / 2)));
    const pgCpu = dialect === 'postgres' ? await pgCpuMeter(sys.databaseUrl) : undefined;
    try {
      await fleet.connect(sys.clientTarget(), { concurrency: plan.connectConcurrency, timeoutMs: 120_000 });
      await driver.call('configure', sys.driverTarget(plan.contentLength));
      // With --cpu-prof, each measured send's window is profiled (bench/results/profiles/toall-*.cpuprofile).
      const profileOf = (id: number) =>
        plan.profileDir ? join(plan.profileDir, `toall-${dialect}-${id}.cpuprofile`) : undefined;
      const run = (id: number) => sendToAll(sys, driver, fleet, pgCpu, id, profileOf(id));
      const empty = await measureState(plan, run, 0);
      const started = Date.now();
      const rows = await seedInboxes(sys.databaseUrl, t.messagesPerUser);
      progress(
        `toall-full ${dialect}: seeded ${rows.toLocaleString('en-US')} inbox rows in ${fmt((Date.now() - started) / 1000)} s`,
      );
      // One unmeasured send first, as for the empty state: the node has been idle while the inboxes
      // were seeded, and V8 shrinks an idle heap, so the first burst after it pays extra garbage
      // collection whatever the inboxes hold (an empty-inbox send after 45 s idle measured 481 ms and 84
      // ms of GC against ~240 ms and ~10 ms warm; docs/BENCHMARKS.md).
      const full = await measureState(plan, run, 1_000);
      record(out, dialect, empty, full);
      const cpuMs = (rs: ToAllResult[]) => fmt(median(rs.map((r) => r.totalCpuUs / 1000)), 0);
      progress(`toall-full ${dialect}: CPU empty ${cpuMs(empty)} ms, full ${cpuMs(full)} ms`);
    } finally {
      await fleet.stop();
      await pgCpu?.close();
    }
  });
}

export async function runToallFull(plan: Plan, driver: Child): Promise<StorageOutcome> {
  const t = plan.storage.toallFull;
  const out = new Collector('skypush', t.users);
  const { dialects, skipped } = await usableDialects(t.dialects);
  for (const dialect of dialects) await onDialect(plan, driver, dialect, out);
  return { samples: out.samples, skipped };
}
