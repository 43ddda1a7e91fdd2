/** Shared pieces of a measurement: the driver process, a sample collector and progress output. */
import { join } from 'node:path';
import type { Fleet } from '../load/fleet.ts';
import type { ServerStats } from '../lib/probe.ts';
import { spawnChild, type Child } from '../lib/rpc.ts';
import type { System, SystemName } from '../systems/system.ts';
import type { Plan, Sample, ScenarioName } from './plan.ts';

/** First user id the benchmark creates (away from the admin's and any real ids). */
export const USER_BASE = 1_000_000;

/** What a scenario of one cell (one system at one n) runs with. */
export interface ScenarioCtx {
  plan: Plan;
  sys: System;
  fleet: Fleet;
  driver: Child;
  out: Collector;
  n: number;
  users: number[];
}

export function userIds(n: number): number[] {
  return Array.from({ length: n }, (_, i) => USER_BASE + 1 + i);
}

export function startDriver(): Child {
  return spawnChild({ script: 'bench/load/driver.ts' });
}

export class Collector {
  readonly samples: Sample[] = [];
  constructor(
    private readonly system: SystemName,
    private readonly n: number,
  ) {}

  add(scenario: ScenarioName, metric: string, unit: string, value: number): void {
    this.samples.push({ scenario, system: this.system, n: this.n, metric, unit, value });
  }
}

/** Runs `work` with the server's CPU profiler on when the plan asks for profiles (`--cpu-prof`). */
export async function profiled<T>(
  plan: Plan,
  sys: System,
  n: number,
  scenario: ScenarioName,
  work: () => Promise<T>,
): Promise<T> {
  const dir = plan.profileDir;
  if (!dir) return work();
  await sys.profileStart();
  try {
    return await work();
  } finally {
    const file = join(dir, `${sys.name}-n${n}-${scenario}-${Date.now()}.cpuprofile`);
    await sys.profileStop(file).catch(() => undefined);
  }
}

export const cpuDelta = (a: ServerStats, b: ServerStats): number => b.cpuUs - a.cpuUs;

export function progress(msg: string): void {
  process.stderr.write(`  ${msg}\n`);
}

export const fmt = (x: number, d = 1): string => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');
