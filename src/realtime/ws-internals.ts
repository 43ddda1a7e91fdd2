/**
 * Every use of a ws private, in one place. Read against ws 8.23.0 (lib/sender.js, lib/websocket.js);
 * test/realtime/ws-internals.unit.test.ts fails loudly if the installed ws changes any of these shapes.
 *
 * - `Sender.frame(data, options)`: the static framer ws itself uses; exported at run time (Socket.IO
 *   pre-frames its broadcasts with it the same way) but not declared by @types/ws.
 * - `websocket._sender.sendFrame(list)`: writes a ready-made frame; ws queues nothing there without
 *   per-message deflate, so the write goes straight to the socket.
 * - `websocket._socket`: the net.Socket under the WebSocket, for cork()/uncork() and its 'drain' event.
 */
import * as ws from 'ws';
import type { WebSocket } from 'ws';

type FrameFn = (
  data: Buffer,
  options: { fin: boolean; opcode: number; mask: boolean; readOnly: boolean; rsv1: boolean },
) => Buffer[];

const sender = (ws as unknown as { Sender?: { frame?: unknown } }).Sender;
// Loud at start-up rather than a TypeError on the first fan-out.
if (typeof sender?.frame !== 'function')
  throw new Error('the installed ws has no Sender.frame (skypush was written against ws 8.23.0)');
const frameOf = sender.frame as FrameFn;
const TEXT_FRAME = { fin: true, opcode: 1, mask: false, readOnly: true, rsv1: false };

/** The complete unmasked WebSocket text frame around `payload` (a server never masks). */
export function frameText(payload: Buffer): Buffer {
  return Buffer.concat(frameOf(payload, TEXT_FRAME));
}

/** The parts of the underlying net.Socket the writer uses. */
export interface RawSocket extends NodeJS.EventEmitter {
  cork(): void;
  uncork(): void;
}

/** The socket under a ws WebSocket; undefined before it is set up or once ws has let it go. */
export function rawSocketOf(websocket: WebSocket): RawSocket | undefined {
  return (websocket as unknown as { _socket?: RawSocket | null })._socket ?? undefined;
}

/** Writes a frame made by frameText() as is (only on an open socket without per-message deflate). */
export function writeRawFrame(websocket: WebSocket, frame: Buffer): void {
  (websocket as unknown as { _sender: { sendFrame(list: Buffer[]): void } })._sender.sendFrame([frame]);
}
