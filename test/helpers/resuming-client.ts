/**
 * A test client that behaves as the protocol asks: it keeps the cursor of the last frame that carries
 * one, reconnects with `?since=`, unpacks MESSAGE_BATCH, and on RESYNC refetches the inbox over REST.
 * It records every durable event it processed so tests can check "exactly once, in order".
 */
import WebSocket from 'ws';
import type { Frame } from './ws-client.ts';

export interface InboxEntry {
  id: number;
  isRead: boolean;
}

export class ResumingClient {
  cursor: string | undefined;
  /** Durable events in processing order (batches unpacked). */
  readonly events: Frame[] = [];
  readonly resyncs: string[] = [];
  readonly connects: Array<{ ok?: boolean; replayed?: number }> = [];
  /** The inbox as reconstructed from events (and REST after a RESYNC). */
  readonly inbox = new Map<number, InboxEntry>();
  lastUnread: number | undefined;
  ws: WebSocket | undefined;
  private waiters: Array<() => void> = [];

  constructor(
    private readonly wsUrl: string,
    private readonly token: string,
    private readonly refetch?: () => Promise<InboxEntry[]>,
  ) {}

  /** Connects (resuming when a cursor is held) and resolves after the post-replay UNREAD_COUNT. */
  connect(): Promise<void> {
    const url = new URL(this.wsUrl);
    url.searchParams.set('token', this.token);
    if (this.cursor) url.searchParams.set('since', this.cursor);
    const ws = new WebSocket(url);
    this.ws = ws;
    let seenConnected = false;
    let chain = Promise.resolve();
    return new Promise((resolve, reject) => {
      ws.once('error', reject);
      ws.once('unexpected-response', (_q, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
      ws.on('message', (raw) => {
        const f = JSON.parse(raw.toString()) as Frame;
        // Process strictly in order, even when a RESYNC refetch is asynchronous.
        chain = chain.then(async () => {
          await this.process(f);
          if (f.type === 'CONNECTED') seenConnected = true;
          if (f.type === 'UNREAD_COUNT' && seenConnected) resolve();
          this.notify();
        });
      });
      ws.once('close', (code) => {
        this.notify();
        reject(new Error(`closed with ${code} before the replay finished`));
      });
    });
  }

  private async process(f: Frame): Promise<void> {
    switch (f.type) {
      case 'CONNECTED': {
        const resume = f.data['resume'] as { ok: boolean; replayed: number } | undefined;
        this.connects.push(resume ? { ok: resume.ok, replayed: resume.replayed } : {});
        this.cursor ??= f.data['cursor'] as string;
        return;
      }
      case 'MESSAGE_BATCH':
        for (const inner of f.data.messages ?? []) this.apply(inner);
        return;
      case 'RESYNC': {
        this.resyncs.push(f.data['reason'] as string);
        if (this.refetch) {
          this.inbox.clear();
          for (const e of await this.refetch()) this.inbox.set(e.id, e);
        }
        this.cursor = f.data['cursor'] as string;
        return;
      }
      case 'UNREAD_COUNT':
        this.lastUnread = f.data['count'] as number;
        return;
      case 'HEARTBEAT':
        if (f.cursor) this.cursor = f.cursor;
        return;
      default:
        if (f.cursor) this.apply(f);
    }
  }

  private apply(f: Frame): void {
    this.events.push(f);
    this.cursor = f.cursor;
    const d = f.data as Record<string, unknown>;
    if (f.type === 'NEW_MESSAGE')
      this.inbox.set(d['messageId'] as number, { id: d['messageId'] as number, isRead: false });
    if (f.type === 'MESSAGE_READ') {
      for (const id of d['messageIds'] as number[]) {
        const e = this.inbox.get(id);
        if (e) e.isRead = true;
      }
    }
    if (f.type === 'MESSAGE_DELETED') this.inbox.delete(d['messageId'] as number);
  }

  private notify(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** Message ids of NEW_MESSAGE events processed, in order. */
  newMessageIds(): number[] {
    return this.events.filter((e) => e.type === 'NEW_MESSAGE').map((e) => e.data['messageId'] as number);
  }

  /** Waits until `pred()` holds (checked after every frame), or fails after `timeoutMs`. */
  async until(pred: () => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pred()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; have ${this.events.length} events`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.min(left, 200));
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  /** Drops the connection abruptly (no close handshake), as a network failure would. */
  async drop(): Promise<void> {
    const ws = this.ws;
    if (!ws || ws.readyState === WebSocket.CLOSED) return;
    const closed = new Promise((r) => ws.once('close', r));
    ws.terminate();
    await closed;
  }

  async close(): Promise<void> {
    const ws = this.ws;
    if (!ws || ws.readyState === WebSocket.CLOSED) return;
    const closed = new Promise((r) => ws.once('close', r));
    ws.close();
    await closed;
  }
}

/** The user's whole inbox over REST, newest first (what a client refetches after RESYNC). */
export async function restInbox(
  request: <T>(method: string, path: string, o: { token: string }) => Promise<{ body: { data: T } }>,
  token: string,
): Promise<InboxEntry[]> {
  const out: InboxEntry[] = [];
  let cursor: string | null = null;
  do {
    const r: {
      body: { data: { items: Array<{ id: number; isRead: boolean }>; nextCursor: string | null } };
    } = await request('GET', `/api/v1/messages?limit=100${cursor ? `&cursor=${cursor}` : ''}`, { token });
    out.push(...r.body.data.items.map((i) => ({ id: i.id, isRead: i.isRead })));
    cursor = r.body.data.nextCursor;
  } while (cursor);
  return out;
}
