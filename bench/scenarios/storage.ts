/**
 * Issue #13's scenarios ("storage that scales"): skypush against itself — full against empty inboxes,
 * large against small content — so each reports its own reference measured in the same run. Each
 * scenario starts servers of its own (SQLite in a temp folder, or a fresh PostgreSQL database), with
 * the settings a platform sending at this scale would use: no admin send quota, targets × bytes and
 * target counts raised to the scenario's sizes. SKYPUSH_REPLAY_MEMORY_BYTES, when set in the bench's
 * environment, is passed on to the servers (every other SKYPUSH_* variable is not).
 */
import { sleep } from '../lib/clock.ts';
import type { Child } from '../lib/rpc.ts';
import { pgReachable, redisPing, tempDatabase } from '../lib/services.ts';
import { createSkypush, type SkypushSystem } from '../systems/skypush.ts';
import { progress } from './context.ts';
import type { DialectName, Plan, Sample, StorageScenario } from './plan.ts';

/** Passed through from the bench's own environment to the servers, when set. */
const PASS_THROUGH = ['SKYPUSH_REPLAY_MEMORY_BYTES'];

export function storageEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {
    SKYPUSH_SEND_RATE_LIMIT_ADMIN: '0',
    SKYPUSH_MAX_SEND_BYTES: String(2 ** 33),
    ...extra,
  };
  for (const name of PASS_THROUGH) {
    const v = process.env[name];
    if (v !== undefined && v !== '') env[name] = v;
  }
  return env;
}

/** The replay memory cap the servers run with, as the report should name it. */
export function replayCapLabel(): string {
  const v = process.env.SKYPUSH_REPLAY_MEMORY_BYTES;
  return v ? `SKYPUSH_REPLAY_MEMORY_BYTES=${v}` : 'no SKYPUSH_REPLAY_MEMORY_BYTES set';
}

export interface ServerOptions {
  tag: string;
  maxConnections?: number;
  env?: Record<string, string>;
}

/** Runs `work` against a fresh single skypush on `dialect`; stops it and drops its database after. */
export async function withSkypush<T>(
  plan: Plan,
  dialect: DialectName,
  opts: ServerOptions,
  work: (sys: SkypushSystem) => Promise<T>,
): Promise<T> {
  const db = dialect === 'postgres' ? await tempDatabase(opts.tag) : undefined;
  const sys = await createSkypush({
    heartbeatMs: plan.heartbeatMs,
    entry: plan.entry,
    nodeArgs: plan.serverNodeArgs,
    maxConnections: opts.maxConnections ?? 20_000,
    env: storageEnv(opts.env),
    ...(db && { databaseUrl: db.url }),
  });
  try {
    await sys.start();
    return await work(sys);
  } finally {
    await sys.dispose();
    await db?.drop();
  }
}

/**
 * Waits until the server has been quiet (under `quietPct` of a core for two 250 ms windows in a row, so
 * that work done after the answer — fan-out, unread counts, the WAL checkpoint every 250 ms — is over).
 */
export async function settle(sys: SkypushSystem, quietPct = 15, maxMs = 20_000): Promise<void> {
  const deadline = Date.now() + maxMs;
  let prev = await sys.stats();
  let quiet = 0;
  while (quiet < 2 && Date.now() < deadline) {
    await sleep(250);
    const next = await sys.stats();
    const pct = ((next.cpuUs - prev.cpuUs) / (next.atUs - prev.atUs)) * 100;
    quiet = pct < quietPct ? quiet + 1 : 0;
    prev = next;
  }
}

/** The dialects of `wanted` this machine can run, and a note for each it cannot. */
export async function usableDialects(
  wanted: readonly DialectName[],
): Promise<{ dialects: DialectName[]; skipped: string[] }> {
  if (!wanted.includes('postgres') || (await pgReachable())) return { dialects: [...wanted], skipped: [] };
  return {
    dialects: wanted.filter((d) => d !== 'postgres'),
    skipped: ['PostgreSQL part not run: needs PostgreSQL at 127.0.0.1:5432'],
  };
}

/** Why a storage scenario cannot run here at all, or undefined. */
export async function storageBlocker(name: StorageScenario): Promise<string | undefined> {
  if (name !== 'pg-contention') return undefined;
  if (!(await pgReachable())) return 'needs PostgreSQL at 127.0.0.1:5432';
  if (!(await redisPing())) return 'needs Redis at 127.0.0.1:6379';
  return undefined;
}

/** What a storage scenario reports besides its samples: parts it could not run, and how it ran. */
export interface StorageOutcome {
  samples: Sample[];
  skipped?: string[];
  notes?: string[];
}

export type StorageRunner = (plan: Plan, driver: Child) => Promise<StorageOutcome>;

type Said = Array<{ scenario: StorageScenario; reason: string }>;

/** Runs the storage scenarios the plan selects, in order; failures and skips are reported, not thrown. */
export async function runStorageScenarios(
  plan: Plan,
  driver: Child,
  runners: Record<StorageScenario, StorageRunner>,
): Promise<{ samples: Sample[]; skipped: Said; notes: Said }> {
  const samples: Sample[] = [];
  const skipped: Said = [];
  const notes: Said = [];
  for (const name of Object.keys(runners) as StorageScenario[]) {
    if (!plan.scenarios.includes(name)) continue;
    const blocker = await storageBlocker(name);
    if (blocker) {
      skipped.push({ scenario: name, reason: `not run: ${blocker}` });
      continue;
    }
    process.stderr.write(`[${name}]\n`);
    const started = Date.now();
    try {
      const r = await runners[name](plan, driver);
      samples.push(...r.samples);
      for (const reason of r.skipped ?? []) skipped.push({ scenario: name, reason });
      for (const reason of r.notes ?? []) notes.push({ scenario: name, reason });
    } catch (e) {
      skipped.push({ scenario: name, reason: `failed: ${(e as Error).message}` });
      process.stderr.write(`  FAILED: ${(e as Error).stack ?? String(e)}\n`);
    }
    progress(`${name}: ${((Date.now() - started) / 1000).toFixed(0)} s`);
  }
  return { samples, skipped, notes };
}
