/** The peers as systems: the bare ws floor (optionally corked per turn) and Socket.IO. */
import type { ServerStats } from '../lib/probe.ts';
import type { Child } from '../lib/rpc.ts';
import { freePort, startServer, type System, type SystemName } from './system.ts';

const SCRIPTS = {
  ws: 'bench/peers/ws-peer.ts',
  'ws-cork': 'bench/peers/ws-peer.ts',
  socketio: 'bench/peers/socketio-peer.ts',
} as const;

export async function createPeer(
  name: Exclude<SystemName, 'skypush'>,
  opts: { heartbeatMs: number; nodeArgs?: string[] },
): Promise<System> {
  const port = await freePort();
  let child: Child | undefined;
  const env = {
    BENCH_PORT: String(port),
    BENCH_HEARTBEAT_MS: String(opts.heartbeatMs),
    BENCH_CORK: name === 'ws-cork' ? '1' : '0',
  };
  const running = (): Child => {
    if (!child) throw new Error(`${name} is not running`);
    return child;
  };
  return {
    name,
    get pid() {
      return child?.pid ?? -1;
    },
    async start() {
      child = await startServer(SCRIPTS[name], [], env, port, '/health', opts.nodeArgs);
    },
    async stop() {
      await child?.stop('SIGTERM');
      child = undefined;
    },
    stats: (afterGc = false) => running().call<ServerStats>(afterGc ? 'statsAfterGc' : 'stats'),
    heapSnapshot: (path) => running().call<string>('heapSnapshot', { path }, 300_000),
    profileStart: () => running().call<boolean>('profileStart'),
    profileStop: (path) => running().call<string>('profileStop', { path }, 120_000),
    async addUsers() {},
    clientTarget: () => ({ proto: name === 'socketio' ? 'sio' : 'ws', port }),
    driverTarget: (contentLength) => ({ kind: 'peer', port, contentLength }),
    async dispose() {
      await child?.stop('SIGTERM', 20_000);
      child = undefined;
    },
  };
}
