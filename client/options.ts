/** The client's options, the seams tests inject (WebSocket, clock, randomness), and their defaults. */
import { DEFAULT_BACKOFF, validateBackoff, type BackoffOptions } from './backoff.ts';

/**
 * The slice of the WebSocket API the client uses; both the browser's `WebSocket` and the `ws` package
 * fit it. The client only ever *assigns* the `on…` handlers, so their parameter type is written `never`
 * (anything a runtime passes is accepted) and the handlers read what they need defensively.
 */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: never) => void) | null;
  onmessage: ((ev: never) => void) | null;
  onclose: ((ev: never) => void) | null;
  onerror: ((ev: never) => void) | null;
}

export type WebSocketCtor = new (url: string, protocols?: string | string[]) => WebSocketLike;

/** Time and timers, injectable so tests drive reconnects and heartbeats with a fake clock. */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (h) => globalThis.clearTimeout(h as Parameters<typeof globalThis.clearTimeout>[0]),
};

/** Why credentials are being asked for: a first connect, a reconnect, or after a "token expired" close. */
export type CredentialReason = 'connect' | 'reconnect' | 'refresh';

export interface ResyncInfo {
  reason: string;
  cursor: string;
}

export interface ClientOptions {
  /** The WebSocket endpoint, e.g. `wss://push.example.com/api/v1/ws/messages`. */
  url: string;
  /**
   * Returns a one-time ticket (POST /api/v1/ws/ticket); called before every connect. Preferred: no
   * long-lived token travels in a URL.
   */
  getTicket?: (reason: CredentialReason) => string | Promise<string>;
  /** Returns a JWT; called before every connect. Sent in Sec-WebSocket-Protocol unless `tokenInQuery`. */
  getToken?: (reason: CredentialReason) => string | Promise<string>;
  /** Seed compatibility: send the token as `?token=` (it may end up in proxies' access logs). */
  tokenInQuery?: boolean;
  /** Resume position from an earlier session (see `client.cursor`). */
  cursor?: string;
  /**
   * Called when the server cannot replay what was missed (RESYNC): refetch the inbox over REST. The
   * client adopts the server's new cursor only once the returned promise resolves: if the refetch fails
   * (rejects) and the connection drops, the client resumes from where the gap began and is told RESYNC
   * again, so nothing is skipped unreloaded.
   */
  onResync?: (info: ResyncInfo) => void | Promise<void>;
  backoff?: Partial<BackoffOptions>;
  /** A connection closed after being up this long counts as healthy: the backoff starts over. */
  stableAfterMs?: number;
  /** Give up on an attempt that has not produced CONNECTED after this long. */
  connectTimeoutMs?: number;
  /** The connection is considered dead after this many heartbeat intervals without any frame. */
  deadAfterHeartbeats?: number;
  /** How many NEW_MESSAGE ids are remembered for de-duplication. */
  dedupeCapacity?: number;
  /** Defaults to `globalThis.WebSocket` (browsers, Node ≥ 22); pass `ws`'s class in Node 20. */
  WebSocket?: WebSocketCtor;
  clock?: Clock;
  random?: () => number;
}

export interface ResolvedOptions extends Required<
  Omit<ClientOptions, 'getTicket' | 'getToken' | 'cursor' | 'onResync' | 'backoff' | 'WebSocket'>
> {
  getTicket: ClientOptions['getTicket'];
  getToken: ClientOptions['getToken'];
  onResync: ClientOptions['onResync'];
  backoff: Readonly<BackoffOptions>;
  WebSocket: WebSocketCtor;
}

export const DEFAULTS = Object.freeze({
  tokenInQuery: false,
  stableAfterMs: 5_000,
  connectTimeoutMs: 10_000,
  deadAfterHeartbeats: 2,
  dedupeCapacity: 1_000,
});

/** Merges defaults in plain view, validates once and freezes. Throws naming the bad option. */
export function resolveOptions(o: ClientOptions): Readonly<ResolvedOptions> {
  if (!o.url) throw new TypeError('url is required');
  if (!o.getTicket && !o.getToken) throw new TypeError('one of getTicket or getToken is required');
  if (o.tokenInQuery && !o.getToken) throw new TypeError('tokenInQuery needs getToken');
  const WS = o.WebSocket ?? (globalThis as { WebSocket?: WebSocketCtor }).WebSocket;
  if (!WS) throw new TypeError('no global WebSocket: pass options.WebSocket (e.g. the ws package)');
  const resolved: ResolvedOptions = {
    ...DEFAULTS,
    url: o.url,
    getTicket: o.getTicket,
    getToken: o.getToken,
    onResync: o.onResync,
    WebSocket: WS,
    clock: o.clock ?? systemClock,
    random: o.random ?? Math.random,
    backoff: validateBackoff({ ...DEFAULT_BACKOFF, ...o.backoff }),
    ...(o.tokenInQuery !== undefined && { tokenInQuery: o.tokenInQuery }),
    ...(o.stableAfterMs !== undefined && { stableAfterMs: o.stableAfterMs }),
    ...(o.connectTimeoutMs !== undefined && { connectTimeoutMs: o.connectTimeoutMs }),
    ...(o.deadAfterHeartbeats !== undefined && { deadAfterHeartbeats: o.deadAfterHeartbeats }),
    ...(o.dedupeCapacity !== undefined && { dedupeCapacity: o.dedupeCapacity }),
  };
  if (!(resolved.connectTimeoutMs > 0)) throw new RangeError('connectTimeoutMs must be > 0');
  if (!(resolved.deadAfterHeartbeats >= 1)) throw new RangeError('deadAfterHeartbeats must be >= 1');
  return Object.freeze(resolved);
}
