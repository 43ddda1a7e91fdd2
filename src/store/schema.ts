/**
 * Row types of every table, as Kysely sees them. These are storage shapes: services map them to API
 * types. Times are unix milliseconds in BIGINT columns (read back as numbers on both dialects); flags
 * are 0/1 integers so SQLite and PostgreSQL share one schema.
 */
import type { Generated } from 'kysely';

export interface MetaTable {
  key: string;
  value: string;
}

export interface UserTable {
  id: number;
  username: string;
  /** `scrypt$N$r$p$salt$hash`, or null for users that authenticate only with host-minted tokens. */
  password_hash: string | null;
  role: 'admin' | 'user';
  display_name: string;
  disabled: number;
  created_at: number;
  updated_at: number;
}

export interface MessageTable {
  id: Generated<number>;
  title: string;
  content: string;
  message_type: string;
  priority: number;
  sender_id: number;
  sender_name: string;
  link_url: string | null;
  target_type: 'user' | 'all';
  created_at: number;
  expires_at: number | null;
}

/**
 * Per-user state of a message. For direct messages the row is written at send time; for send-to-all
 * messages it is written only when the user reads or deletes one (see docs/decisions/0002).
 */
export interface InboxTable {
  user_id: number;
  message_id: number;
  read_at: number | null;
  deleted_at: number | null;
}

/**
 * The durable event log behind cursors. `user_id`: the user; null for every user; -1 (RECIPIENTS) for
 * the recipients of the direct message `message_id` (its inbox rows).
 */
export interface EventTable {
  seq: Generated<number>;
  user_id: number | null;
  type: string;
  /** The frame's `data` as JSON text; '' for a NEW_MESSAGE by reference (built from `message_id`). */
  data: string;
  /** The message a NEW_MESSAGE names (null for other events and for rows older than the reference scheme). */
  message_id: number | null;
  /** Every message ordered after this event has an id ≥ mfloor (see messages/event-log-append.ts). */
  mfloor: Generated<number>;
  created_at: number;
}

export interface IdempotencyTable {
  sender_id: number;
  key: string;
  request_hash: string;
  response: string;
  created_at: number;
}

export interface TicketTable {
  /** SHA-256 of the ticket: the ticket itself is never stored. */
  ticket_hash: string;
  user_id: number;
  role: string;
  token_exp: number;
  expires_at: number;
}

/**
 * A user's unread count in two parts that every change keeps in its own transaction (see
 * docs/decisions/0014-unread-counters.md): count = unread_direct + inbox_totals.live_all - seen_all.
 */
export interface UnreadCounterTable {
  user_id: number;
  /** Direct messages in the user's inbox, neither read nor deleted, whose expiry is not yet announced. */
  unread_direct: number;
  /** Live send-to-all messages the user has read or deleted (those with an inbox row for the user). */
  seen_all: number;
}

/** A send to several users whose +1 is not in every recipient's counter yet (PostgreSQL). */
export interface UnreadPendingTable {
  message_id: number;
  /** The recipients up to this user id have been folded into their counters. */
  folded_through: Generated<number>;
}

/** One row (id 1): send-to-all messages whose expiry has not been announced. */
export interface InboxTotalsTable {
  id: number;
  live_all: number;
}

/**
 * A node's presence lease (PostgreSQL-only clusters): its users count as online until `expires_at`
 * (database time). A node that dies stops renewing; housekeeping deletes the row and, by cascade, its users.
 */
export interface PresenceNodeTable {
  node_id: string;
  expires_at: number;
}

/** A user holding at least one connection on a node (realtime/pg-presence.ts). */
export interface PresenceUserTable {
  user_id: number;
  node_id: string;
}

/**
 * The shared login lockout of a PostgreSQL-only cluster, per (account, client address) pair
 * (auth/login-guard.pg.ts). Times are database time, unix ms.
 */
export interface LoginFailureTable {
  /** SHA-256 of the pair: no username or address in clear. */
  pair_hash: string;
  failures: number;
  /** Failures are forgotten after this (a day after the last one). */
  failures_until: number;
  locked_until: number;
  /** Attempts in flight: JSON object, attempt id → deadline; at most the failure limit of them. */
  attempts: string;
}

export interface DB {
  skypush_meta: MetaTable;
  users: UserTable;
  messages: MessageTable;
  inbox: InboxTable;
  events: EventTable;
  idempotency_keys: IdempotencyTable;
  ws_tickets: TicketTable;
  unread_counters: UnreadCounterTable;
  inbox_totals: InboxTotalsTable;
  unread_pending: UnreadPendingTable;
  presence_nodes: PresenceNodeTable;
  presence_users: PresenceUserTable;
  login_failures: LoginFailureTable;
}
