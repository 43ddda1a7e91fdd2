/**
 * The messages/ parts wired together: the event log writer that every change commits through, the inbox
 * (inbox.service.ts), idempotent sends (idempotency.ts) and expiry (expiry.ts). `MessageService` is what
 * the HTTP and WebSocket routes call; housekeeping and the expiry timer take the other parts.
 */
import type { Kysely } from 'kysely';
import type { Bus } from '../bus/bus.ts';
import type { Dialect } from '../store/database.ts';
import type { DB } from '../store/schema.ts';
import type { EventRow } from './event-log.repository.ts';
import { createEventLogWriter } from './event-log-writer.ts';
import { createExpiryAnnouncer, type ExpiryAnnouncer } from './expiry.ts';
import { createIdempotency, type Idempotency } from './idempotency.ts';
import { createInboxService, type InboxDeps, type InboxLimits, type InboxService } from './inbox.service.ts';

export type { InboxItem, SendInput, SendResult } from '../api-types.ts';

export interface MessageService extends InboxService {
  /** An admin's SYSTEM_NOTIFY to everyone: one durable event, no inbox rows. */
  broadcast(type: string, data: Record<string, unknown>): Promise<void>;
}

export interface MessagesDeps {
  db: Kysely<DB>;
  dialect: Dialect;
  bus: Bus;
  nodeId: string;
  /** Config.messages: target and size limits, retention, the idempotency key lifetime. */
  settings: InboxLimits & { idempotencyTtlSec: number };
  now: () => number;
  /** The event log writer's wake-up from inside the transaction (PostgreSQL without Redis). */
  inTransaction?: (trx: Kysely<DB>, head: number) => Promise<void>;
  /** Told of each committed send (the node's event log reader keeps what its tail read will need). */
  sent?: InboxDeps['sent'];
  /** Told of the rows each commit appended (SQLite: the node's tail read takes them from here). */
  appended?: (rows: EventRow[]) => void;
  /** SQLite: told of each group commit's number of changes (a metric). */
  onBatch?: (n: number) => void;
}

export interface Messages {
  service: MessageService;
  idempotency: Idempotency;
  expiry: ExpiryAnnouncer;
}

export function createMessages(deps: MessagesDeps): Messages {
  const { db, now } = deps;
  const commit = createEventLogWriter(deps);
  const idempotency = createIdempotency({ db, ttlSec: deps.settings.idempotencyTtlSec, now });
  const inbox = createInboxService({
    db,
    dialect: deps.dialect,
    commit,
    idempotency,
    limits: deps.settings,
    now,
    sent: deps.sent,
  });
  const service: MessageService = {
    ...inbox,
    async broadcast(type, data) {
      await commit(async () => ({ result: undefined, events: [{ userId: null, type, data }] }));
    },
  };
  return { service, idempotency, expiry: createExpiryAnnouncer({ ...deps, commit }) };
}
