/** Runs the schema migrations (timestamped, in order) and seeds the database epoch used by cursors. */
import { randomBytes } from 'node:crypto';
import { Migrator, type Migration, type MigrationProvider } from 'kysely';
import type { Store } from './database.ts';
import * as initial from './migrations/2026-11-24-0001-initial.ts';
import * as expiry from './migrations/2026-11-24-0002-expiry.ts';
import * as ticketExpiry from './migrations/2026-11-30-0003-ticket-expiry.ts';
import * as eventsByReference from './migrations/2026-11-30-0004-events-by-reference.ts';
import * as unreadCounters from './migrations/2026-11-30-0005-unread-counters.ts';
import * as pgCluster from './migrations/2026-11-30-0006-pg-cluster.ts';
import * as appendFunction from './migrations/2026-11-30-0007-append-function.ts';
import * as unreadPending from './migrations/2026-11-30-0008-unread-pending.ts';

/** skypush_meta key: the cursor epoch (decision 0001; rotated when the log's history changes, 0013). */
export const EPOCH_KEY = 'epoch';
/** skypush_meta key: the highest seq pruned from the event log (a cursor at or below it is stale). */
export const PRUNED_THROUGH_KEY = 'pruned_through';
/** skypush_meta key: the (expires_at, id) of the last message whose expiry was announced. */
export const EXPIRY_CURSOR_KEY = 'expiry_announced_through';

function migrations(store: Store): Record<string, Migration> {
  return {
    '2026-11-24-0001-initial': {
      up: (db) => initial.up(db, store.dialect),
      down: (db) => initial.down(db),
    },
    '2026-11-24-0002-expiry': { up: (db) => expiry.up(db), down: (db) => expiry.down(db) },
    '2026-11-30-0003-ticket-expiry': { up: (db) => ticketExpiry.up(db), down: (db) => ticketExpiry.down(db) },
    '2026-11-30-0004-events-by-reference': {
      up: (db) => eventsByReference.up(db),
      down: (db) => eventsByReference.down(db),
    },
    '2026-11-30-0005-unread-counters': {
      up: (db) => unreadCounters.up(db, store.dialect),
      down: (db) => unreadCounters.down(db),
    },
    '2026-11-30-0006-pg-cluster': {
      up: (db) => pgCluster.up(db, store.dialect),
      down: (db) => pgCluster.down(db),
    },
    '2026-11-30-0007-append-function': {
      up: (db) => appendFunction.up(db, store.dialect),
      down: (db) => appendFunction.down(db, store.dialect),
    },
    '2026-11-30-0008-unread-pending': {
      up: (db) => unreadPending.up(db),
      down: (db) => unreadPending.down(db),
    },
  };
}

/**
 * Brings the schema up to `name` and no further (tests build a database as an earlier release left it,
 * then migrate it to the latest).
 */
export async function migrateTo(store: Store, name: string): Promise<void> {
  const provider: MigrationProvider = { getMigrations: async () => migrations(store) };
  const { error } = await new Migrator({ db: store.db, provider }).migrateTo(name);
  if (error) throw error instanceof Error ? error : new Error(String(error));
}

/** Brings the schema up to date; safe to call on every start and from several nodes at once. */
export async function migrateToLatest(store: Store): Promise<string[]> {
  const provider: MigrationProvider = { getMigrations: async () => migrations(store) };
  const migrator = new Migrator({ db: store.db, provider });
  const { error, results } = await migrator.migrateToLatest();
  if (error) throw error instanceof Error ? error : new Error(String(error));
  // The epoch names this database in every cursor, so a cursor from another database is recognised;
  // messages/history-guard.ts rotates it when the database's history is replaced (restore, PITR, failover).
  await store.db
    .insertInto('skypush_meta')
    .values({ key: EPOCH_KEY, value: randomBytes(6).toString('hex') })
    .onConflict((oc) => oc.column('key').doNothing())
    .execute();
  // Messages that expired before this database was first migrated are not announced.
  await store.db
    .insertInto('skypush_meta')
    .values({ key: EXPIRY_CURSOR_KEY, value: `${Date.now()}:0` })
    .onConflict((oc) => oc.column('key').doNothing())
    .execute();
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}
