/**
 * CPU used by PostgreSQL on skypush's behalf: on PostgreSQL a query's work (an unread recount, an insert)
 * runs in the database's backend processes, not in the node, so the node's own CPU would hide it. Sums
 * user + system time from /proc/<pid>/stat over the backends of skypush's connections
 * (application_name 'skypush') to one database. PostgreSQL must run on this machine; a backend that
 * exits between two readings takes its CPU with it (pools keep idle connections for 10 s, so a busy
 * window loses nothing in practice).
 */
import { readFileSync } from 'node:fs';
import pg from 'pg';

/** Linux clock ticks per second (`getconf CLK_TCK`, 100 on every common kernel). */
const TICKS_PER_SEC = 100;

/** µs of CPU a process has used, or undefined when it is gone (or not on this machine). */
function processCpuUs(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces): state is field 3, utime 14, stime 15.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1e6) / TICKS_PER_SEC;
  } catch {
    return undefined;
  }
}

export type BackendCpu = Map<number, number>;

export interface PgCpuMeter {
  /** CPU used so far by each of skypush's backends on the database. */
  read(): Promise<BackendCpu>;
  close(): Promise<void>;
}

export async function pgCpuMeter(url: string): Promise<PgCpuMeter> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  return {
    async read() {
      const r = await c.query<{ pid: number }>(
        `select pid from pg_stat_activity where datname = current_database() and application_name = 'skypush'`,
      );
      const out: BackendCpu = new Map();
      for (const { pid } of r.rows) {
        const us = processCpuUs(pid);
        if (us !== undefined) out.set(pid, us);
      }
      return out;
    },
    close: () => c.end(),
  };
}

/** CPU (µs) the backends used between two readings; a backend that appeared counts from zero. */
export function backendCpuDelta(before: BackendCpu, after: BackendCpu): number {
  let us = 0;
  for (const [pid, t] of after) us += t - (before.get(pid) ?? 0);
  return us;
}
