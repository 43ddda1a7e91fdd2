/**
 * Issue #14, target 2: durable sends at rising open-loop rates with the cell's connections open. Each
 * step sends `rate` per-user messages a second for `stepMs` through the HTTP API; latency runs from each
 * request's scheduled time to its receipt by the client (so queueing anywhere counts). The curve stops
 * at the first step past saturation (p99 over `stopP99Ms`, or anything failed or undelivered), and
 * reports the highest rate whose p99 stayed within `goalMs`.
 */
import { quantile } from '../lib/histogram.ts';
import { fmt, progress, type ScenarioCtx } from './context.ts';
import { streamSends } from './delivery.ts';

const DRAIN_TIMEOUT_MS = 60_000;

export async function runSustained(ctx: ScenarioCtx): Promise<void> {
  const { plan, sys, out, n } = ctx;
  const { rates, stepMs, goalMs, stopP99Ms } = plan.sustained;
  let best = 0;
  for (const rate of rates) {
    const count = Math.max(1, Math.round((rate * stepMs) / 1000));
    const { r, t, h, cpuPerSend } = await streamSends(ctx, rate, count, DRAIN_TIMEOUT_MS);
    const p50 = quantile(h, 0.5) / 1000;
    const p99 = quantile(h, 0.99) / 1000;
    const lost = r.sent - t.count('u');
    out.add('sustained', `p50 at ${rate}/s`, 'ms', p50);
    out.add('sustained', `p99 at ${rate}/s`, 'ms', p99);
    out.add('sustained', `server CPU per send at ${rate}/s`, 'µs', cpuPerSend);
    progress(
      `${sys.name} n=${n}: ${rate} sends/s → p50 ${fmt(p50, 2)} p99 ${fmt(p99, 2)} ms` +
        (lost > 0 ? `, ${lost} failed or undelivered${r.errors[0] ? ` (${r.errors[0]})` : ''}` : ''),
    );
    if (lost > 0 || p99 > stopP99Ms) break;
    if (p99 <= goalMs) best = rate;
  }
  out.add('sustained', `highest rate with p99 ≤ ${goalMs} ms`, '/s', best);
}
