/** Issue #14's targets ("Performance, round two"), checked against a run's medians; unmeasured ones are left out. */
import type { ScenarioName } from '../scenarios/plan.ts';
import type { SystemName } from '../systems/system.ts';
import { num, ratioOf, type RunRow, type TargetCheck } from './report.ts';

/**
 * The rate curve's baseline: the highest rate at which p99 stayed ≤ 50 ms with 10,000 connections, for
 * the code before issue #14's changes (commit c20d79a, measured by this scenario on the
 * node-svc VM; docs/BENCHMARKS.md). The goal is three times it.
 */
export const SUSTAINED_BASELINE = { rate: 1_250, commit: 'c20d79a' };

export function performanceTargets(runs: readonly RunRow[]): TargetCheck[] {
  const out: TargetCheck[] = [];
  const ns = [...new Set(runs.map((r) => r.n))].sort((a, b) => a - b);

  const each = (
    scenario: ScenarioName,
    metric: string,
    peer: SystemName,
    label: string,
    ok: (r: number) => boolean,
  ) => {
    for (const n of ns) {
      const r = ratioOf(runs, scenario, metric, peer, n);
      if (r !== undefined) out.push({ target: `${label} (n=${n})`, measured: `${num(r)}×`, pass: ok(r) });
    }
  };
  each(
    'sends',
    'server CPU per send',
    'socketio',
    '#14 per-send server CPU ≤ 1.0× Socket.IO relay',
    (r) => r <= 1,
  );
  const best = runs.find(
    (r) => r.scenario === 'sustained' && r.system === 'skypush' && r.metric.startsWith('highest rate'),
  );
  if (best)
    out.push({
      target: `#14 sustained sends, p99 ≤ 50 ms: ≥ 3× ${SUSTAINED_BASELINE.rate}/s (n=${best.n})`,
      measured: `${num(best.median)}/s = ${num(best.median / SUSTAINED_BASELINE.rate)}×`,
      pass: best.median >= 3 * SUSTAINED_BASELINE.rate,
    });
  each('connect', 'server CPU per connect', 'ws', '#14 connect CPU ≤ 1.5× ws', (r) => r <= 1.5);
  each('storm', 'time until all back', 'socketio', '#14 reconnect storm ≤ 1.0× Socket.IO', (r) => r <= 1);
  const held = runs.find((r) => r.scenario === 'multinode' && r.metric === 'connections held');
  const reached = runs.find((r) => r.scenario === 'multinode' && r.metric === 'broadcast: deliveries');
  if (held)
    out.push({
      target: '#14 ≥ 100,000 connections held over several processes, a broadcast reaching all',
      measured: `${num(held.min)} held, ${reached ? num(reached.min) : '?'} reached`,
      pass: held.min >= 100_000 && reached !== undefined && reached.min >= held.min,
    });
  each(
    'fanout',
    'deliveries per server CPU-second',
    'ws-cork',
    '#14 fan-out deliveries/CPU-s ≥ 1.0× ws-cork',
    (r) => r >= 1,
  );
  return out;
}
