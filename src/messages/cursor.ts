/**
 * Cursors. An event cursor names one position in one database's event log: `<epoch>.<seq>`, where the
 * epoch is random per database (so a cursor from another database is recognised; it changes when the
 * database's history is replaced: history-guard.ts) and seq is the event's commit-ordered sequence
 * number. Clients treat it as opaque. Page cursors for the inbox are separate: base64url of the last
 * message id seen.
 */
export interface EventPosition {
  epoch: string;
  seq: number;
}

const EVENT_CURSOR = /^([0-9a-f]{12})\.(\d{1,15})$/;

export function encodeEventCursor(epoch: string, seq: number): string {
  return `${epoch}.${seq}`;
}

/** Undefined when the string is not a cursor at all. */
export function decodeEventCursor(cursor: string): EventPosition | undefined {
  const m = EVENT_CURSOR.exec(cursor);
  if (!m) return undefined;
  const seq = Number(m[2]);
  return Number.isSafeInteger(seq) ? { epoch: m[1] as string, seq } : undefined;
}

export function encodePageCursor(lastId: number): string {
  return Buffer.from(`m${lastId}`).toString('base64url');
}

export function decodePageCursor(cursor: string): number | undefined {
  const m = /^m(\d{1,15})$/.exec(Buffer.from(cursor, 'base64url').toString());
  return m ? Number(m[1]) : undefined;
}
