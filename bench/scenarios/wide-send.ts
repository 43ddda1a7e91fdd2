/**
 * Wide send (issue #13): one POST /api/v1/messages/send listing `recipients` real users, some of them
 * online so the fan-out is real, at several content sizes, on SQLite and PostgreSQL. Reports the bytes
 * the database grew by per recipient (and on PostgreSQL the WAL written), the server's CPU per recipient
 * (and on PostgreSQL the database backends' CPU), and how the bytes per recipient scale with the content:
 * the goal is ≤ 150 B per recipient, whatever the content size. The content is incompressible (random
 * characters), so PostgreSQL's TOAST compression does not hide the cost of repeating it.
 */
import { dbMeter, type DbMeter } from '../lib/db-size.ts';
import { median } from '../lib/stats.ts';
import type { Child } from '../lib/rpc.ts';
import { backendCpuDelta, pgCpuMeter, type PgCpuMeter } from '../lib/pg-cpu.ts';
import { Fleet, totals } from '../load/fleet.ts';
import type { SkypushSystem } from '../systems/skypush.ts';
import { Collector, fmt, progress, userIds } from './context.ts';
import type { DialectName, Plan } from './plan.ts';
import { settle, usableDialects, withSkypush, type StorageOutcome } from './storage.ts';

/** "400 B", "4 KB", "40 KB" for content sizes of 400, 4,096, 40,960 characters. */
export function sizeLabel(chars: number): string {
  return chars >= 1024 ? `${Math.round(chars / 1024)} KB` : `${chars} B`;
}

interface Meters {
  db: DbMeter;
  pgCpu: PgCpuMeter | undefined;
}

interface WideResult {
  bytes: number;
  walBytes: number | undefined;
  cpuUs: number;
  dbCpuUs: number | undefined;
  answerMs: number;
  lastReceiptMs: number;
  delivered: number;
  online: number;
  stallMs: number;
}

/** One wide send, measured from before the request until the server is quiet again. */
async function measureOne(
  sys: SkypushSystem,
  driver: Child,
  fleet: Fleet,
  meters: Meters,
  targets: number[],
  id: number,
): Promise<WideResult> {
  const base = await fleet.reset();
  const online = fleet.readyCounts(base);
  const size0 = await meters.db.read();
  await sys.loopDelayMax(true);
  const cpu0 = await meters.pgCpu?.read();
  const s0 = await sys.stats();
  const sent = await driver.call<{ dueUs: number; doneUs: number }>(
    'one',
    { endpoint: 'send', kind: 'b', id, targets },
    600_000,
  );
  const t = totals(await fleet.waitKind('b', online, 120_000, online));
  await settle(sys);
  const s1 = await sys.stats();
  const cpu1 = await meters.pgCpu?.read();
  const size1 = await meters.db.read();
  return {
    bytes: size1.bytes - size0.bytes,
    walBytes:
      size0.walLsn !== undefined && size1.walLsn !== undefined ? size1.walLsn - size0.walLsn : undefined,
    cpuUs: s1.cpuUs - s0.cpuUs,
    dbCpuUs: cpu0 && cpu1 ? backendCpuDelta(cpu0, cpu1) : undefined,
    answerMs: (sent.doneUs - sent.dueUs) / 1000,
    lastReceiptMs: (t.lastUs('b') - sent.dueUs) / 1000,
    delivered: t.count('b'),
    online: online.reduce((a, b) => a + b, 0),
    stallMs: await sys.loopDelayMax(),
  };
}

function record(out: Collector, dialect: DialectName, size: number, r: WideResult, n: number): void {
  const at = `${dialect}, ${sizeLabel(size)} content`;
  out.add('wide-send', `DB bytes per recipient (${at})`, 'B', r.bytes / n);
  if (r.walBytes !== undefined) out.add('wide-send', `WAL bytes per recipient (${at})`, 'B', r.walBytes / n);
  out.add('wide-send', `server CPU per recipient (${at})`, 'µs', r.cpuUs / n);
  if (r.dbCpuUs !== undefined)
    out.add('wide-send', `PostgreSQL CPU per recipient (${at})`, 'µs', r.dbCpuUs / n);
  out.add('wide-send', `send answered (${at})`, 'ms', r.answerMs);
  out.add('wide-send', `last online recipient has it (${at})`, 'ms', r.lastReceiptMs);
  out.add('wide-send', `longest event-loop stall (${at})`, 'ms', r.stallMs);
  out.add('wide-send', `online recipients missed (${at})`, 'count', r.online - r.delivered);
}

async function onDialect(plan: Plan, driver: Child, dialect: DialectName, out: Collector): Promise<void> {
  const w = plan.storage.wideSend;
  const env = { SKYPUSH_MAX_TARGETS: String(Math.max(10_000, w.recipients)) };
  await withSkypush(plan, dialect, { tag: 'wide', env }, async (sys) => {
    const users = userIds(w.recipients);
    await sys.addUsers(users);
    // Every k-th user online, so the online ones are spread over the target list.
    const step = Math.max(1, Math.floor(w.recipients / Math.max(1, w.connected)));
    const fleet = Fleet.start(users.filter((_, i) => i % step === 0).slice(0, w.connected));
    const meters: Meters = {
      db: await dbMeter(sys.databaseUrl),
      pgCpu: dialect === 'postgres' ? await pgCpuMeter(sys.databaseUrl) : undefined,
    };
    try {
      await fleet.connect(sys.clientTarget(), { concurrency: plan.connectConcurrency, timeoutMs: 60_000 });
      let id = 0;
      const perSize = new Map<number, number[]>();
      for (const size of w.contentSizes) {
        await driver.call('configure', { ...sys.driverTarget(size), filler: 'random' });
        // One unmeasured send first at each size: the database and the server measured warm.
        if (size === w.contentSizes[0]) await measureOne(sys, driver, fleet, meters, users, id++);
        for (let rep = 0; rep < plan.reps; rep++) {
          const r = await measureOne(sys, driver, fleet, meters, users, id++);
          record(out, dialect, size, r, w.recipients);
          perSize.set(size, [...(perSize.get(size) ?? []), r.bytes / w.recipients]);
          progress(
            `wide-send ${dialect} ${sizeLabel(size)}: ${fmt(r.bytes / w.recipients, 0)} B/recipient, ` +
              `${fmt(r.cpuUs / w.recipients, 1)} µs CPU/recipient, answered in ${fmt(r.answerMs, 0)} ms`,
          );
        }
      }
      recordGrowth(out, dialect, w.contentSizes, perSize);
    } finally {
      await fleet.stop();
      await meters.db.close();
      await meters.pgCpu?.close();
    }
  });
}

/** Bytes per recipient at the largest content size over the smallest, per repetition: 1× when flat. */
function recordGrowth(
  out: Collector,
  dialect: DialectName,
  sizes: readonly number[],
  perSize: Map<number, number[]>,
): void {
  const small = Math.min(...sizes);
  const large = Math.max(...sizes);
  if (small === large) return;
  const a = perSize.get(small) ?? [];
  const b = perSize.get(large) ?? [];
  const metric = `bytes per recipient, ${sizeLabel(large)} / ${sizeLabel(small)} content (${dialect})`;
  // At tiny sizes a small send may fit in pages the database already had (growth 0): no ratio then.
  for (let i = 0; i < Math.min(a.length, b.length); i++)
    if ((a[i] as number) > 0) out.add('wide-send', metric, '×', (b[i] as number) / (a[i] as number));
  progress(
    `wide-send ${dialect}: ${sizeLabel(large)} / ${sizeLabel(small)} = ${fmt(median(b) / median(a), 1)}×`,
  );
}

export async function runWideSend(plan: Plan, driver: Child): Promise<StorageOutcome> {
  const w = plan.storage.wideSend;
  const out = new Collector('skypush', w.recipients);
  const { dialects, skipped } = await usableDialects(w.dialects);
  for (const dialect of dialects) await onDialect(plan, driver, dialect, out);
  return { samples: out.samples, skipped };
}
