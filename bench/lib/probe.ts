/**
 * Preloaded (`--import`) into every server process — skypush and the peers alike — so the server's own
 * CPU time and memory are read from inside the process, the same way for all of them, without any code
 * in the server under test. Needs `--expose-gc` for heap figures after a full collection.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { writeHeapSnapshot } from 'node:v8';
import { nowUs } from './clock.ts';
import { serveRpc } from './rpc.ts';

export interface ServerStats {
  /** User + system CPU time of the server process, µs. */
  cpuUs: number;
  /** The kernel's share of cpuUs (syscalls: socket writes, file I/O). */
  systemUs: number;
  rss: number;
  /** The process's peak RSS so far (bytes): the kernel's high-water mark, so no peak between reads is missed. */
  maxRss: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
  atUs: number;
}

function stats(): ServerStats {
  const c = process.cpuUsage();
  const m = process.memoryUsage();
  return {
    cpuUs: c.user + c.system,
    systemUs: c.system,
    rss: m.rss,
    maxRss: process.resourceUsage().maxRSS * 1024,
    heapUsed: m.heapUsed,
    external: m.external,
    arrayBuffers: m.arrayBuffers,
    atUs: nowUs(),
  };
}

const gc = (globalThis as { gc?: () => void }).gc;
let session: Session | undefined;
/** Started on the first loopDelay call only, so servers that are never asked pay nothing. */
let loop: IntervalHistogram | undefined;

serveRpc({
  stats: () => stats(),
  /** Full collections first (twice: weak callbacks free more on the second pass), then the figures. */
  statsAfterGc: async () => {
    gc?.();
    await new Promise((r) => setImmediate(r));
    gc?.();
    return stats();
  },
  /**
   * The longest event-loop stall (ms) since the previous call that reset it: how long the server could
   * not answer anyone (a long synchronous query, a huge JSON). The first call starts the monitor.
   */
  loopDelay(a: { reset?: boolean } | undefined) {
    if (!loop) {
      loop = monitorEventLoopDelay({ resolution: 10 });
      loop.enable();
      return 0;
    }
    const ms = loop.max / 1e6;
    if (a?.reset) loop.reset();
    return ms;
  },
  /** Writes a heap snapshot (for finding what each connection retains); returns its path. */
  heapSnapshot: (a: { path: string }) => writeHeapSnapshot(a.path),
  /** Starts the V8 CPU profiler (so a profile covers one measured window, not start-up). */
  async profileStart() {
    session ??= new Session();
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.setSamplingInterval', { interval: 200 });
    await session.post('Profiler.start');
    return true;
  },
  /** Stops the profiler and writes the .cpuprofile to `path`. */
  async profileStop(a: { path: string }) {
    if (!session) throw new Error('profiler not started');
    const { profile } = await session.post('Profiler.stop');
    writeFileSync(a.path, JSON.stringify(profile));
    session.disconnect();
    session = undefined;
    return a.path;
  },
});
