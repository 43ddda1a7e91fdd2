/** The machine a run was measured on, printed with every table and stored in the JSON. */
import { execSync } from 'node:child_process';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { ROOT } from './rpc.ts';

export interface Machine {
  cpu: string;
  cores: number;
  node: string;
  memoryGiB: number;
  kernel: string;
  fdLimit: string;
  commit: string;
  date: string;
  /** 1-minute load average when the run started: other work on the machine skews wall-clock figures. */
  loadAverage: number;
}

function sh(cmd: string): string {
  try {
    return execSync(cmd, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return 'unknown';
  }
}

export function machine(): Machine {
  const dirty = sh('git status --porcelain --untracked-files=no') !== '';
  return {
    cpu: cpus()[0]?.model.trim() ?? 'unknown',
    cores: cpus().length,
    node: process.version,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    kernel: release(),
    fdLimit: sh('ulimit -n'),
    commit: `${sh('git rev-parse --short HEAD')}${dirty ? '+uncommitted' : ''}`,
    date: new Date().toISOString(),
    loadAverage: Math.round((loadavg()[0] ?? 0) * 100) / 100,
  };
}

/** The machine's CPU time so far (all cores), busy and total, from os.cpus() (Linux: /proc/stat). */
export function cpuTimes(): { busyMs: number; totalMs: number } {
  let busy = 0;
  let total = 0;
  for (const c of cpus()) {
    const t = c.times;
    busy += t.user + t.nice + t.sys + t.irq;
    total += t.user + t.nice + t.sys + t.irq + t.idle;
  }
  return { busyMs: busy, totalMs: total };
}

/** Share of the machine's CPU that was busy between two cpuTimes() readings, in percent. */
export const busyPercent = (a: ReturnType<typeof cpuTimes>, b: ReturnType<typeof cpuTimes>): number =>
  ((b.busyMs - a.busyMs) / Math.max(1, b.totalMs - a.totalMs)) * 100;
