/**
 * What the load client must know about each system's wire protocol — as little as possible, and no
 * JSON parsing: where to connect, what counts as "ready", and the few control frames to answer.
 */
import type { Proto } from './types.ts';

export const SKYPUSH_PATH = '/api/v1/ws/messages';
const CURSOR_KEY = Buffer.from('"cursor":"');
const QUOTE = 0x22;

export function urlFor(proto: Proto, port: number, userId: number, since: string | undefined): string {
  const base = `ws://127.0.0.1:${port}`;
  if (proto === 'sio') return `${base}/socket.io/?EIO=4&transport=websocket&uid=${userId}`;
  if (proto === 'ws') return `${base}/?uid=${userId}`;
  return since === undefined
    ? `${base}${SKYPUSH_PATH}`
    : `${base}${SKYPUSH_PATH}?since=${encodeURIComponent(since)}`;
}

/** The last `"cursor":"…"` value in a skypush frame, or undefined. */
export function lastCursor(buf: Buffer): string | undefined {
  const at = buf.lastIndexOf(CURSOR_KEY);
  if (at < 0) return undefined;
  const start = at + CURSOR_KEY.length;
  const end = buf.indexOf(QUOTE, start);
  return end < 0 ? undefined : buf.toString('latin1', start, end);
}

/** Engine.IO v4 / Socket.IO v5 packet heads the client reacts to. */
export const SIO = {
  OPEN: 0x30, // "0{sid…}": answer "40" to join the main namespace
  PING: 0x32, // "2": answer "3"
  MESSAGE: 0x34, // "4…": "40" namespace joined, "42[…]" an event
  CONNECT: 0x30,
  EVENT: 0x32,
} as const;
