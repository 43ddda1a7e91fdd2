/**
 * Expiry: announces messages that have expired and later deletes them. Each holder of an expired direct
 * message, or everyone for a message to all, gets a durable MESSAGE_DELETED `{messageId, reason:
 * "expired"}` (their hub then pushes the new unread count); see docs/decisions/0005-expiry-announcements.md.
 * The announcer runs on every node; its position in skypush_meta, locked on PostgreSQL, makes each expiry
 * announced once.
 */
import type { Kysely } from 'kysely';
import { repeat } from '../repeat.ts';
import type { Dialect } from '../store/database.ts';
import { EXPIRY_CURSOR_KEY } from '../store/migrate.ts';
import type { DB } from '../store/schema.ts';
import { countExpired } from './counters.repository.ts';
import { getMeta, getMetaLocked, setMeta } from './event-log.repository.ts';
import type { CommitWithEvents, NewEvent } from './event-log-writer.ts';
import { holderCount } from './inbox.repository.ts';
import { deleteAnnounced, expiredAfter } from './message.repository.ts';

/** How long after its expiry a message is announced at the earliest (see announce). */
export const EXPIRY_GRACE_MS = 1000;
/** Events one announcing transaction writes at most (a message's holders are never split). */
export const EXPIRY_EVENTS_MAX = 10_000;

export interface ExpiryAnnouncer {
  /**
   * Announces up to `limit` expired messages, whole messages only and about `eventsMax` events per call
   * (the rest next call); returns how many messages were announced. Only messages expired for
   * EXPIRY_GRACE_MS are taken, so a send that commits a moment after its (near) expiry is not passed over.
   */
  announce(limit?: number, eventsMax?: number): Promise<number>;
  /**
   * Housekeeping: deletes messages whose expiry has been announced (their inbox rows go with them), at
   * most `batches` × `batchSize`; returns how many. Before the announcement an open page would still
   * show them.
   */
  purgeAnnounced(batches?: number, batchSize?: number): Promise<number>;
}

/** `<expires_at>:<id>` in skypush_meta (seeded by the migrations with the time they first ran). */
export function parseExpiryCursor(value: string | undefined): [number, number] {
  const [at, id] = (value ?? '0:0').split(':').map(Number);
  return [at ?? 0, id ?? 0];
}

export function createExpiryAnnouncer(deps: {
  db: Kysely<DB>;
  dialect: Dialect;
  commit: CommitWithEvents;
  now: () => number;
}): ExpiryAnnouncer {
  const { db, dialect, commit, now } = deps;
  return {
    async announce(limit = 200, eventsMax = EXPIRY_EVENTS_MAX) {
      const due = now() - EXPIRY_GRACE_MS;
      // A cheap look first: on most ticks nothing has expired, and no transaction is opened.
      const [at, id] = parseExpiryCursor(await getMeta(db, EXPIRY_CURSOR_KEY));
      if ((await expiredAfter(db, at, id, due, 1)).length === 0) return 0;
      return commit(async (trx) => {
        const [lockedAt, lockedId] = parseExpiryCursor(await getMetaLocked(trx, dialect, EXPIRY_CURSOR_KEY));
        const expired = await expiredAfter(trx, lockedAt, lockedId, due, limit);
        const events: NewEvent[] = [];
        let done = 0;
        /** Event rows the events so far will write. */
        let weight = 0;
        for (const m of expired) {
          if (done > 0 && weight >= eventsMax) break;
          const data = { messageId: Number(m.id), reason: 'expired' };
          if (m.target_type === 'all') {
            events.push({ userId: null, type: 'MESSAGE_DELETED', data });
            weight += 1;
          } else {
            // One row per holder, written by the database (INSERT … SELECT) in the ordered part.
            events.push({ holdersOf: Number(m.id), type: 'MESSAGE_DELETED', data });
            weight += await holderCount(trx, Number(m.id));
          }
          done++;
        }
        await countExpired(trx, dialect, expired.slice(0, done));
        const last = expired[done - 1];
        if (last) await setMeta(trx, EXPIRY_CURSOR_KEY, `${Number(last.expires_at)}:${Number(last.id)}`);
        return { result: done, events };
      });
    },

    async purgeAnnounced(batches = 10, batchSize = 500) {
      const [at, id] = parseExpiryCursor(await getMeta(db, EXPIRY_CURSOR_KEY));
      let total = 0;
      for (let i = 0; i < batches; i++) {
        const n = await deleteAnnounced(db, at, id, batchSize);
        total += n;
        if (n === 0) break;
      }
      return total;
    },
  };
}

/**
 * Runs `announce` every `intervalMs` (one run at a time; a failure is logged and the next tick tries
 * again). The returned stop clears the timer and waits for a run in progress.
 */
export function startExpiryAnnouncer(deps: {
  announcer: Pick<ExpiryAnnouncer, 'announce'>;
  intervalMs: number;
  /** The app's pino logger, or anything with its `warn(obj, msg)`. */
  logger: { warn(obj: object, msg: string): void };
}): () => Promise<void> {
  return repeat({
    run: () => deps.announcer.announce(),
    intervalMs: deps.intervalMs,
    failure: 'announcing expired messages failed',
    logger: deps.logger,
  });
}
