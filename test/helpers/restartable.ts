/**
 * A server that can be stopped and started again on the same SQLite file and the same port, as an
 * operator's restart would: clients reconnect to the same URL and resume from their cursors.
 */
import { Writable } from 'node:stream';
import { createApp, type App } from '../../src/app.ts';
import { startApp, testConfig, type StartOptions, type TestApp } from './app.ts';

export interface Restartable {
  /** The app serving now (a new one after each start). */
  readonly current: TestApp;
  readonly url: string;
  readonly wsUrl: string;
  readonly adminToken: string;
  /** Graceful stop: connected clients get close code 1012. */
  stop(): Promise<void>;
  /** A new app on the same database file and port. */
  start(): Promise<void>;
  /** While stopped: runs `fn` against an app on the same database that does not listen (another writer). */
  offline<T>(fn: (app: App) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

const quiet = () => new Writable({ write: (_c, _e, cb) => cb() });

export async function startRestartable(opts: StartOptions = {}): Promise<Restartable> {
  const first = await startApp(opts);
  const sqlitePath = first.config.database.sqlitePath;
  if (first.config.database.kind !== 'sqlite' || !sqlitePath) throw new Error('restartable needs SQLite');
  const env = {
    ...opts.env,
    SKYPUSH_DATABASE_URL: `sqlite:${sqlitePath}`,
    SKYPUSH_DATA_DIR: first.config.dataDir,
    SKYPUSH_PORT: new URL(first.url).port,
  };
  const extra: TestApp[] = [];
  let current: TestApp | undefined = first;
  let running = true;

  return {
    get current() {
      if (!current) throw new Error('server is stopped');
      return current;
    },
    url: first.url,
    wsUrl: first.wsUrl,
    adminToken: first.adminToken,
    async stop() {
      if (!running) return;
      running = false;
      await current?.app.close();
      current = undefined;
    },
    async start() {
      if (running) throw new Error('already running');
      const next = await startApp({ ...opts, env });
      extra.push(next);
      current = next;
      running = true;
    },
    async offline(fn) {
      if (running) throw new Error('stop the server first');
      const app = await createApp(testConfig(env, opts.patch), { logStream: quiet() });
      try {
        return await fn(app);
      } finally {
        await app.close();
      }
    },
    async close() {
      for (const t of extra) await t.close();
      await first.close(); // removes the database folder
    },
  };
}
