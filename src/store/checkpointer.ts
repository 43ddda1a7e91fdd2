/**
 * SQLite WAL checkpoints off the event loop. By default SQLite checkpoints inside the commit that
 * crosses 1000 WAL pages: that commit copies the pages into the database file and fsyncs it, stalling
 * the event loop for milliseconds several times a second under a steady send rate (the p99 of a send).
 * Instead the main connection never checkpoints; a worker thread with its own connection runs a PASSIVE
 * checkpoint (it waits for no reader or writer) every `intervalMs`. Durability is unchanged: a commit is
 * durable once in the WAL, whoever copies it later.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type SQLite from 'better-sqlite3';

// Evaluated as CommonJS in the worker; better-sqlite3 is loaded by absolute path, so it works the same
// from src/ (tsx) and from dist/.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.module);
const db = new Database(workerData.path, { fileMustExist: true });
let failed = false;
const checkpoint = () => {
  try {
    db.pragma('wal_checkpoint(PASSIVE)');
    failed = false;
  } catch (err) {
    if (!failed) parentPort.postMessage({ error: String(err && err.message) });
    failed = true;
  }
};
const timer = setInterval(checkpoint, workerData.intervalMs);
parentPort.on('message', (m) => {
  if (m !== 'stop') return;
  clearInterval(timer);
  checkpoint();
  db.close();
  parentPort.close();
});
`;

export interface Checkpointer {
  /** Runs a last checkpoint and closes the worker's connection. */
  stop(): Promise<void>;
}

/**
 * Turns off the connection's automatic checkpoints and starts the worker. If the worker fails, the
 * connection goes back to checkpointing by itself.
 */
export function startCheckpointer(
  sqlite: SQLite.Database,
  path: string,
  intervalMs: number,
  onError: (message: string) => void = () => {},
): Checkpointer {
  const module = createRequire(import.meta.url).resolve('better-sqlite3');
  const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { module, path, intervalMs } });
  worker.unref();
  let stopping = false;
  let exited = false;
  let failure: string | undefined;
  worker.on('message', (m: { error?: string }) => {
    if (m.error !== undefined) onError(`WAL checkpoint failed: ${m.error}`);
  });
  // An uncaught error in the worker is followed by its exit: fall back once, on exit.
  // (better-sqlite3's errors reach this thread as plain objects: a code, no message.)
  worker.on('error', (err: { message?: string; code?: string }) => {
    failure = err.message ?? err.code ?? 'uncaught error';
  });
  worker.on('exit', (code) => {
    exited = true;
    if (stopping || !sqlite.open) return;
    sqlite.pragma('wal_autocheckpoint = 1000');
    onError(
      `WAL checkpointer stopped (${failure ?? `exit code ${code}`}); SQLite checkpoints by itself again`,
    );
  });
  sqlite.pragma('wal_autocheckpoint = 0');
  return {
    stop() {
      stopping = true;
      if (exited) return Promise.resolve();
      // Unref'd so that it never holds the process open, but its exit is awaited here.
      worker.ref();
      return new Promise((resolve) => {
        worker.once('exit', () => resolve());
        worker.postMessage('stop');
      });
    },
  };
}
