/**
 * The history guard: keeps the cursor epoch honest when the database's history is replaced. A restore,
 * a point-in-time recovery or a failover copies skypush_meta, so the epoch stays while the log may hold
 * other events under the same seqs: an old cursor would then resume into the wrong history, a silent
 * gap. The guard rotates the epoch (a new random value) when it sees the history change, so every
 * cursor from before gets RESYNC "foreign" (docs/decisions/0013-history-epoch.md). It looks:
 * - at start-up, before serving, and then every `intervalMs`: the history token (store/history-token.ts)
 *   against the one stored beside the epoch (PostgreSQL);
 * - at start-up: the SQLite file against the mark this server left beside it (store/history-mark.ts);
 * - while running: the log's head against the highest seq this node has already seen (both dialects).
 * Rotation is a conditional update (only if the epoch is still the one read), so nodes that notice at
 * once rotate once: the losers re-read and adopt the winner's epoch, as every other node does on its
 * next check. A node whose epoch changed under it hands the new one to `HistoryNode.replaced`.
 */
import { randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import { messageOf } from '../logger.ts';
import { repeat } from '../repeat.ts';
import type { Dialect } from '../store/database.ts';
import { markLocation, readHistoryMark, writeHistoryMark, type HistoryMark } from '../store/history-mark.ts';
import {
  changedParts,
  formatToken,
  liveTokenReader,
  mergeToken,
  parseToken,
  type HistoryToken,
} from '../store/history-token.ts';
import type { DB } from '../store/schema.ts';
import { everHeldHead, readEpochAndToken, rotateEpoch, storeToken } from './history.repository.ts';

/** How this node follows the log: what the guard compares and whom it tells. */
export interface HistoryNode {
  /** The epoch this node's cursors carry now. */
  epoch(): Promise<string>;
  /** The highest seq this node has seen in the log under that epoch. */
  seen(): number;
  /** The history was replaced: carry `epoch`, follow the log after `head`. Returns the sockets closed. */
  replaced(epoch: string, head: number): number;
}

export interface HistoryGuard {
  /** The epoch in force after the last check. */
  readonly epoch: string;
  /** One check now (the timer runs it; tests call it); checks never overlap. Resolves the epoch in force. */
  check(): Promise<string>;
  /** Starts checking every `intervalMs` on behalf of `node`. */
  watch(node: HistoryNode): void;
  /** Stops the checks (waiting for one under way) and, on SQLite, records the mark for the next start. */
  stop(): Promise<void>;
}

export interface HistoryGuardDeps {
  db: Kysely<DB>;
  dialect: Dialect;
  /** SQLite on a file: where the mark lives. Undefined on PostgreSQL and for `:memory:`. */
  sqliteFile?: { dataDir: string; path: string };
  intervalMs: number;
  logger: Logger;
}

/** How often a rotation may lose the race to another node before the check gives up (and is retried). */
const MAX_ROTATION_ATTEMPTS = 5;

/** A new epoch: 12 hex digits, the form cursors carry (cursor.ts). */
const newEpoch = () => randomBytes(6).toString('hex');

/** Runs the start-up check (rotating the epoch if the history changed) and returns the guard. */
export async function openHistoryGuard(deps: HistoryGuardDeps): Promise<HistoryGuard> {
  const guard = new Guard(deps);
  await guard.startUp();
  return guard;
}

class Guard implements HistoryGuard {
  epoch = '';
  /** The highest seq seen under `epoch` by the guard's own reads. */
  private seen = 0;
  private node: HistoryNode | undefined;
  private stopTimer: (() => Promise<void>) | undefined;
  private last: Promise<unknown> = Promise.resolve();
  private lastMark: string | undefined;
  /** The last check failed (logged once per outage, not once per tick). */
  private failing = false;
  private readonly liveToken: () => Promise<HistoryToken>;
  private readonly mark: { file: string; database: string; dataDir: string } | undefined;

  constructor(private readonly deps: HistoryGuardDeps) {
    const { db, dialect, logger, sqliteFile } = deps;
    this.liveToken = liveTokenReader(db as Kysely<unknown>, dialect, (part, reason) =>
      logger.info({ part, reason }, 'history token: this part cannot be read here; the others are checked'),
    );
    this.mark = sqliteFile && {
      ...markLocation(sqliteFile.dataDir, sqliteFile.path),
      dataDir: sqliteFile.dataDir,
    };
  }

  async startUp(): Promise<void> {
    let epoch = await this.reconcileToken();
    const head = await everHeldHead(this.deps.db);
    const mark = this.mark && readHistoryMark(this.mark.file, (m) => this.deps.logger.warn(m));
    const why = this.markSays(mark, epoch, head);
    if (why) epoch = await this.rotate(epoch, why);
    this.epoch = epoch;
    this.seen = head;
    await this.saveMark(head);
  }

  check(): Promise<string> {
    const run = this.last.then(() => this.checkOnce());
    this.last = run.catch(() => {});
    return run;
  }

  watch(node: HistoryNode): void {
    this.node = node;
    this.stopTimer = repeat({
      run: () => this.tick(),
      intervalMs: this.deps.intervalMs,
      failure: 'history check failed',
      logger: this.deps.logger,
    });
  }

  async stop(): Promise<void> {
    await this.stopTimer?.();
    await this.last;
    if (!this.mark) return;
    try {
      const head = await everHeldHead(this.deps.db);
      await this.saveMark(Math.max(head, this.seen, this.node?.seen() ?? 0));
    } catch (err) {
      this.deps.logger.warn({ err: { message: messageOf(err) } }, 'could not record the history mark');
    }
  }

  /** The timer's run: a failure (the database unreachable) is logged once per outage and retried. */
  private async tick(): Promise<void> {
    try {
      await this.check();
      if (this.failing) this.deps.logger.info('history check works again');
      this.failing = false;
    } catch (err) {
      if (!this.failing) this.deps.logger.warn({ err: { message: messageOf(err) } }, 'history check failed');
      this.failing = true;
    }
  }

  private async checkOnce(): Promise<string> {
    const node = this.node;
    const cached = node ? await node.epoch() : this.epoch;
    // Read before the head: every seq this node saw was committed, so a head below it means the log
    // went back.
    const seen = Math.max(this.seen, node?.seen() ?? 0);
    let epoch = await this.reconcileToken();
    const head = await everHeldHead(this.deps.db);
    if (epoch === cached && head < seen)
      epoch = await this.rotate(cached, `the event log went back from seq ${seen} to ${head}`);
    if (epoch !== cached) {
      const closed = node?.replaced(epoch, head) ?? 0;
      this.deps.logger.warn(
        { epoch, previousEpoch: cached, head, closed },
        'history replaced under a running node: cursor epoch refreshed, connections closed (1012)',
      );
      this.seen = head;
    } else {
      this.seen = Math.max(seen, head);
    }
    this.epoch = epoch;
    await this.saveMark(this.seen);
    return epoch;
  }

  /**
   * Compares the live token with the stored one; rotates the epoch when a part changed, else stores the
   * merged token (first run, or a part readable now that was not). Resolves the epoch in force.
   */
  private async reconcileToken(): Promise<string> {
    const live = await this.liveToken();
    for (let attempt = 0; attempt < MAX_ROTATION_ATTEMPTS; attempt++) {
      const { epoch, token } = await readEpochAndToken(this.deps.db);
      if (epoch === undefined) throw new Error('database has no epoch: run migrations first');
      const stored = parseToken(token);
      const merged = formatToken(mergeToken(stored, live));
      const changed = changedParts(stored, live);
      if (changed.length === 0) {
        if (merged !== (token ?? '')) await storeToken(this.deps.db, merged);
        return epoch;
      }
      const next = newEpoch();
      if (await rotateEpoch(this.deps.db, epoch, next, merged)) {
        this.logRotation(
          epoch,
          next,
          `the database's ${changed.join(', ')} changed (restore, PITR or failover)`,
        );
        return next;
      }
      // Another node rotated first: re-read, and find its token stored with its epoch.
    }
    throw new Error('history check: the epoch kept changing under this node');
  }

  /** Rotates `from` (unless another node already did: then its epoch is adopted). */
  private async rotate(from: string, reason: string): Promise<string> {
    const next = newEpoch();
    if (await rotateEpoch(this.deps.db, from, next)) {
      this.logRotation(from, next, reason);
      return next;
    }
    const { epoch } = await readEpochAndToken(this.deps.db);
    if (epoch === undefined) throw new Error('database has no epoch: run migrations first');
    return epoch;
  }

  private logRotation(from: string, to: string, reason: string): void {
    this.deps.logger.warn(
      { previousEpoch: from, epoch: to, reason },
      'database history changed: cursor epoch rotated (cursors from before get RESYNC "foreign")',
    );
  }

  /** Why the SQLite mark says the file went back, or undefined when it does not (or is not ours). */
  private markSays(mark: HistoryMark | undefined, epoch: string, head: number): string | undefined {
    if (!mark || !this.mark || mark.database !== this.mark.database) return undefined;
    if (mark.epoch !== epoch)
      return `the database file carries epoch ${epoch}, this server last served ${mark.epoch}`;
    if (head < mark.seq)
      return `the database file's event log ends at seq ${head}, this server saw ${mark.seq}`;
    return undefined;
  }

  /** Records (epoch, seq) in the SQLite mark when it changed. */
  private async saveMark(seq: number): Promise<void> {
    if (!this.mark) return;
    const mark: HistoryMark = { database: this.mark.database, epoch: this.epoch, seq };
    const text = JSON.stringify(mark);
    if (text === this.lastMark) return;
    await writeHistoryMark(this.mark.dataDir, this.mark.file, mark);
    this.lastMark = text;
  }
}
