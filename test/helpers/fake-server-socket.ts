/**
 * An in-memory server-side ws WebSocket for the hub's unit tests: the slice the hub's parts use, plus
 * the ws privates socket-writer.ts relies on (`_socket` for cork/uncork/'drain', `_sender.sendFrame`).
 * Writes grow bufferedAmount as unsent bytes would (the test drains by hand, or sets autoDrain).
 */
import { EventEmitter } from 'node:events';
import type { WebSocket } from 'ws';

export type SentFrame = { type: string; data: Record<string, unknown>; cursor?: string; timestamp: number };

/** The net.Socket under the WebSocket: counts corks and uncorks. */
export class FakeRawSocket extends EventEmitter {
  corks = 0;
  uncorks = 0;
  cork(): void {
    this.corks++;
  }
  uncork(): void {
    this.uncorks++;
  }
}

export class FakeServerSocket extends EventEmitter {
  readyState = 1;
  bufferedAmount = 0;
  /** Every payload written, as text, in order (ws.send and raw frames alike). */
  readonly texts: string[] = [];
  /** The Buffers handed to send() (to check that a fan-out shares one per event). */
  readonly buffers: Buffer[] = [];
  readonly rawFrames: Buffer[] = [];
  closedWith: { code: number; reason: string } | undefined;
  terminated = false;
  pings = 0;
  failOn: 'send' | 'ping' | 'close' | undefined;
  /** Writes leave at once (bufferedAmount stays 0): a client that reads everything. */
  autoDrain = false;
  _socket: FakeRawSocket | undefined = new FakeRawSocket();
  readonly _sender = {
    sendFrame: (list: Buffer[]) => {
      for (const b of list) this.rawFrames.push(b);
      if (!this.autoDrain) this.bufferedAmount += list.reduce((n, b) => n + b.length, 0);
    },
  };

  send(data: string | Buffer): void {
    if (this.failOn === 'send') throw new Error('write failed');
    if (Buffer.isBuffer(data)) this.buffers.push(data);
    const text = data.toString();
    this.texts.push(text);
    if (!this.autoDrain) this.bufferedAmount += Buffer.byteLength(text);
  }
  ping(): void {
    if (this.failOn === 'ping') throw new Error('ping failed');
    this.pings++;
  }
  close(code: number, reason: string): void {
    if (this.failOn === 'close') throw new Error('close failed');
    this.closedWith ??= { code, reason };
    this.readyState = 2;
  }
  terminate(): void {
    this.terminated = true;
    this.readyState = 3;
  }

  /** The code this socket was closed with (a method, so that TypeScript does not narrow it). */
  closeCode(): number | undefined {
    return this.closedWith?.code;
  }
  /** The frames written, parsed. */
  frames(): SentFrame[] {
    return this.texts.map((t) => JSON.parse(t) as SentFrame);
  }
  types(): string[] {
    return this.frames().map((f) => f.type);
  }
  /** The client sends a text frame. */
  receive(text: string): void {
    this.emit('message', Buffer.from(text), false);
  }
  asWs(): WebSocket {
    return this as unknown as WebSocket;
  }
}
