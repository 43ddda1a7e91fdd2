/**
 * The history mark (SQLite): a small file in the data folder recording the highest event seq this
 * server has seen in its database, and under which epoch. A SQLite file replaced by an older copy keeps
 * its epoch but its log head falls below the mark: start-up then knows the history went back
 * (messages/history-guard.ts). The file sits beside the database rather than in it because a restore
 * replaces the database; it is written atomically (a temporary file, then a rename) with mode 0600.
 */
import { existsSync, readFileSync } from 'node:fs';
import { rename, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ensurePrivateDir, PRIVATE_FILE_MODE } from './private-files.ts';

export const HISTORY_MARK_FILE = 'history-mark.json';

export interface HistoryMark {
  /** The absolute path of the database the mark is about: a mark of another database is ignored. */
  database: string;
  epoch: string;
  /** The highest event seq seen under `epoch`. */
  seq: number;
}

/** Where the mark of the SQLite database at `sqlitePath` lives, and the database path it names. */
export function markLocation(dataDir: string, sqlitePath: string): { file: string; database: string } {
  return { file: join(dataDir, HISTORY_MARK_FILE), database: resolve(sqlitePath) };
}

/**
 * The mark in `file`, if there is one. A file that does not parse as a mark is reported through
 * `onWarning` and treated as absent (it is rewritten after the check).
 */
export function readHistoryMark(file: string, onWarning: (message: string) => void): HistoryMark | undefined {
  if (!existsSync(file)) return undefined;
  try {
    const m = JSON.parse(readFileSync(file, 'utf8')) as Partial<HistoryMark>;
    if (typeof m.database === 'string' && typeof m.epoch === 'string' && Number.isSafeInteger(m.seq))
      return { database: m.database, epoch: m.epoch, seq: m.seq as number };
  } catch {
    // reported below
  }
  onWarning(`ignoring unreadable history mark ${file}`);
  return undefined;
}

/** Writes the mark atomically: a reader sees the old mark or the new one, never half of one. */
export async function writeHistoryMark(dataDir: string, file: string, mark: HistoryMark): Promise<void> {
  ensurePrivateDir(dataDir);
  const tmp = `${file}.tmp`;
  // A leftover from a crash keeps its mode on rewrite: remove it so the new file is created 0600.
  await rm(tmp, { force: true });
  await writeFile(tmp, JSON.stringify(mark), { mode: PRIVATE_FILE_MODE });
  await rename(tmp, file);
}
