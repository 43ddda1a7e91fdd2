/** The app's background work on timers: housekeeping, expiry announcements. */
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import { pruneLoginFailures } from './auth/login-guard.pg.ts';
import { pruneTickets } from './auth/ticket.repository.ts';
import type { Config } from './config.ts';
import { foldPending } from './messages/pending-counters.ts';
import { type EventLogStore } from './messages/event-log-reader.ts';
import { startExpiryAnnouncer } from './messages/expiry.ts';
import { type Messages } from './messages/message.service.ts';
import { prunePresence } from './realtime/pg-presence.ts';
import { repeat } from './repeat.ts';
import { type Store } from './store/database.ts';
import type { DB } from './store/schema.ts';
import { startHousekeeping } from './store/housekeeping.ts';

/**
 * The app's timers: housekeeping (bounded batches of rows past their lifetime) and the expiry
 * announcer, which tells holders of expired messages about a second after expiry. The returned stop
 * waits for runs in progress, so nothing queries a closed store.
 */
export function startTimers(
  config: Config,
  deps: {
    db: Kysely<DB>;
    dialect: Store['dialect'];
    now: () => number;
    logger: Logger;
    eventLog: EventLogStore;
    messages: Messages;
  },
): () => Promise<void> {
  const { db, now, logger, eventLog, messages } = deps;
  // The PostgreSQL-only cluster's rows (also left over from a time without Redis: pruned either way).
  const clusterTasks =
    deps.dialect === 'postgres'
      ? [
          { name: 'presence leases', run: () => prunePresence(db) },
          { name: 'login failures', run: () => pruneLoginFailures(db) },
        ]
      : [];
  const stopHousekeeping = startHousekeeping({
    tasks: [
      { name: 'events', run: () => eventLog.prune(config.events.retentionSec) },
      { name: 'idempotency keys', run: () => messages.idempotency.prune() },
      { name: 'tickets', run: () => pruneTickets(db, now()) },
      { name: 'expired messages', run: () => messages.expiry.purgeAnnounced() },
      ...clusterTasks,
    ],
    intervalMs: config.events.cleanupIntervalMs,
    logger,
  });
  const stopExpiry = startExpiryAnnouncer({
    announcer: messages.expiry,
    intervalMs: config.messages.expirySweepMs,
    logger,
  });
  // Pending sends to several users (PostgreSQL) are folded into their recipients' counters moments later.
  const stopFold =
    deps.dialect === 'postgres'
      ? repeat({
          run: () => foldPending(db),
          intervalMs: config.messages.counterFoldMs,
          failure: 'folding unread counters failed',
          logger,
        })
      : async () => {};
  return async () => {
    await stopFold();
    await stopExpiry();
    await stopHousekeeping();
  };
}
