/** What the hub needs from the event log (implemented by messages/feed.ts; the hub never sees SQL). */
import type { ResyncReason } from '../protocol.ts';

export interface HubEvent {
  seq: number;
  userId: number | null;
  type: string;
  dataJson: string;
  createdAt: number;
}

export interface EventSource {
  epoch(): Promise<string>;
  cursorFor(epoch: string, seq: number): string;
  head(): Promise<number>;
  readAfter(afterSeq: number, limit: number): Promise<HubEvent[]>;
  resume(
    userId: number,
    cursor: string,
    uptoSeq: number,
    max: number,
  ): Promise<{ ok: true; sinceSeq: number; events: HubEvent[] } | { ok: false; reason: ResyncReason }>;
  unreadCounts(userIds: readonly number[]): Promise<Map<number, number>>;
}
