/**
 * Parent ↔ child control over the Node IPC channel: the parent calls named operations, the child
 * answers each once. Only control traffic goes this way (never per-message data), so its cost is nil.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

interface Reply {
  rpc: number;
  ok: boolean;
  result?: unknown;
  error?: string;
}

export interface Child {
  readonly proc: ChildProcess;
  readonly pid: number;
  call<T>(op: string, args?: unknown, timeoutMs?: number): Promise<T>;
  /** Resolves with the exit code (or the signal name) once the process is gone. */
  readonly exited: Promise<number | string | null>;
  /** Signals the process and waits for it to exit (SIGKILL after `graceMs`). */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<void>;
}

export interface SpawnOptions {
  /** Script path relative to the repository root; run through tsx. */
  script: string;
  args?: string[];
  nodeArgs?: string[];
  /** Modules loaded with --import after tsx (e.g. the probe). */
  preload?: string[];
  env?: Record<string, string>;
  /** Where the child's stdout/stderr go: inherited, or discarded (servers with chatty logs). */
  quiet?: boolean;
}

/** Starts `node [--nodeArgs] --import tsx <script>` with an IPC channel. */
export function spawnChild(opts: SpawnOptions): Child {
  const proc = spawn(
    process.execPath,
    [
      ...(opts.nodeArgs ?? []),
      '--import',
      'tsx',
      ...(opts.preload ?? []).flatMap((p) => ['--import', p]),
      opts.script,
      ...(opts.args ?? []),
    ],
    {
      cwd: ROOT,
      // Outer SKYPUSH_* settings never leak into a benchmark process.
      env: { ...withoutSkypushVars(process.env), ...opts.env },
      stdio: ['ignore', opts.quiet ? 'ignore' : 'inherit', 'inherit', 'ipc'],
    },
  );
  let next = 1;
  const waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  const exited = new Promise<number | string | null>((resolve) =>
    proc.once('exit', (code, signal) => {
      for (const w of waiting.values()) w.reject(new Error(`${opts.script} exited (${code ?? signal})`));
      waiting.clear();
      resolve(code ?? signal);
    }),
  );
  proc.on('message', (m: unknown) => {
    const r = m as Reply;
    if (typeof r !== 'object' || r === null || typeof r.rpc !== 'number') return;
    const w = waiting.get(r.rpc);
    if (!w) return;
    waiting.delete(r.rpc);
    if (r.ok) w.resolve(r.result);
    else w.reject(new Error(`${opts.script}: ${r.error ?? 'failed'}`));
  });
  return {
    proc,
    pid: proc.pid ?? -1,
    exited,
    call<T>(op: string, args?: unknown, timeoutMs = 120_000): Promise<T> {
      const rpc = next++;
      return new Promise<T>((resolve, reject) => {
        const timer = setTimeout(() => {
          waiting.delete(rpc);
          reject(new Error(`${opts.script}: ${op} timed out after ${timeoutMs} ms`));
        }, timeoutMs);
        waiting.set(rpc, {
          resolve: (v) => {
            clearTimeout(timer);
            resolve(v as T);
          },
          reject: (e) => {
            clearTimeout(timer);
            reject(e);
          },
        });
        if (!proc.connected) return reject(new Error(`${opts.script} is not running`));
        proc.send({ rpc, op, args });
      });
    },
    async stop(signal = 'SIGTERM', graceMs = 15_000) {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill(signal);
      const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

function withoutSkypushVars(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([k]) => !k.startsWith('SKYPUSH_')));
}

type Handler = (args: never) => unknown;

/** Child side: answers the parent's calls with `handlers[op](args)`. */
export function serveRpc(handlers: Record<string, Handler>): void {
  process.on('message', (m: unknown) => {
    const { rpc, op, args } = m as { rpc?: number; op?: string; args?: unknown };
    if (typeof rpc !== 'number' || typeof op !== 'string') return;
    const h = handlers[op];
    const reply = (r: Omit<Reply, 'rpc'>) => process.send?.({ rpc, ...r });
    if (!h) return reply({ ok: false, error: `unknown op ${op}` });
    Promise.resolve()
      .then(() => h(args as never))
      .then(
        (result) => reply({ ok: true, result }),
        (e: unknown) => reply({ ok: false, error: e instanceof Error ? e.message : String(e) }),
      );
  });
  // The parent going away ends the child: nothing outlives a run.
  process.on('disconnect', () => process.exit(0));
}
