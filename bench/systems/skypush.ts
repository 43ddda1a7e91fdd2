/**
 * skypush as shipped, as a system under test: the real server process (`src/main.ts serve`, or the
 * built `dist/src/main.js`), its own database, real auth (an admin login; user tokens minted with the
 * shared secret, as a host platform would), the envelope and cursors.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ServerStats } from '../lib/probe.ts';
import type { Child } from '../lib/rpc.ts';
import { freePort, startServer, type System } from './system.ts';

export interface SkypushOptions {
  heartbeatMs: number;
  /** 'src' runs src/main.ts through tsx; 'dist' runs the compiled dist/src/main.js. */
  entry: 'src' | 'dist';
  /** Defaults to a fresh SQLite file in a temp folder. */
  databaseUrl?: string;
  redisUrl?: string;
  redisPrefix?: string;
  /** Shared by every node of a cluster. */
  jwtSecret?: string;
  adminPassword?: string;
  nodeId?: string;
  maxConnections?: number;
  nodeArgs?: string[];
  /** More SKYPUSH_* settings (they win over the ones above). */
  env?: Record<string, string>;
}

export interface SkypushSystem extends System {
  readonly port: number;
  readonly jwtSecret: string;
  /** SKYPUSH_DATABASE_URL: `sqlite:<file>` or `postgres://…`. */
  readonly databaseUrl: string;
  adminToken(): Promise<string>;
  /** The longest event-loop stall (ms) since the last reset (`reset` starts a new window). */
  loopDelayMax(reset?: boolean): Promise<number>;
}

export async function createSkypush(opts: SkypushOptions): Promise<SkypushSystem> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'skypush-bench-'));
  const jwtSecret = opts.jwtSecret ?? randomBytes(32).toString('hex');
  const adminPassword = opts.adminPassword ?? randomBytes(12).toString('hex');
  const env: Record<string, string> = {
    SKYPUSH_PORT: String(port),
    SKYPUSH_HOST: '127.0.0.1',
    SKYPUSH_DATABASE_URL: opts.databaseUrl ?? `sqlite:${join(dir, 'skypush.db')}`,
    SKYPUSH_DATA_DIR: dir,
    SKYPUSH_JWT_SECRET: jwtSecret,
    SKYPUSH_ADMIN_PASSWORD: adminPassword,
    SKYPUSH_MAX_CONNECTIONS: String(opts.maxConnections ?? 20_000),
    SKYPUSH_HEARTBEAT_INTERVAL_MS: String(opts.heartbeatMs),
    SKYPUSH_HEARTBEAT_TIMEOUT_MS: String(opts.heartbeatMs * 3),
    SKYPUSH_SHUTDOWN_DRAIN_MS: '5000',
    SKYPUSH_LOG_LEVEL: 'warn',
    // The send quota is a policy, not a capacity: the rate curve goes past the admin's 1,000/s.
    SKYPUSH_SEND_RATE_LIMIT_ADMIN: '10000000',
    ...(opts.redisUrl !== undefined && { SKYPUSH_REDIS_URL: opts.redisUrl }),
    ...(opts.redisPrefix !== undefined && { SKYPUSH_REDIS_PREFIX: opts.redisPrefix }),
    ...(opts.nodeId !== undefined && { SKYPUSH_NODE_ID: opts.nodeId }),
    ...opts.env,
  };
  // SKYPUSH_BENCH_SERVER_ROOT runs the server of another checkout (an older commit, for before/after
  // figures measured by this harness); it needs its own node_modules (a symlink to these will do).
  const root = process.env.SKYPUSH_BENCH_SERVER_ROOT ?? '';
  const script = join(root, opts.entry === 'dist' ? 'dist/src/main.js' : 'src/main.ts');
  let child: Child | undefined;
  let token: string | undefined;
  const running = (): Child => {
    if (!child) throw new Error('skypush is not running');
    return child;
  };

  async function api<T>(path: string, body: unknown, bearer?: string): Promise<T> {
    const r = await fetch(`http://127.0.0.1:${port}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(bearer && { authorization: `Bearer ${bearer}` }) },
      body: JSON.stringify(body),
    });
    const json = (await r.json()) as { code: number; message: string; data: T };
    if (!r.ok) throw new Error(`${path}: HTTP ${r.status} ${json.message}`);
    return json.data;
  }

  const sys: SkypushSystem = {
    name: 'skypush',
    port,
    jwtSecret,
    databaseUrl: env.SKYPUSH_DATABASE_URL as string,
    get pid() {
      return child?.pid ?? -1;
    },
    async start() {
      child = await startServer(script, ['serve'], env, port, '/healthz', opts.nodeArgs);
    },
    async stop() {
      await child?.stop('SIGTERM', 20_000);
      child = undefined;
    },
    stats: (afterGc = false) => running().call<ServerStats>(afterGc ? 'statsAfterGc' : 'stats'),
    heapSnapshot: (path) => running().call<string>('heapSnapshot', { path }, 300_000),
    loopDelayMax: (reset = false) => running().call<number>('loopDelay', { reset }),
    profileStart: () => running().call<boolean>('profileStart'),
    profileStop: (path) => running().call<string>('profileStop', { path }, 120_000),
    /** Logs in once (scrypt at production cost); the token outlives restarts (same secret). */
    async adminToken() {
      token ??= (
        await api<{ accessToken: string }>('/api/v1/auth/login', {
          username: 'admin',
          password: adminPassword,
        })
      ).accessToken;
      return token;
    },
    async addUsers(ids) {
      const bearer = await sys.adminToken();
      for (let i = 0; i < ids.length; i += 10_000) {
        const users = ids.slice(i, i + 10_000).map((id) => ({ id, username: `bench${id}` }));
        await api('/api/v1/users/bulk', { users }, bearer);
      }
    },
    clientTarget: () => ({ proto: 'skypush', port, secret: jwtSecret }),
    driverTarget: (contentLength) => ({ kind: 'skypush', port, token, contentLength }),
    async dispose() {
      await child?.stop('SIGTERM', 20_000);
      child = undefined;
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return sys;
}
