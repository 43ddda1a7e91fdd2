/**
 * The bus between the write path and every node's hub. Messages are a discriminated union carrying the
 * origin node id. The store is the truth: a bus message is a wake-up ("the event log grew to seq N"),
 * never the only copy of anything, so an at-most-once transport (Redis pub/sub) loses nothing that a
 * tail read of the log cannot recover. See docs/decisions/0003-bus-is-a-wake-up.md.
 */

export type BusMessage =
  /** New events were committed; the log's head is at least `head` (WAKE_ANY: not known, read on). */
  | { type: 'events'; origin: string; head: number }
  /** A user was disabled: every node closes that user's sockets. */
  | { type: 'user-disabled'; origin: string; userId: number }
  /** A node checks its own subscription is alive by publishing to itself. */
  | { type: 'probe'; origin: string; id: string };

/** The head of an `events` wake-up sent before the sender knew it (inside the committing transaction). */
export const WAKE_ANY = Number.MAX_SAFE_INTEGER;

export type BusHandler = (msg: BusMessage) => void;

export interface Bus {
  /**
   * Delivers `msg` to every subscriber on every node, the publisher's own node included. Rejects when the
   * other nodes could not be reached; this node's subscribers have heard it all the same.
   */
  publish(msg: BusMessage): Promise<void>;
  /** Registers a handler; returns a function that removes it. */
  subscribe(handler: BusHandler): () => void;
  /** Called when the bus (re)connects after a gap: subscribers must re-read what they may have missed. */
  onReconnect(handler: () => void): () => void;
  close(): Promise<void>;
}
