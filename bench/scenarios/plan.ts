/** What a run measures: the scenario names, the metric samples they produce, and the three presets. */
import type { SystemName } from '../systems/system.ts';

export type ScenarioName = 'connect' | 'idle' | 'broadcast' | 'fanout' | 'sends' | 'storm' | 'multinode';
export const SCENARIOS: readonly ScenarioName[] = [
  'connect',
  'idle',
  'broadcast',
  'fanout',
  'sends',
  'storm',
  'multinode',
];

/** One measured value from one repetition. */
export interface Sample {
  scenario: ScenarioName;
  system: SystemName;
  n: number;
  metric: string;
  unit: string;
  value: number;
}

export interface Plan {
  ns: number[];
  reps: number;
  systems: SystemName[];
  scenarios: ScenarioName[];
  /** Heartbeat interval of every system (skypush, ws pings, Engine.IO pingInterval). */
  heartbeatMs: number;
  idleWindowMs: number;
  /** Broadcast bursts per repetition (one message to everyone each, measured one by one). */
  bursts: number;
  /** Open-loop broadcast stream: offered deliveries per second (rate = this / n) for durationMs. */
  fanout: { deliveriesPerSec: number; durationMs: number };
  /** Open-loop per-user sends through the HTTP API. */
  sends: { rate: number; durationMs: number };
  multinode: { nodes: number; connections: number; holdMs: number; bursts: number };
  /** Characters of message content; frames come out at ~220 bytes. */
  contentLength: number;
  connectConcurrency: number;
  entry: 'src' | 'dist';
  /** Extra node flags for the servers. */
  serverNodeArgs: string[];
  /** When set, each scenario's measured window is CPU-profiled inside the server and written here. */
  profileDir?: string;
}

const ALL_SYSTEMS: SystemName[] = ['skypush', 'ws', 'ws-cork', 'socketio'];

/** Scenarios each system takes part in: ws-cork only differs from ws when writes can coalesce. */
export function scenariosFor(system: SystemName, plan: Plan): ScenarioName[] {
  if (system === 'ws-cork') return plan.scenarios.filter((s) => s === 'broadcast' || s === 'fanout');
  if (system !== 'skypush') return plan.scenarios.filter((s) => s !== 'multinode');
  return plan.scenarios;
}

export const PRESETS: Record<'full' | 'quick' | 'smoke', Plan> = {
  full: {
    ns: [2_000, 10_000, 19_000],
    reps: 3,
    systems: ALL_SYSTEMS,
    scenarios: [...SCENARIOS],
    heartbeatMs: 10_000,
    idleWindowMs: 20_000,
    bursts: 10,
    fanout: { deliveriesPerSec: 200_000, durationMs: 2_000 },
    sends: { rate: 500, durationMs: 10_000 },
    multinode: { nodes: 3, connections: 51_000, holdMs: 30_000, bursts: 3 },
    contentLength: 100,
    connectConcurrency: 200,
    entry: 'src',
    serverNodeArgs: [],
  },
  quick: {
    ns: [2_000],
    reps: 1,
    systems: ALL_SYSTEMS,
    scenarios: SCENARIOS.filter((s) => s !== 'multinode'),
    heartbeatMs: 2_000,
    idleWindowMs: 3_000,
    bursts: 3,
    fanout: { deliveriesPerSec: 200_000, durationMs: 1_000 },
    sends: { rate: 500, durationMs: 2_000 },
    multinode: { nodes: 3, connections: 51_000, holdMs: 30_000, bursts: 3 },
    contentLength: 100,
    connectConcurrency: 200,
    entry: 'src',
    serverNodeArgs: [],
  },
  smoke: {
    ns: [50],
    reps: 1,
    systems: ALL_SYSTEMS,
    scenarios: SCENARIOS.filter((s) => s !== 'multinode'),
    heartbeatMs: 1_000,
    idleWindowMs: 500,
    bursts: 1,
    fanout: { deliveriesPerSec: 2_500, durationMs: 400 },
    sends: { rate: 100, durationMs: 500 },
    multinode: { nodes: 2, connections: 100, holdMs: 1_000, bursts: 1 },
    contentLength: 100,
    connectConcurrency: 50,
    entry: 'src',
    serverNodeArgs: [],
  },
};
