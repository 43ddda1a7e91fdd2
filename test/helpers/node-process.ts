/**
 * Runs skypush as a real child process (`src/main.ts serve` through tsx), for restart, kill -9 and
 * multi-node tests. Resolves once the node logs that it listens, with its address.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { JWT_SECRET, ADMIN_PASSWORD } from './app.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface NodeProcess {
  proc: ChildProcess;
  url: string;
  wsUrl: string;
  /** Everything the node printed (stdout and stderr). */
  output: string[];
  /** SIGKILL, then wait for exit. */
  kill(): Promise<void>;
  /** SIGTERM, then wait for exit; resolves with the exit code. */
  stop(): Promise<number | null>;
}

/** A free TCP port on 127.0.0.1 (closed again before returning). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/** Starts a node with the given SKYPUSH_* environment (port 0 unless SKYPUSH_PORT is given). */
export function startNode(env: Record<string, string>, timeoutMs = 20_000): Promise<NodeProcess> {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SKYPUSH_')));
  const proc = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', 'serve'], {
    cwd: ROOT,
    env: {
      ...clean,
      SKYPUSH_HOST: '127.0.0.1',
      SKYPUSH_PORT: '0',
      SKYPUSH_JWT_SECRET: JWT_SECRET,
      SKYPUSH_ADMIN_PASSWORD: ADMIN_PASSWORD,
      SKYPUSH_LOG_LEVEL: 'info',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`node did not start in ${timeoutMs} ms:\n${output.join('')}`));
    }, timeoutMs);
    let buffered = '';
    const onData = (chunk: Buffer) => {
      const text = chunk.toString();
      output.push(text);
      buffered += text;
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        if (!line.includes('skypush listening')) continue;
        const { address } = JSON.parse(line) as { address: string };
        clearTimeout(timer);
        resolve({
          proc,
          url: address,
          wsUrl: `${address.replace(/^http/, 'ws')}/api/v1/ws/messages`,
          output,
          async kill() {
            proc.kill('SIGKILL');
            await exited;
          },
          async stop() {
            proc.kill('SIGTERM');
            return exited;
          },
        });
      }
    };
    proc.stdout?.on('data', onData);
    proc.stderr?.on('data', (c: Buffer) => output.push(c.toString()));
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`node exited with ${code} before listening:\n${output.join('')}`));
    });
  });
}

/** JSON request against a node. */
export async function api<T = unknown>(
  baseUrl: string,
  method: string,
  path: string,
  o: { token?: string; body?: unknown } = {},
): Promise<{ status: number; body: { code: number; message: string; data: T } }> {
  const res = await fetch(baseUrl + path, {
    method,
    headers: {
      ...(o.token && { authorization: `Bearer ${o.token}` }),
      ...(o.body !== undefined && { 'content-type': 'application/json' }),
    },
    ...(o.body !== undefined && { body: JSON.stringify(o.body) }),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

export async function loginAdmin(baseUrl: string): Promise<string> {
  const r = await api<{ accessToken: string }>(baseUrl, 'POST', '/api/v1/auth/login', {
    body: { username: 'admin', password: ADMIN_PASSWORD },
  });
  if (r.status !== 200) throw new Error(`login failed: ${JSON.stringify(r.body)}`);
  return r.body.data.accessToken;
}
