/**
 * The delivery scenarios: broadcast bursts (one message to everyone, measured one at a time), an
 * open-loop broadcast stream (deliveries per server CPU-second when frames can coalesce), and open-loop
 * per-user sends through the HTTP API (latency from the scheduled send time to receipt).
 */
import { sleep } from '../lib/clock.ts';
import { quantile } from '../lib/histogram.ts';
import { median } from '../lib/stats.ts';
import { totals } from '../load/fleet.ts';
import type { ClientSnapshot, StreamResult } from '../load/types.ts';
import { cpuDelta, fmt, progress, type ScenarioCtx } from './context.ts';

const DRAIN_TIMEOUT_MS = 120_000;

export async function runBroadcast(ctx: ScenarioCtx): Promise<void> {
  const { plan, sys, fleet, driver, out, n } = ctx;
  const cpu: number[] = [];
  const clientCpu: number[] = [];
  const last: number[] = [];
  const rate: number[] = [];
  let missing = 0;
  // One unmeasured broadcast first: every system is measured warm (JIT, buffers, pools).
  const warm = await fleet.reset();
  await driver.call('one', { endpoint: 'broadcast', kind: 'b', id: 0 });
  await fleet.waitKind('b', fleet.readyCounts(warm), 30_000);
  for (let b = 1; b <= plan.bursts; b++) {
    const base = await fleet.reset();
    const c0 = base.reduce((x, s) => x + s.cpuUs, 0);
    const s0 = await sys.stats();
    const sent = await driver.call<{ dueUs: number }>('one', { endpoint: 'broadcast', kind: 'b', id: b });
    const t = totals(await fleet.waitKind('b', fleet.readyCounts(base), 30_000));
    const s1 = await sys.stats();
    const got = t.count('b');
    missing += base.reduce((x, s) => x + s.ready, 0) - got;
    const spanUs = t.lastUs('b') - sent.dueUs;
    cpu.push(cpuDelta(s0, s1) / got);
    clientCpu.push((t.cpuUs - c0) / got);
    last.push(spanUs / 1000);
    rate.push(got / (spanUs / 1e6));
    await sleep(300);
  }
  out.add('broadcast', 'server CPU per delivery', 'µs', median(cpu));
  out.add('broadcast', 'time to last receipt', 'ms', median(last));
  out.add('broadcast', 'deliveries/s', '/s', median(rate));
  out.add('broadcast', 'client CPU per delivery', 'µs', median(clientCpu));
  out.add('broadcast', 'deliveries missing', 'count', missing);
  progress(
    `${sys.name} n=${n}: broadcast ${fmt(median(cpu), 2)} µs/delivery, last receipt ${fmt(median(last))} ms`,
  );
}

export async function runFanout(ctx: ScenarioCtx): Promise<void> {
  const { plan, sys, fleet, driver, out, n } = ctx;
  const ratePerSec = Math.max(1, plan.fanout.deliveriesPerSec / n);
  const count = Math.max(2, Math.round((ratePerSec * plan.fanout.durationMs) / 1000));
  const base = await fleet.reset();
  const s0 = await sys.stats();
  const r = await driver.call<StreamResult>(
    'stream',
    { endpoint: 'broadcast', kind: 's', rate: ratePerSec, count },
    DRAIN_TIMEOUT_MS,
  );
  const expected = fleet.readyCounts(base).map((x) => x * r.ok);
  const t = totals(await fleet.waitKind('s', expected, DRAIN_TIMEOUT_MS));
  const s1 = await sys.stats();
  const got = t.count('s');
  const cpuS = cpuDelta(s0, s1) / 1e6;
  const h = t.hist('s');
  out.add('fanout', 'deliveries per server CPU-second', '/CPU-s', got / cpuS);
  out.add('fanout', 'server CPU per delivery', 'µs', (cpuS * 1e6) / got);
  out.add('fanout', 'deliveries/s', '/s', got / ((t.lastUs('s') - r.firstDueUs) / 1e6));
  out.add('fanout', 'latency p99', 'ms', quantile(h, 0.99) / 1000);
  out.add('fanout', 'deliveries missing', 'count', expected.reduce((a, b) => a + b, 0) - got + r.failed * n);
  progress(
    `${sys.name} n=${n}: fanout ${count} × ${fmt(ratePerSec)}/s → ${fmt(got / cpuS / 1000)}k deliveries/CPU-s, ` +
      `p99 ${fmt(quantile(h, 0.99) / 1000)} ms`,
  );
}

/**
 * An open-loop stream of `count` per-user sends at `rate`/s through the HTTP API, waited for until every
 * one that succeeded has arrived: what the stream did, the receipts, and server CPU per successful send.
 */
export async function streamSends(ctx: ScenarioCtx, rate: number, count: number, drainMs = DRAIN_TIMEOUT_MS) {
  const { sys, fleet, driver, users } = ctx;
  await fleet.reset();
  const s0 = await sys.stats();
  const r = await driver.call<StreamResult>(
    'stream',
    { endpoint: 'send', kind: 'u', rate, count, users },
    drainMs + (count / rate) * 1000,
  );
  const perUser = r.perUser ?? {};
  const expected = fleet.users.map((us) => us.reduce((x, u) => x + (perUser[u] ?? 0), 0));
  // Failed requests deliver nothing: expect only what succeeded (approximately, if any failed).
  const scale = r.sent > 0 ? r.ok / r.sent : 0;
  const snaps: ClientSnapshot[] = await fleet.waitKind(
    'u',
    expected.map((e) => Math.floor(e * scale)),
    drainMs,
  );
  const s1 = await sys.stats();
  const t = totals(snaps);
  return { r, t, h: t.hist('u'), cpuPerSend: cpuDelta(s0, s1) / Math.max(1, r.ok) };
}

export async function runSends(ctx: ScenarioCtx): Promise<void> {
  const { plan, sys, out, n } = ctx;
  const count = Math.max(1, Math.round((plan.sends.rate * plan.sends.durationMs) / 1000));
  const { r, t, h, cpuPerSend } = await streamSends(ctx, plan.sends.rate, count);
  if (r.failed > 0) progress(`${sys.name} n=${n}: ${r.failed} sends failed: ${r.errors.join(' | ')}`);
  out.add('sends', 'latency p50', 'ms', quantile(h, 0.5) / 1000);
  out.add('sends', 'latency p99', 'ms', quantile(h, 0.99) / 1000);
  out.add('sends', 'latency max', 'ms', h.max / 1000);
  out.add('sends', 'server CPU per send', 'µs', cpuPerSend);
  out.add('sends', 'sends failed or undelivered', 'count', r.sent - t.count('u'));
  progress(
    `${sys.name} n=${n}: ${count} sends at ${plan.sends.rate}/s → p50 ${fmt(quantile(h, 0.5) / 1000, 2)} ` +
      `p99 ${fmt(quantile(h, 0.99) / 1000, 2)} max ${fmt(h.max / 1000, 2)} ms`,
  );
}
