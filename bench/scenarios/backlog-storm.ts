/**
 * Backlog storm (issue #13): `clients` connect and keep their cursor; the server goes down; it comes back
 * and `messages` send-to-all messages of `contentLength` incompressible characters are sent while nobody
 * is connected; the server restarts once more (so the storm starts on a fresh process, whose RSS before
 * is the baseline); then every client resumes at once with `?since=`. Reports the server's peak RSS
 * growth during the storm (goal: under a documented cap, 256 MB in the issue), the time until every
 * client has caught up, and exactly-once per client and message id (load/tally.ts), not just counts.
 */
import { nowUs, sleep } from '../lib/clock.ts';
import type { ServerStats } from '../lib/probe.ts';
import type { Child } from '../lib/rpc.ts';
import { Fleet, totals } from '../load/fleet.ts';
import type { SkypushSystem } from '../systems/skypush.ts';
import { Collector, fmt, progress, userIds } from './context.ts';
import type { Plan } from './plan.ts';
import { replayCapLabel, withSkypush, type StorageOutcome } from './storage.ts';

const CATCH_UP_MS = 300_000;

/** Polls the server's RSS while `until` is pending; the highest value read. */
async function sampleRss(sys: SkypushSystem, until: Promise<unknown>): Promise<number> {
  let done = false;
  const stop = until.then(
    () => (done = true),
    () => (done = true),
  );
  let max = 0;
  while (!done) {
    const s = await sys.stats().catch(() => undefined);
    if (s) max = Math.max(max, s.rss);
    await Promise.race([sleep(50), stop]);
  }
  return max;
}

/** The server down, the messages sent while the clients are away, the server restarted fresh. */
async function missMessages(sys: SkypushSystem, driver: Child, fleet: Fleet, plan: Plan): Promise<void> {
  const b = plan.storage.backlogStorm;
  await fleet.expectCloses();
  await sys.stop();
  await fleet.waitClosed(30_000);
  await sys.start();
  await driver.call('configure', { ...sys.driverTarget(b.contentLength), filler: 'random' });
  for (let id = 0; id < b.messages; id++) await driver.call('one', { endpoint: 'toall', kind: 'r', id });
  await sys.stop();
  await sys.start();
}

/** Peak RSS over the baseline: the kernel's high-water mark if the storm raised it, else the polled peak. */
function peakGrowth(s0: ServerStats, s1: ServerStats, polled: number): number {
  const peak = s1.maxRss > s0.maxRss ? s1.maxRss : Math.max(polled, s1.rss);
  return peak - s0.rss;
}

async function stormOnce(sys: SkypushSystem, driver: Child, fleet: Fleet, plan: Plan, out: Collector) {
  const b = plan.storage.backlogStorm;
  await missMessages(sys, driver, fleet, plan);
  await fleet.reset();
  await fleet.startTally('r', b.messages);
  await sys.loopDelayMax(true);
  const s0 = await sys.stats(true);
  const t0 = nowUs();
  const storm = (async () => {
    const snaps = await fleet.reconnect({
      resume: true,
      expectReplay: true,
      concurrency: b.clients,
      timeoutMs: 60_000,
      retryForMs: CATCH_UP_MS,
    });
    return { snaps, tally: await fleet.waitTally(CATCH_UP_MS) };
  })();
  const polled = await sampleRss(sys, storm);
  const { snaps, tally } = await storm;
  const s1 = await sys.stats();
  const stallMs = await sys.loopDelayMax();
  const t = totals(snaps);
  const back = t.ready;
  const growth = peakGrowth(s0, s1, polled) / 2 ** 20;
  const catchUpMs = tally.lastCompleteUs > 0 ? (tally.lastCompleteUs - t0) / 1000 : NaN;
  out.add('backlog-storm', 'peak RSS growth during the storm', 'MB', growth);
  out.add('backlog-storm', 'time until all caught up', 'ms', catchUpMs);
  out.add('backlog-storm', 'server CPU per client', 'µs', (s1.cpuUs - s0.cpuUs) / b.clients);
  out.add('backlog-storm', 'longest event-loop stall', 'ms', stallMs);
  out.add('backlog-storm', 'clients back', 'count', back);
  out.add('backlog-storm', 'connection attempts that failed (then retried)', 'count', t.failedConnects);
  out.add('backlog-storm', 'clients with every message exactly once', 'count', tally.exactlyOnce);
  out.add('backlog-storm', 'duplicate deliveries', 'count', tally.duplicates);
  out.add('backlog-storm', 'missing deliveries', 'count', tally.missing + tally.stray);
  if (t.failedConnects > 0) progress(`backlog-storm: failed attempts: ${JSON.stringify(t.failures)}`);
  progress(
    `backlog-storm: ${tally.exactlyOnce}/${b.clients} exactly once (${tally.duplicates} duplicates, ` +
      `${tally.missing} missing), caught up in ${fmt(catchUpMs, 0)} ms, peak RSS +${fmt(growth, 0)} MB`,
  );
}

export async function runBacklogStorm(plan: Plan, driver: Child): Promise<StorageOutcome> {
  const b = plan.storage.backlogStorm;
  const out = new Collector('skypush', b.clients);
  await withSkypush(plan, 'sqlite', { tag: 'storm', maxConnections: b.clients + 1_000 }, async (sys) => {
    const users = userIds(b.clients);
    await sys.addUsers(users);
    const fleet = Fleet.start(users, Math.max(1, Math.ceil(b.clients / 2)));
    try {
      await fleet.connect(sys.clientTarget(), { concurrency: plan.connectConcurrency, timeoutMs: 60_000 });
      for (let rep = 0; rep < plan.reps; rep++) await stormOnce(sys, driver, fleet, plan, out);
    } finally {
      await fleet.stop();
    }
  });
  return {
    samples: out.samples,
    notes: [
      `${b.clients} clients × ${b.messages} messages of ${b.contentLength} characters; ${replayCapLabel()}`,
    ],
  };
}
