/** An in-memory WebSocket for client SDK unit tests: the test plays the server. */
import type { WebSocketLike } from '../../client/index.ts';

type Handler = ((ev: never) => void) | null;

export class FakeSocket implements WebSocketLike {
  static readonly opened: FakeSocket[] = [];
  readyState = 0;
  readonly sent: unknown[] = [];
  closedByClient: { code: number | undefined; reason: string | undefined } | undefined;
  onopen: Handler = null;
  onmessage: Handler = null;
  onclose: Handler = null;
  onerror: Handler = null;

  constructor(
    readonly url: string,
    readonly protocols?: string | string[],
  ) {
    FakeSocket.opened.push(this);
  }

  send(data: string): void {
    this.sent.push(JSON.parse(data));
  }

  close(code?: number, reason?: string): void {
    this.closedByClient = { code, reason };
    this.readyState = 3;
  }

  /** The server sends a frame. */
  push(type: string, data: unknown, cursor?: string): void {
    const frame = { type, data, timestamp: 1, ...(cursor !== undefined && { cursor }) };
    (this.onmessage as ((ev: { data: string }) => void) | null)?.({ data: JSON.stringify(frame) });
  }

  /** The server (or the network) closes the connection. */
  drop(code: number, reason = ''): void {
    this.readyState = 3;
    (this.onclose as ((ev: { code: number; reason: string }) => void) | null)?.({ code, reason });
  }

  static last(): FakeSocket {
    const s = FakeSocket.opened.at(-1);
    if (!s) throw new Error('no socket opened');
    return s;
  }
}
