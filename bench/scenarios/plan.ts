/** What a run measures: the scenario names, the metric samples they produce, and the three presets. */
import type { SystemName } from '../systems/system.ts';

export type ScenarioName =
  | 'connect'
  | 'idle'
  | 'broadcast'
  | 'fanout'
  | 'sends'
  | 'sustained'
  | 'storm'
  | 'multinode'
  | StorageScenario;

/** Issue #13's scenarios: skypush against itself (full vs empty, content sizes), each its own servers. */
export type StorageScenario = 'wide-send' | 'toall-full' | 'backlog-storm' | 'pg-contention';
export const STORAGE_SCENARIOS: readonly StorageScenario[] = [
  'wide-send',
  'toall-full',
  'backlog-storm',
  'pg-contention',
];

export const SCENARIOS: readonly ScenarioName[] = [
  'connect',
  'idle',
  'broadcast',
  'fanout',
  'sends',
  'sustained',
  'storm',
  'multinode',
  ...STORAGE_SCENARIOS,
];

/** Scenarios that start servers of their own instead of running inside a cell (one system at one n). */
const STANDALONE = new Set<ScenarioName>(['multinode', ...STORAGE_SCENARIOS]);
export const isCellScenario = (s: ScenarioName): boolean => !STANDALONE.has(s);

export type DialectName = 'sqlite' | 'postgres';

/** Sizes of issue #13's scenarios (each repeated `reps` times within its own servers). */
export interface StoragePlan {
  /** One send listing `recipients` users, `connected` of them online, at each content size (chars). */
  wideSend: { recipients: number; connected: number; contentSizes: number[]; dialects: DialectName[] };
  /** Send-to-all to `users` online users, with empty inboxes, then with `messagesPerUser` each. */
  toallFull: { users: number; messagesPerUser: number; dialects: DialectName[] };
  /** `clients` resume after a restart, each missing `messages` send-to-all messages of `contentLength`. */
  backlogStorm: { clients: number; messages: number; contentLength: number };
  /** `senders` closed-loop senders over 2 nodes; 1 in `wideEvery` sends lists `wideTargets` users. */
  pgContention: {
    nodes: number;
    senders: number;
    wideTargets: number;
    wideEvery: number;
    warmupMs: number;
    durationMs: number;
  };
}

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
  /**
   * Open-loop sends at rising rates, at the cell of `n` connections only (the rate curve of issue #14):
   * each step lasts stepMs; the curve stops past stopP99Ms; the result is the highest rate within goalMs.
   */
  sustained: { n: number; rates: number[]; stepMs: number; goalMs: number; stopP99Ms: number };
  multinode: { nodes: number; connections: number; holdMs: number; bursts: number };
  /** Characters of message content; frames come out at ~220 bytes. */
  contentLength: number;
  connectConcurrency: number;
  entry: 'src' | 'dist';
  /** Extra node flags for the servers. */
  serverNodeArgs: string[];
  /** When set, each scenario's measured window is CPU-profiled inside the server and written here. */
  profileDir?: string;
  storage: StoragePlan;
}

const ALL_SYSTEMS: SystemName[] = ['skypush', 'ws', 'ws-cork', 'socketio'];

/** Scenarios each system takes part in: ws-cork only differs from ws when writes can coalesce. */
export function scenariosFor(system: SystemName, plan: Plan): ScenarioName[] {
  if (system === 'ws-cork') return plan.scenarios.filter((s) => s === 'broadcast' || s === 'fanout');
  if (system !== 'skypush') return plan.scenarios.filter(isCellScenario);
  return plan.scenarios;
}

/** Reduced sizes, so that `--quick` stays under its budget: SQLite only, PostgreSQL contention for 3 s. */
const QUICK_STORAGE: StoragePlan = {
  wideSend: { recipients: 1_000, connected: 100, contentSizes: [400, 4_096, 40_960], dialects: ['sqlite'] },
  toallFull: { users: 1_000, messagesPerUser: 100, dialects: ['sqlite'] },
  backlogStorm: { clients: 500, messages: 50, contentLength: 4_096 },
  pgContention: { nodes: 2, senders: 16, wideTargets: 500, wideEvery: 16, warmupMs: 500, durationMs: 3_000 },
};

/** Tiny sizes for test/bench-smoke.test.ts: every path runs, on both dialects where there are two. */
const SMOKE_STORAGE: StoragePlan = {
  wideSend: { recipients: 50, connected: 10, contentSizes: [400, 4_096], dialects: ['sqlite', 'postgres'] },
  toallFull: { users: 50, messagesPerUser: 20, dialects: ['sqlite', 'postgres'] },
  backlogStorm: { clients: 50, messages: 10, contentLength: 4_096 },
  pgContention: { nodes: 2, senders: 4, wideTargets: 50, wideEvery: 4, warmupMs: 200, durationMs: 1_000 },
};

const FULL_STORAGE: StoragePlan = {
  wideSend: {
    recipients: 10_000,
    connected: 1_000,
    contentSizes: [400, 4_096, 40_960],
    dialects: ['sqlite', 'postgres'],
  },
  toallFull: { users: 10_000, messagesPerUser: 1_000, dialects: ['sqlite', 'postgres'] },
  backlogStorm: { clients: 5_000, messages: 200, contentLength: 4_096 },
  pgContention: {
    nodes: 2,
    senders: 64,
    wideTargets: 5_000,
    wideEvery: 16,
    warmupMs: 2_000,
    durationMs: 20_000,
  },
};

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
    sustained: {
      n: 10_000,
      rates: [250, 500, 750, 1_000, 1_250, 1_500, 1_750, 2_000, 2_500, 3_000, 4_000, 6_000],
      stepMs: 4_000,
      goalMs: 50,
      stopP99Ms: 1_000,
    },
    multinode: { nodes: 6, connections: 100_000, holdMs: 30_000, bursts: 3 },
    contentLength: 100,
    connectConcurrency: 200,
    entry: 'src',
    serverNodeArgs: [],
    storage: FULL_STORAGE,
  },
  quick: {
    ns: [2_000],
    reps: 1,
    systems: ALL_SYSTEMS,
    // The storage scenarios (reduced sizes) only when asked for by name: with them the run takes ~3 minutes.
    scenarios: SCENARIOS.filter(isCellScenario),
    heartbeatMs: 2_000,
    idleWindowMs: 3_000,
    bursts: 3,
    fanout: { deliveriesPerSec: 200_000, durationMs: 1_000 },
    sends: { rate: 500, durationMs: 2_000 },
    sustained: { n: 2_000, rates: [500, 1_000, 2_000], stepMs: 1_500, goalMs: 50, stopP99Ms: 1_000 },
    multinode: { nodes: 3, connections: 51_000, holdMs: 30_000, bursts: 3 },
    contentLength: 100,
    connectConcurrency: 200,
    entry: 'src',
    serverNodeArgs: [],
    storage: QUICK_STORAGE,
  },
  smoke: {
    ns: [50],
    reps: 1,
    systems: ALL_SYSTEMS,
    // The storage scenarios only when asked for by name (test/bench-smoke.test.ts runs them apart).
    scenarios: SCENARIOS.filter(isCellScenario),
    heartbeatMs: 1_000,
    idleWindowMs: 500,
    bursts: 1,
    fanout: { deliveriesPerSec: 2_500, durationMs: 400 },
    sends: { rate: 100, durationMs: 500 },
    sustained: { n: 0, rates: [100, 200], stepMs: 300, goalMs: 50, stopP99Ms: 5_000 },
    multinode: { nodes: 2, connections: 100, holdMs: 1_000, bursts: 1 },
    contentLength: 100,
    connectConcurrency: 50,
    entry: 'src',
    serverNodeArgs: [],
    storage: SMOKE_STORAGE,
  },
};
