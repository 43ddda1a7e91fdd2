/**
 * A real in-memory SQLite database, migrated, with a few users, and the messages/ parts built on it with
 * a hand-moved clock: the unit tests of the messages parts run against real SQL in milliseconds.
 */
import type { Kysely } from 'kysely';
import type { Principal } from '../../src/auth/auth.service.ts';
import type { BusMessage } from '../../src/bus/bus.ts';
import { createMemoryBus } from '../../src/bus/memory-bus.ts';
import { createEventLogWriter, type CommitWithEvents } from '../../src/messages/event-log-writer.ts';
import { createIdempotency } from '../../src/messages/idempotency.ts';
import { createInboxService, type InboxDeps, type InboxService } from '../../src/messages/inbox.service.ts';
import { openStore, type Store } from '../../src/store/database.ts';
import { migrateToLatest } from '../../src/store/migrate.ts';
import type { DB } from '../../src/store/schema.ts';
import { insertUser } from '../../src/users/user.repository.ts';

export interface MessagesFixture {
  store: Store;
  dialect: Store['dialect'];
  db: Kysely<DB>;
  commit: CommitWithEvents;
  /** What the event log writer published, in order. */
  published: BusMessage[];
  /** The fixture's clock: starts a minute after the migrations ran; tests move `clock.t`. */
  clock: { t: number };
  now: () => number;
  admin: Principal;
  /** Adds a user (role 'user' unless given) and returns them as a principal. */
  addUser(id: number, o?: { role?: 'admin' | 'user'; disabled?: boolean }): Promise<Principal>;
  /** Every row of the event log, oldest first. */
  events(): Promise<
    Array<{ userId: number | 'recipients' | null; type: string; data: Record<string, unknown> }>
  >;
  count(table: 'messages' | 'inbox' | 'events' | 'idempotency_keys'): Promise<number>;
  close(): Promise<void>;
}

export async function openMessagesFixture(): Promise<MessagesFixture> {
  const store = openStore({
    kind: 'sqlite',
    url: 'sqlite::memory:',
    sqlitePath: ':memory:',
    poolSize: 1,
    statementTimeoutMs: 5000,
    connectTimeoutMs: 5000,
  });
  await migrateToLatest(store);
  const { db } = store;
  const clock = { t: Date.now() + 60_000 };
  const now = () => clock.t;
  const bus = createMemoryBus();
  const published: BusMessage[] = [];
  bus.subscribe((m) => void published.push(m));
  const commit = createEventLogWriter({ db, dialect: store.dialect, bus, nodeId: 'node-test', now });

  async function addUser(id: number, o: { role?: 'admin' | 'user'; disabled?: boolean } = {}) {
    const role = o.role ?? 'user';
    await insertUser(db, {
      id,
      username: `u${id}`,
      display_name: `User ${id}`,
      password_hash: null,
      role,
      disabled: o.disabled ? 1 : 0,
      created_at: 0,
      updated_at: 0,
    });
    return { userId: id, role, username: `u${id}`, displayName: `User ${id}`, exp: 0 };
  }
  const admin = await addUser(1, { role: 'admin' });

  return {
    store,
    dialect: store.dialect,
    db,
    commit,
    published,
    clock,
    now,
    admin,
    addUser,
    async events() {
      const rows = await db.selectFrom('events').selectAll().orderBy('seq').execute();
      // A NEW_MESSAGE by reference shows as {messageId}; its userId -1 as 'recipients'.
      return rows.map((r) => ({
        userId: r.user_id === null ? null : Number(r.user_id) === -1 ? 'recipients' : Number(r.user_id),
        type: r.type,
        data:
          r.data === '' && r.message_id !== null
            ? { messageId: Number(r.message_id) }
            : (JSON.parse(r.data) as Record<string, unknown>),
      }));
    },
    async count(table) {
      const r = await db
        .selectFrom(table)
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .executeTakeFirstOrThrow();
      return Number(r.n);
    },
    close: () => store.close(),
  };
}

/** An inbox service on the fixture with small limits (10 targets); `sent` hears each committed send. */
export function smallInbox(f: MessagesFixture, sent?: InboxDeps['sent']): InboxService {
  return createInboxService({
    db: f.db,
    dialect: f.dialect,
    commit: f.commit,
    idempotency: createIdempotency({ db: f.db, ttlSec: 60, now: f.now }),
    limits: {
      maxTargets: 10,
      wideSendTargets: 10,
      wideSendConcurrency: 1,
      maxMessageBytes: 4096,
      maxSendBytes: 1_000_000,
      retentionSec: undefined,
    },
    now: f.now,
    ...(sent && { sent }),
  });
}
