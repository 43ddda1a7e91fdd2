/**
 * The load-client processes of one measurement, driven together: users are split evenly (≤ 10,000 per
 * process), each process gets its own block of 127.0.0.x source addresses (rotating over the run, so
 * ports left in TIME_WAIT by an earlier round are never needed again), and their reports are merged.
 */
import { mergeHistograms, type HistogramData } from '../lib/histogram.ts';
import type { MarkerKind } from '../lib/marker.ts';
import { spawnChild, type Child } from '../lib/rpc.ts';
import type { TallyReport } from './tally.ts';
import type { ClientSnapshot, ClientTarget, ReconnectArgs } from './types.ts';

export const PER_PROCESS = 10_000;
const ADDRESSES_PER_PROCESS = 8;
let nextAddress = 0;

/** The next `n` addresses of 127.0.0.2 … 127.0.0.254, wrapping around. */
function takeAddresses(n: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(`127.0.0.${2 + (nextAddress++ % 253)}`);
  return out;
}

export interface FleetTotals {
  ready: number;
  open: number;
  unexpectedCloses: number;
  failedConnects: number;
  /** Why connections failed, summed over the processes. */
  failures: Record<string, number>;
  cpuUs: number;
  frames: number;
  bytes: number;
  lastReadyUs: number;
  /** skypush UNREAD_COUNT frames, and when the last one arrived. */
  unread: number;
  lastUnreadUs: number;
  count(kind: MarkerKind): number;
  lastUs(kind: MarkerKind): number;
  hist(kind: MarkerKind): HistogramData;
}

function mergeCounts(parts: ReadonlyArray<Record<string, number>>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const p of parts) for (const [k, n] of Object.entries(p)) out[k] = (out[k] ?? 0) + n;
  return out;
}

export function totals(snaps: readonly ClientSnapshot[]): FleetTotals {
  const sum = (f: (s: ClientSnapshot) => number) => snaps.reduce((n, s) => n + f(s), 0);
  return {
    ready: sum((s) => s.ready),
    open: sum((s) => s.open),
    unexpectedCloses: sum((s) => s.unexpectedCloses),
    failedConnects: sum((s) => s.failedConnects),
    failures: mergeCounts(snaps.map((s) => s.failures)),
    cpuUs: sum((s) => s.cpuUs),
    frames: sum((s) => s.frames),
    bytes: sum((s) => s.bytes),
    lastReadyUs: Math.max(0, ...snaps.map((s) => s.lastReadyUs)),
    unread: sum((s) => s.unread.count),
    lastUnreadUs: Math.max(0, ...snaps.map((s) => s.unread.lastUs)),
    count: (k) => sum((s) => s.kinds[k].count),
    lastUs: (k) => Math.max(0, ...snaps.map((s) => s.kinds[k].lastUs)),
    hist: (k) => mergeHistograms(snaps.map((s) => s.kinds[k].hist)),
  };
}

export class Fleet {
  private constructor(
    readonly clients: Child[],
    /** The users each client holds. */
    readonly users: number[][],
  ) {}

  /** Spawns enough client processes for `users` (at most PER_PROCESS each, evenly split). */
  static start(users: readonly number[], perProcess = PER_PROCESS): Fleet {
    const n = Math.max(1, Math.ceil(users.length / perProcess));
    const split = Array.from({ length: n }, (_, i) => users.filter((_, j) => j % n === i));
    const clients = split.map(() => spawnChild({ script: 'bench/load/client.ts' }));
    return new Fleet(clients, split);
  }

  private all<T>(op: string, args?: (i: number) => unknown, timeoutMs?: number): Promise<T[]> {
    return Promise.all(this.clients.map((c, i) => c.call<T>(op, args?.(i), timeoutMs)));
  }

  /**
   * Connects the users of the given client processes (default: all of them); resolves with those
   * processes' snapshots and when the first of them started.
   */
  async connect(
    target: ClientTarget,
    opts: { concurrency: number; timeoutMs: number },
    only: readonly number[] = this.clients.map((_, i) => i),
  ): Promise<{ startedUs: number; snaps: ClientSnapshot[] }> {
    const r = await Promise.all(
      only.map((i) =>
        (this.clients[i] as Child).call<ClientSnapshot & { startedUs: number }>(
          'connect',
          {
            target,
            users: this.users[i],
            addresses: takeAddresses(ADDRESSES_PER_PROCESS),
            concurrency: opts.concurrency,
            timeoutMs: opts.timeoutMs,
          },
          opts.timeoutMs + 120_000,
        ),
      ),
    );
    return { startedUs: Math.min(...r.map((s) => s.startedUs)), snaps: r };
  }

  reset(): Promise<ClientSnapshot[]> {
    return this.all('reset');
  }

  snapshot(): Promise<ClientSnapshot[]> {
    return this.all('snapshot');
  }

  /**
   * Waits until client i has `counts[i]` markers of `kind` (and `unread[i]` UNREAD_COUNT frames, when
   * given), or the timeout.
   */
  waitKind(
    kind: MarkerKind,
    counts: readonly number[],
    timeoutMs: number,
    unread?: readonly number[],
  ): Promise<ClientSnapshot[]> {
    return this.all(
      'waitKind',
      (i) => ({ kind, count: counts[i], timeoutMs, ...(unread && { unread: unread[i] }) }),
      timeoutMs + 10_000,
    );
  }

  /** Starts an exactly-once tally of `kind`, ids 0 … ids−1, on every connection. */
  startTally(kind: MarkerKind, ids: number): Promise<boolean[]> {
    return this.all('startTally', () => ({ kind, ids }));
  }

  /** Waits until every connection has every id of the tally (or the timeout); the merged report. */
  async waitTally(timeoutMs: number): Promise<TallyReport> {
    const rs = await this.all<TallyReport>('waitTally', () => ({ timeoutMs }), timeoutMs + 10_000);
    const sum = (k: keyof TallyReport) => rs.reduce((n, r) => n + r[k], 0);
    return {
      connections: sum('connections'),
      exactlyOnce: sum('exactlyOnce'),
      complete: sum('complete'),
      duplicates: sum('duplicates'),
      missing: sum('missing'),
      stray: sum('stray'),
      lastCompleteUs: Math.max(0, ...rs.map((r) => r.lastCompleteUs)),
    };
  }

  /** Markers of one broadcast each client should see: one per ready connection. */
  readyCounts(snaps: readonly ClientSnapshot[]): number[] {
    return snaps.map((s) => s.ready);
  }

  expectCloses(): Promise<boolean[]> {
    return this.all('expectCloses');
  }

  waitClosed(timeoutMs: number): Promise<ClientSnapshot[]> {
    return this.all('waitClosed', () => ({ timeoutMs }), timeoutMs + 10_000);
  }

  reconnect(args: ReconnectArgs): Promise<ClientSnapshot[]> {
    return this.all('reconnect', () => args, args.timeoutMs + 120_000);
  }

  async stop(): Promise<void> {
    await this.all('closeAll', () => ({ timeoutMs: 5_000 }), 20_000).catch(() => {});
    await Promise.all(this.clients.map((c) => c.stop('SIGTERM', 5_000)));
  }
}
