/**
 * What a node's event-log reader keeps in memory besides the recent events (recent-events.ts): NEW_MESSAGE
 * data by message id, and the recipients of its own sends until its tail read takes them.
 */
/** Bytes of NEW_MESSAGE data a node keeps (MessageDataCache). */
const MESSAGE_CACHE_BYTES = 32 * 1_048_576;

/**
 * NEW_MESSAGE data by message id, the most recently used kept up to MESSAGE_CACHE_BYTES (string length
 * × 2). Messages never change after the send, so an entry never goes stale: in a reconnect storm every
 * resuming client replays the same messages, read and serialised once instead of once per client.
 */
export class MessageDataCache {
  private readonly entries = new Map<number, string>();
  private bytes = 0;
  constructor(private readonly maxBytes = MESSAGE_CACHE_BYTES) {}

  get(id: number): string | undefined {
    const v = this.entries.get(id);
    if (v !== undefined) {
      // Most recently used last (a Map keeps insertion order).
      this.entries.delete(id);
      this.entries.set(id, v);
    }
    return v;
  }

  set(id: number, json: string): void {
    const size = json.length * 2;
    if (size > this.maxBytes || this.entries.has(id)) return;
    this.entries.set(id, json);
    this.bytes += size;
    for (const [old, v] of this.entries) {
      if (this.bytes <= this.maxBytes) break;
      this.entries.delete(old);
      this.bytes -= v.length * 2;
    }
  }

  get size(): number {
    return this.bytes;
  }
}

/** Sends whose recipients a node keeps for its tail read (SentRecipients), and their ids in all. */
export const SENT_HINTS = 1024;
export const SENT_HINT_IDS = 100_000;

/**
 * The recipients of sends committed on this node, kept until the tail read takes them (once each) so it
 * need not read them back; at most SENT_HINTS sends and SENT_HINT_IDS ids, the oldest dropped first (its
 * recipients are then read from the database, as for a send made on another node). A send's recipients
 * never change after its commit.
 */
export class SentRecipients {
  private readonly entries = new Map<number, readonly number[]>();
  private ids = 0;

  set(messageId: number, recipients: readonly number[]): void {
    if (recipients.length > SENT_HINT_IDS || this.entries.has(messageId)) return;
    this.entries.set(messageId, recipients);
    this.ids += recipients.length;
    for (const [old, r] of this.entries) {
      if (this.entries.size <= SENT_HINTS && this.ids <= SENT_HINT_IDS) break;
      this.entries.delete(old);
      this.ids -= r.length;
    }
  }

  take(messageId: number): readonly number[] | undefined {
    const r = this.entries.get(messageId);
    if (r !== undefined) {
      this.entries.delete(messageId);
      this.ids -= r.length;
    }
    return r;
  }

  get size(): { sends: number; ids: number } {
    return { sends: this.entries.size, ids: this.ids };
  }
}
