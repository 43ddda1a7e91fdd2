/**
 * Turns samples into the run's results: per (scenario, system, n, metric) the median, min and max over
 * repetitions; a table with the peers side by side and skypush's ratios to them; the targets.
 */
import type { Sample, ScenarioName } from '../scenarios/plan.ts';
import type { SystemName } from '../systems/system.ts';
import type { Machine } from './machine.ts';
import { summarize, type Summary } from './stats.ts';

export interface RunRow extends Summary {
  scenario: ScenarioName;
  system: SystemName;
  n: number;
  metric: string;
  unit: string;
  reps: number;
}

export interface Results {
  machine: Machine;
  runs: RunRow[];
  /** Scenarios that did not run (or only in part), and why. */
  skipped: Array<{ scenario: ScenarioName; reason: string }>;
  /** How a scenario ran, where its figures alone do not say (for example the settings it used). */
  notes: Array<{ scenario: ScenarioName; reason: string }>;
  targets: TargetCheck[];
}

export interface TargetCheck {
  target: string;
  measured: string;
  pass: boolean | null;
}

const SYSTEM_ORDER: SystemName[] = ['skypush', 'ws', 'ws-cork', 'socketio'];

export function aggregate(samples: readonly Sample[]): RunRow[] {
  const groups = new Map<string, Sample[]>();
  for (const s of samples) {
    const k = `${s.scenario}|${s.system}|${s.n}|${s.metric}`;
    const g = groups.get(k);
    if (g) g.push(s);
    else groups.set(k, [s]);
  }
  return [...groups.values()].map((g) => {
    const s = g[0] as Sample;
    return {
      scenario: s.scenario,
      system: s.system,
      n: s.n,
      metric: s.metric,
      unit: s.unit,
      ...summarize(g.map((x) => x.value)),
      reps: g.length,
    };
  });
}

export function num(x: number): string {
  if (!Number.isFinite(x)) return 'n/a';
  const a = Math.abs(x);
  const digits = a >= 100 ? 0 : a >= 10 ? 1 : 2;
  return x.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

export function find(
  runs: readonly RunRow[],
  scenario: ScenarioName,
  system: SystemName,
  n: number,
  metric: string,
) {
  return runs.find((r) => r.scenario === scenario && r.system === system && r.n === n && r.metric === metric);
}

/** Rows of the side-by-side table: one per (scenario, metric, n). */
export function tableRows(runs: readonly RunRow[]): string[][] {
  const systems = SYSTEM_ORDER.filter((s) => runs.some((r) => r.system === s));
  const peers = systems.filter((s) => s !== 'skypush');
  const header = ['scenario', 'metric', 'n', ...systems, ...peers.map((p) => `skypush/${p}`)];
  const rows: string[][] = [header];
  const keys = new Map<string, RunRow>();
  for (const r of runs) keys.set(`${r.scenario}|${r.metric}|${r.n}`, r);
  for (const r of keys.values()) {
    const cells = systems.map((s) => {
      const x = find(runs, r.scenario, s, r.n, r.metric);
      if (!x) return '–';
      return x.reps > 1 ? `${num(x.median)} [${num(x.min)}–${num(x.max)}]` : num(x.median);
    });
    const sky = find(runs, r.scenario, 'skypush', r.n, r.metric);
    const ratios = peers.map((p) => {
      const x = find(runs, r.scenario, p, r.n, r.metric);
      return sky && x && x.median !== 0 ? `${num(sky.median / x.median)}×` : '–';
    });
    rows.push([r.scenario, `${r.metric} (${r.unit})`, String(r.n), ...cells, ...ratios]);
  }
  return rows;
}

export function renderText(rows: readonly string[][]): string {
  const widths = (rows[0] ?? []).map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: readonly string[]) => r.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ');
  return [line(rows[0] ?? []), widths.map((w) => '─'.repeat(w)).join('  '), ...rows.slice(1).map(line)].join(
    '\n',
  );
}

export function renderMarkdown(rows: readonly string[][]): string {
  const line = (r: readonly string[]) => `| ${r.join(' | ')} |`;
  return [line(rows[0] ?? []), line((rows[0] ?? []).map(() => '---')), ...rows.slice(1).map(line)].join('\n');
}

/** skypush's median over `peer`'s for one metric at one n; undefined unless both were measured. */
export function ratioOf(
  runs: readonly RunRow[],
  scenario: ScenarioName,
  metric: string,
  peer: SystemName,
  n: number,
): number | undefined {
  const a = find(runs, scenario, 'skypush', n, metric);
  const b = find(runs, scenario, peer, n, metric);
  return a && b ? a.median / b.median : undefined;
}

/** The targets, checked against this run's medians (null: not measured in this run). */
export function checkTargets(runs: readonly RunRow[]): TargetCheck[] {
  const out: TargetCheck[] = [];
  const ns = [...new Set(runs.map((r) => r.n))].sort((a, b) => a - b);
  const ratio = (scenario: ScenarioName, metric: string, peer: SystemName, n: number) =>
    ratioOf(runs, scenario, metric, peer, n);
  for (const n of ns) {
    const r = ratio('broadcast', 'server CPU per delivery', 'ws', n);
    if (r !== undefined)
      out.push({
        target: `broadcast CPU/delivery ≤ 1.1× ws floor (n=${n})`,
        measured: `${num(r)}×`,
        pass: r <= 1.1,
      });
  }
  for (const n of ns) {
    const r = ratio('fanout', 'deliveries per server CPU-second', 'socketio', n);
    if (r !== undefined)
      out.push({
        target: `fan-out deliveries/CPU-s ≥ 3× Socket.IO (n=${n})`,
        measured: `${num(r)}×`,
        pass: r >= 3,
      });
  }
  for (const n of ns) {
    const a = find(runs, 'idle', 'skypush', n, 'RSS per connection');
    if (!a) continue;
    out.push({
      target: `idle RSS ≤ 6 KB/connection (n=${n})`,
      measured: `${num(a.median)} KB`,
      pass: a.median <= 6,
    });
    const r = ratio('idle', 'RSS per connection', 'socketio', n);
    if (r !== undefined)
      out.push({ target: `idle RSS ≤ 0.5× Socket.IO (n=${n})`, measured: `${num(r)}×`, pass: r <= 0.5 });
  }
  const p99 = find(runs, 'sends', 'skypush', 10_000, 'latency p99');
  out.push({
    target: 'per-user send p99 ≤ 10 ms at 500/s, 10k connections',
    measured: p99 ? `${num(p99.median)} ms` : 'not measured',
    pass: p99 ? p99.median <= 10 : null,
  });
  const last = find(runs, 'broadcast', 'skypush', 10_000, 'time to last receipt');
  out.push({
    target: 'broadcast to 10k: last receipt ≤ 60 ms',
    measured: last ? `${num(last.median)} ms` : 'not measured',
    pass: last ? last.median <= 60 : null,
  });
  const held = runs.find((r) => r.scenario === 'multinode' && r.metric === 'connections held');
  out.push({
    target: '≥ 50k concurrent connections held with heartbeats',
    measured: held ? `${num(held.min)}` : 'not measured',
    pass: held ? held.min >= 50_000 : null,
  });
  return [...out, ...storageTargets(runs)];
}

/** Issue #13's targets, for the storage scenarios this run measured (none are listed when not run). */
export function storageTargets(runs: readonly RunRow[]): TargetCheck[] {
  const out: TargetCheck[] = [];
  const of = (scenario: ScenarioName, re: RegExp) =>
    runs.filter((r) => r.scenario === scenario && r.system === 'skypush' && re.test(r.metric));
  for (const dialect of ['sqlite', 'postgres']) {
    const sizes = of('wide-send', new RegExp(`^DB bytes per recipient \\(${dialect}, `));
    if (sizes.length === 0) continue;
    const worst = Math.max(...sizes.map((r) => r.median));
    out.push({
      target: `wide send: ≤ 150 DB bytes per recipient at every content size (${dialect}, n=${sizes[0]?.n})`,
      measured: `${num(worst)} B at worst`,
      pass: worst <= 150,
    });
  }
  for (const r of of('toall-full', /^full \/ empty, .*CPU/))
    out.push({
      target: `send-to-all, full inboxes ≤ 1.2× empty: ${r.metric.replace(/^full \/ empty, /, '')} (n=${r.n})`,
      measured: `${num(r.median)}×`,
      pass: r.median <= 1.2,
    });
  const rss = of('backlog-storm', /^peak RSS growth/)[0];
  const once = of('backlog-storm', /^clients with every message exactly once$/)[0];
  if (rss)
    out.push({
      target: `backlog storm: peak RSS growth ≤ 256 MB (n=${rss.n})`,
      measured: `${num(rss.median)} MB`,
      pass: rss.median <= 256,
    });
  if (once)
    out.push({
      target: `backlog storm: every client gets every missed message exactly once (n=${once.n})`,
      measured: `${num(once.min)} of ${once.n}`,
      pass: once.min === once.n,
    });
  const p99 = of('pg-contention', /^1-target send latency p99$/)[0];
  if (p99)
    out.push({
      target: `PostgreSQL contention: 1-target send p99 ≤ 50 ms (${p99.n} senders, 2 nodes)`,
      measured: `${num(p99.median)} ms`,
      pass: p99.median <= 50,
    });
  return out;
}

export function renderTargets(checks: readonly TargetCheck[]): string {
  return checks
    .map((c) => `${c.pass === null ? '  —  ' : c.pass ? ' PASS' : ' MISS'}  ${c.target}: ${c.measured}`)
    .join('\n');
}
