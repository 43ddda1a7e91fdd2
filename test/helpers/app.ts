/**
 * Test harness: a real app on a loopback port with a fresh database per test app (a temp SQLite file,
 * or a PostgreSQL database created for it and dropped afterwards), logs captured in memory.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pg from 'pg';
import { createApp, type App, type AppOptions } from '../../src/app.ts';
import { loadConfig, type Config } from '../../src/config.ts';

export type DialectName = 'sqlite' | 'postgres';

/** Dialects the store/service/resume suites loop over. */
export const DIALECTS: DialectName[] = (process.env['SKYPUSH_TEST_DIALECTS'] ?? 'sqlite,postgres').split(
  ',',
) as DialectName[];

export const JWT_SECRET = 'test-secret-test-secret-test-secret-0123456789';
export const ADMIN_PASSWORD = 'admin-password-1';
export const PG_ADMIN_URL = process.env['SKYPUSH_TEST_PG_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';
export const REDIS_URL = process.env['SKYPUSH_TEST_REDIS_URL'] ?? 'redis://127.0.0.1:6379';

/** Creates an empty PostgreSQL database for one test app; returns its URL and a function dropping it. */
export async function createPgDatabase(): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `skypush_t_${process.pid}_${Math.random().toString(36).slice(2, 10)}`;
  const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(PG_ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: PG_ADMIN_URL });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

/** A database for one app: its env vars and a cleanup. */
export async function createDatabase(
  dialect: DialectName,
): Promise<{ env: Record<string, string>; cleanup: () => Promise<void> }> {
  if (dialect === 'postgres') {
    const d = await createPgDatabase();
    return { env: { SKYPUSH_DATABASE_URL: d.url }, cleanup: d.drop };
  }
  const dir = mkdtempSync(join(tmpdir(), 'skypush-test-'));
  return {
    env: { SKYPUSH_DATABASE_URL: `sqlite:${join(dir, 'skypush.db')}`, SKYPUSH_DATA_DIR: dir },
    cleanup: async () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** Config for tests: loopback, port 0, fixed secret, cheap scrypt (production cost is 2^17). */
export function testConfig(
  env: Record<string, string> = {},
  patch: (c: Config) => Config = (c) => c,
): Config {
  const base = loadConfig({
    SKYPUSH_PORT: '0',
    SKYPUSH_HOST: '127.0.0.1',
    SKYPUSH_JWT_SECRET: JWT_SECRET,
    SKYPUSH_ADMIN_PASSWORD: ADMIN_PASSWORD,
    SKYPUSH_LOG_LEVEL: 'info',
    ...env,
  });
  return patch({ ...base, auth: { ...base.auth, scryptN: 2 ** 10 } });
}

export interface TestApp {
  app: App;
  config: Config;
  /** http://127.0.0.1:port */
  url: string;
  /** ws://127.0.0.1:port/api/v1/ws/messages */
  wsUrl: string;
  adminToken: string;
  /** Every log line written so far, raw. */
  logs: string[];
  /** JSON request helper: returns status, parsed body and headers. */
  request<T = unknown>(
    method: string,
    path: string,
    opts?: { token?: string; body?: unknown; headers?: Record<string, string> },
  ): Promise<Res<T>>;
  /** Creates a user (admin API) and returns its id and a token for it. */
  createUser(
    username: string,
    opts?: { id?: number; role?: 'admin' | 'user'; password?: string },
  ): Promise<{ id: number; token: string }>;
  close(): Promise<void>;
}

export interface Res<T> {
  status: number;
  body: { code: number; message: string; data: T };
  headers: Headers;
}

export interface StartOptions extends AppOptions {
  dialect?: DialectName;
  env?: Record<string, string>;
  patch?: (c: Config) => Config;
}

export async function startApp(opts: StartOptions = {}): Promise<TestApp> {
  const db = await createDatabase(opts.dialect ?? 'sqlite');
  const config = testConfig({ ...db.env, ...opts.env }, opts.patch);
  const logs: string[] = [];
  const logStream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logs.push(chunk.toString());
      cb();
    },
  });
  const app = await createApp(config, { logStream, ...opts });
  await app.bootstrap();
  const address = await app.listen();
  const url = address.replace('0.0.0.0', '127.0.0.1');
  const wsUrl = `${url.replace(/^http/, 'ws')}/api/v1/ws/messages`;

  async function request<T>(
    method: string,
    path: string,
    o: { token?: string; body?: unknown; headers?: Record<string, string> } = {},
  ): Promise<Res<T>> {
    const headers: Record<string, string> = { ...o.headers };
    if (o.token) headers['authorization'] = `Bearer ${o.token}`;
    if (o.body !== undefined && !headers['content-type']) headers['content-type'] = 'application/json';
    const res = await fetch(url + path, {
      method,
      headers,
      ...(o.body !== undefined && { body: typeof o.body === 'string' ? o.body : JSON.stringify(o.body) }),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null, headers: res.headers };
  }

  const login = await request<{ accessToken: string }>('POST', '/api/v1/auth/login', {
    body: { username: config.auth.adminUsername, password: ADMIN_PASSWORD },
  });
  if (login.status !== 200) throw new Error(`admin login failed: ${JSON.stringify(login.body)}`);
  const adminToken = login.body.data.accessToken;

  return {
    app,
    config,
    url,
    wsUrl,
    adminToken,
    logs,
    request,
    async createUser(username, o = {}) {
      const r = await request<{ id: number }>('POST', '/api/v1/users', {
        token: adminToken,
        body: {
          username,
          ...(o.id && { id: o.id }),
          ...(o.role && { role: o.role }),
          ...(o.password && { password: o.password }),
        },
      });
      if (r.status !== 201) throw new Error(`create user failed: ${JSON.stringify(r.body)}`);
      const t = await app.tokens.issue(r.body.data.id, o.role ?? 'user');
      return { id: r.body.data.id, token: t.token };
    },
    async close() {
      await app.close();
      await db.cleanup();
    },
  };
}
