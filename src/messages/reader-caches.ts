/**
 * What a node's event-log reader keeps in memory besides the recent events (recent-events.ts): NEW_MESSAGE
 * data by message id, the recipients of its own sends and the rows of its own appends until its tail read
 * takes them.
 */
import type { EventRow } from './event-log.repository.ts';

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

/** Rows a node keeps of its own appends until its tail read takes them (AppendedRows). */
export const APPENDED_ROWS = 4096;

/**
 * The event rows this node appended (SQLite, where the node is the log's only writer in practice), by
 * seq, kept from their COMMIT until the tail read takes them, so that the tail read of the node's own
 * changes reads nothing back. A read is answered from here only when the rows right after its position
 * are all held, without a gap before the newest one held: a row written by another process (a gap) sends
 * the read to the database, as before. At most APPENDED_ROWS rows, the oldest dropped first.
 */
export class AppendedRows {
  private readonly rows = new Map<number, EventRow>();

  add(rows: readonly EventRow[]): void {
    for (const r of rows) this.rows.set(Number(r.seq), r);
    for (const seq of this.rows.keys()) {
      if (this.rows.size <= APPENDED_ROWS) break;
      this.rows.delete(seq);
    }
  }

  /** The rows after `afterSeq` (at most `limit`), or undefined when they are not all held here. */
  take(afterSeq: number, limit: number): EventRow[] | undefined {
    if (this.rows.size === 0) return undefined;
    // What the tail has passed is of no more use.
    for (const seq of this.rows.keys()) {
      if (seq > afterSeq) break;
      this.rows.delete(seq);
    }
    const out: EventRow[] = [];
    for (let seq = afterSeq + 1; out.length < limit; seq++) {
      const r = this.rows.get(seq);
      if (r === undefined) break;
      out.push(r);
    }
    // A gap before rows still held: someone else wrote in between; the database has all of them.
    if (out.length === 0 || (out.length < limit && this.rows.size > out.length)) return undefined;
    for (const r of out) this.rows.delete(Number(r.seq));
    return out;
  }

  clear(): void {
    this.rows.clear();
  }

  get size(): number {
    return this.rows.size;
  }
}
