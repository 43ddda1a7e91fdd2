/**
 * A system under test: a server process started with the probe preloaded, plus what the load clients and
 * the driver need to talk to it. skypush and the peers implement this the same way, so every scenario is
 * written once.
 */
import { createServer } from 'node:net';
import { waitUntil } from '../lib/clock.ts';
import type { ServerStats } from '../lib/probe.ts';
import { spawnChild, type Child } from '../lib/rpc.ts';
import type { ClientTarget, DriverTarget } from '../load/types.ts';

export type SystemName = 'skypush' | 'ws' | 'ws-cork' | 'socketio';

export interface System {
  readonly name: SystemName;
  readonly pid: number;
  /** Starts the server process and waits until it answers HTTP. */
  start(): Promise<void>;
  /** SIGTERM (skypush drains and closes sockets with 1012), then waits for the exit. */
  stop(): Promise<void>;
  /** Server-side CPU and memory, read inside the server process. */
  stats(afterGc?: boolean): Promise<ServerStats>;
  /** Writes a V8 heap snapshot of the server process to `path`. */
  heapSnapshot(path: string): Promise<string>;
  /** Profiles the server's CPU between the two calls; the second writes a .cpuprofile to `path`. */
  profileStart(): Promise<boolean>;
  profileStop(path: string): Promise<string>;
  /** Makes the users exist (skypush: admin bulk API); the peers accept anyone. */
  addUsers(ids: number[]): Promise<void>;
  clientTarget(): ClientTarget;
  driverTarget(contentLength: number): DriverTarget;
  /** Stops the server and deletes what it left behind. */
  dispose(): Promise<void>;
}

/** A free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

export const PROBE = './bench/lib/probe.ts';
export const SERVER_NODE_ARGS = ['--expose-gc'];

/** Starts a server script with the probe and waits for `healthPath` to answer 200. */
export async function startServer(
  script: string,
  args: string[],
  env: Record<string, string>,
  port: number,
  healthPath: string,
  nodeArgs: string[] = [],
): Promise<Child> {
  const child = spawnChild({
    script,
    args,
    env,
    nodeArgs: [...SERVER_NODE_ARGS, ...nodeArgs],
    preload: [PROBE],
    quiet: true,
  });
  let dead = false;
  void child.exited.then(() => (dead = true));
  const up = await waitUntil(
    async () => {
      if (dead) return true;
      try {
        const r = await fetch(`http://127.0.0.1:${port}${healthPath}`);
        return r.status === 200;
      } catch {
        return false;
      }
    },
    60_000,
    50,
  );
  if (dead || !up) {
    await child.stop('SIGKILL');
    throw new Error(`${script} did not start (port ${port})`);
  }
  return child;
}
