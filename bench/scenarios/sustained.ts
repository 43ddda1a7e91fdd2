/**
 * Issue #14, target 2: durable sends at rising open-loop rates with the cell's connections open. Each
 * step sends `rate` per-user messages a second for `stepMs` through the HTTP API; latency runs from each
 * request's scheduled time to its receipt by the client (so queueing anywhere counts). The curve stops
 * at the first step past saturation (p99 over `stopP99Ms`, or anything failed or undelivered), and
 * reports the highest rate whose p99 stayed within `goalMs`.
 */
import { quantile } from '../lib/histogram.ts';
import { totals } from '../load/fleet.ts';
import type { StreamResult } from '../load/types.ts';
import { cpuDelta, fmt, progress, type ScenarioCtx } from './context.ts';

const DRAIN_TIMEOUT_MS = 60_000;

export async function runSustained(ctx: ScenarioCtx): Promise<void> {
  const { plan, sys, fleet, driver, out, n, users } = ctx;
  const { rates, stepMs, goalMs, stopP99Ms } = plan.sustained;
  let best = 0;
  for (const rate of rates) {
    const count = Math.max(1, Math.round((rate * stepMs) / 1000));
    await fleet.reset();
    const s0 = await sys.stats();
    const r = await driver.call<StreamResult>(
      'stream',
      { endpoint: 'send', kind: 'u', rate, count, users },
      DRAIN_TIMEOUT_MS + stepMs,
    );
    const perUser = r.perUser ?? {};
    const expected = fleet.users.map((us) => us.reduce((x, u) => x + (perUser[u] ?? 0), 0));
    const snaps = await fleet.waitKind('u', expected, DRAIN_TIMEOUT_MS);
    const s1 = await sys.stats();
    const t = totals(snaps);
    const h = t.hist('u');
    const p50 = quantile(h, 0.5) / 1000;
    const p99 = quantile(h, 0.99) / 1000;
    const lost = r.sent - t.count('u');
    out.add('sustained', `p50 at ${rate}/s`, 'ms', p50);
    out.add('sustained', `p99 at ${rate}/s`, 'ms', p99);
    out.add('sustained', `server CPU per send at ${rate}/s`, 'µs', cpuDelta(s0, s1) / Math.max(1, r.ok));
    progress(
      `${sys.name} n=${n}: ${rate} sends/s → p50 ${fmt(p50, 2)} p99 ${fmt(p99, 2)} ms` +
        (lost > 0 ? `, ${lost} failed or undelivered${r.errors[0] ? ` (${r.errors[0]})` : ''}` : ''),
    );
    if (lost > 0 || p99 > stopP99Ms) break;
    if (p99 <= goalMs) best = rate;
  }
  out.add('sustained', `highest rate with p99 ≤ ${goalMs} ms`, '/s', best);
}
