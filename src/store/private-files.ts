/**
 * Files only the server's own user may read: the data folder (0700), the SQLite database and its
 * -wal/-shm files, and the generated JWT secret (0600). Modes are set explicitly rather than left to
 * the process umask, which is 022 on most systems and would leave the database world-readable.
 */
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, statSync } from 'node:fs';

export const PRIVATE_DIR_MODE = 0o700;
export const PRIVATE_FILE_MODE = 0o600;

/**
 * Creates `dir` (and missing parents) as 0700. A folder that already exists is left as the operator
 * made it: it may be a mounted volume or a shared parent.
 */
export function ensurePrivateDir(dir: string): void {
  if (existsSync(dir)) return;
  mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  // mkdir's mode is masked by the umask, which can only remove bits; this makes it exact.
  chmodSync(dir, PRIVATE_DIR_MODE);
}

/**
 * Makes sure the SQLite file at `path` exists with mode 0600 before SQLite opens it: SQLite gives the
 * -wal and -shm files it creates later the database file's mode. An existing database (and its
 * -wal/-shm) readable by others is narrowed to 0600; if that is not allowed, `onWarning` hears why.
 */
export function preparePrivateDatabase(path: string, onWarning?: (message: string) => void): void {
  if (!existsSync(path)) closeSync(openSync(path, 'a', PRIVATE_FILE_MODE));
  for (const file of [path, `${path}-wal`, `${path}-shm`]) {
    if (!existsSync(file) || (statSync(file).mode & 0o077) === 0) continue;
    try {
      chmodSync(file, PRIVATE_FILE_MODE);
    } catch (err) {
      onWarning?.(`could not make ${file} private (mode 600): ${(err as Error).message}`);
    }
  }
}
