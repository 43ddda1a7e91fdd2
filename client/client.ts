/**
 * The skypush WebSocket client: an explicit state machine (`disconnected → connecting → connected`),
 * changed only in `#setState()`, which emits `state`. It asks for credentials before every attempt,
 * reconnects with full-jitter backoff as the close-code contract says, answers heartbeats, notices a
 * silent (dead) connection, keeps the last cursor and resumes from it, and drops duplicate messages.
 */
import {
  CloseCode,
  FrameType,
  closeAction,
  type CloseAction,
  type ConnectedPayload,
  type Frame,
  type FrameData,
} from '../src/protocol.ts';
import { backoffDelay } from './backoff.ts';
import { Emitter, type Listener } from './emitter.ts';
import type { ClientEvents, ConnectionState, FrameInfo } from './events.ts';
import {
  resolveOptions,
  type ClientOptions,
  type CredentialReason,
  type ResolvedOptions,
  type WebSocketLike,
} from './options.ts';
import { endpointFor } from './endpoint.ts';
import { Position } from './position.ts';
import { RecentIds } from './recent-ids.ts';
import { SilenceWatch } from './silence-watch.ts';

/** Close code used locally when an attempt never produced CONNECTED (its action is "back off"). */
const ABNORMAL = 1006;
const noop = () => {};

/**
 * @example
 * const client = new SkypushClient({
 *   url: 'wss://push.example.com/api/v1/ws/messages',
 *   getTicket: async () => (await rest.ticket()).ticket,
 *   onResync: () => reloadInbox(),
 * });
 * client.on('NEW_MESSAGE', (m) => showToast(m.title));
 * client.on('UNREAD_COUNT', ({ count }) => setBadge(count));
 * client.connect();
 */
export class SkypushClient {
  readonly #o: Readonly<ResolvedOptions>;
  readonly #events = new Emitter<ClientEvents>();
  readonly #seen: RecentIds;
  #state: ConnectionState = 'disconnected';
  readonly #position: Position;
  #ws: WebSocketLike | undefined;
  /** Bumped by every attempt and by disconnect(): callbacks of an older session do nothing. */
  #session = 0;
  /** Consecutive attempts that did not lead to a stable connection (drives the backoff). */
  #attempt = 0;
  #retryTimer: unknown;
  #retryReason: CredentialReason = 'reconnect';
  readonly #silence: SilenceWatch;
  #connectedAt: number | undefined;

  constructor(options: ClientOptions) {
    this.#o = resolveOptions(options);
    this.#position = new Position(options.cursor);
    this.#seen = new RecentIds(this.#o.dedupeCapacity);
    this.#silence = new SilenceWatch(this.#o.clock, (idle) => this.#onSilent(idle));
  }

  get state(): ConnectionState {
    return this.#state;
  }

  /** The position of the last event received; persist it to resume in a later session. */
  get cursor(): string | undefined {
    return this.#position.cursor;
  }

  on<K extends keyof ClientEvents>(type: K, fn: Listener<ClientEvents[K]>): () => void {
    return this.#events.on(type, fn);
  }

  once<K extends keyof ClientEvents>(type: K, fn: Listener<ClientEvents[K]>): () => void {
    return this.#events.once(type, fn);
  }

  off<K extends keyof ClientEvents>(type: K, fn: Listener<ClientEvents[K]>): void {
    this.#events.off(type, fn);
  }

  /** Starts connecting; while waiting to retry, retries at once (e.g. when the network comes back). */
  connect(): void {
    if (this.#ws) return;
    if (this.#retryTimer !== undefined) {
      this.#o.clock.clearTimeout(this.#retryTimer);
      this.#retryTimer = undefined;
      void this.#open(this.#retryReason);
      return;
    }
    if (this.#state === 'connecting') return; // credentials are being fetched
    void this.#open('connect');
  }

  /** Closes the connection and stops reconnecting. `connect()` starts again, from the kept cursor. */
  disconnect(): void {
    this.#session++;
    if (this.#retryTimer !== undefined) this.#o.clock.clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    this.#silence.stop();
    const ws = this.#ws;
    this.#ws = undefined;
    if (ws) this.#abandon(ws, 1000, 'client disconnect');
    this.#connectedAt = undefined;
    this.#attempt = 0;
    this.#setState('disconnected');
  }

  // ---- state ---------------------------------------------------------------------------------------

  #setState(next: ConnectionState): void {
    if (next === this.#state) return;
    const previous = this.#state;
    this.#state = next;
    this.#events.emit('state', next, previous);
  }

  // ---- connecting ----------------------------------------------------------------------------------

  async #open(reason: CredentialReason): Promise<void> {
    const session = ++this.#session;
    this.#setState('connecting');
    let endpoint: { url: string; protocols?: string[] };
    let ws: WebSocketLike;
    try {
      endpoint = await endpointFor(this.#o, reason, () => this.#position.cursor);
      if (session !== this.#session) return;
      ws = new this.#o.WebSocket(endpoint.url, endpoint.protocols);
    } catch (err) {
      if (session !== this.#session) return;
      this.#fail(err);
      this.#scheduleRetry('backoff');
      return;
    }
    this.#ws = ws;
    this.#connectedAt = undefined;
    this.#silence.start(this.#o.connectTimeoutMs);
    ws.onmessage = (ev: { data?: unknown }) => {
      if (this.#ws === ws) this.#onMessage(ws, ev.data);
    };
    ws.onclose = (ev: { code?: number; reason?: string }) => {
      if (this.#ws === ws) this.#lost(ev.code ?? ABNORMAL, ev.reason ?? '');
    };
    ws.onerror = noop; // a close event follows every error
  }

  /** Closes a socket we no longer listen to (a no-op error handler stays: `ws` throws without one). */
  #abandon(ws: WebSocketLike, code?: number, reason?: string): void {
    ws.onmessage = null;
    ws.onclose = null;
    ws.onopen = null;
    ws.onerror = noop;
    try {
      ws.close(code, reason);
    } catch {
      // already closed
    }
  }

  // ---- losing the connection and retrying ---------------------------------------------------------

  /** The current socket is gone with `code`: stop or schedule the next attempt, as the code says. */
  #lost(code: number, reason: string, action: CloseAction = closeAction(code)): void {
    const ws = this.#ws;
    this.#ws = undefined;
    if (ws) this.#abandon(ws);
    this.#silence.stop();
    const now = this.#o.clock.now();
    if (this.#connectedAt !== undefined && now - this.#connectedAt >= this.#o.stableAfterMs)
      this.#attempt = 0;
    this.#connectedAt = undefined;
    const session = this.#session;
    this.#events.emit('disconnect', { code, reason, action });
    if (session !== this.#session) return; // a listener called disconnect() or connect()
    if (action === 'stop') {
      this.#session++;
      this.#attempt = 0;
      this.#setState('disconnected');
      return;
    }
    this.#scheduleRetry(action);
  }

  #scheduleRetry(action: Exclude<CloseAction, 'stop'>): void {
    const { backoff, random, clock } = this.#o;
    // "Reconnect now" is honoured once; a second failure in a row backs off like any other.
    let delayMs: number;
    if (this.#attempt > 0 || action === 'backoff') delayMs = backoffDelay(this.#attempt, backoff, random);
    else if (action === 'refresh') delayMs = 0;
    else delayMs = Math.floor(random() * backoff.baseMs); // spread a restart's reconnect storm
    this.#attempt++;
    this.#retryReason = action === 'refresh' ? 'refresh' : 'reconnect';
    this.#setState('connecting');
    this.#retryTimer = clock.setTimeout(() => {
      this.#retryTimer = undefined;
      void this.#open(this.#retryReason);
    }, delayMs);
    this.#events.emit('reconnecting', { attempt: this.#attempt, delayMs, at: clock.now() + delayMs });
  }

  /** Nothing arrived for too long: a dead connection (after CONNECTED) or a stuck attempt. */
  #onSilent(idleMs: number): void {
    if (!this.#ws) return;
    if (this.#state === 'connected')
      this.#lost(CloseCode.HEARTBEAT_TIMEOUT.code, `no frame for ${idleMs} ms`);
    else this.#lost(ABNORMAL, `not connected after ${idleMs} ms`);
  }

  // ---- frames --------------------------------------------------------------------------------------

  #onMessage(ws: WebSocketLike, data: unknown): void {
    this.#silence.touch();
    let frame: Frame;
    try {
      if (typeof data !== 'string') throw new TypeError('binary frame');
      frame = JSON.parse(data) as Frame;
      if (typeof frame?.type !== 'string') throw new TypeError('frame without a type');
    } catch (err) {
      this.#fail(err);
      return;
    }
    this.#events.emit('frame', frame);
    if (frame.type === FrameType.HEARTBEAT) {
      try {
        ws.send(
          JSON.stringify({
            type: FrameType.HEARTBEAT_REPLY,
            data: { pong: 'ping' },
            timestamp: Math.floor(this.#o.clock.now() / 1000),
          }),
        );
      } catch {
        // the close event will follow
      }
    }
    this.#handle(frame, false);
  }

  #handle(frame: Frame, replayed: boolean): void {
    let adopt: (() => void) | undefined;
    switch (frame.type) {
      case FrameType.CONNECTED: {
        const d = frame.data as ConnectedPayload;
        this.#position.startAt(d.cursor);
        this.#connectedAt = this.#o.clock.now();
        this.#silence.start(d.heartbeatIntervalMs * this.#o.deadAfterHeartbeats);
        this.#setState('connected');
        break;
      }
      case FrameType.MESSAGE_BATCH:
        for (const inner of (frame.data as FrameData['MESSAGE_BATCH']).messages ?? [])
          this.#handle(inner, true);
        break;
      case FrameType.NEW_MESSAGE:
        if (frame.cursor !== undefined) this.#position.advance(frame.cursor);
        if (!this.#seen.add((frame.data as FrameData['NEW_MESSAGE']).messageId)) return;
        break;
      case FrameType.RESYNC:
        adopt = this.#position.resync(
          (frame.data as FrameData['RESYNC']).cursor ?? frame.cursor,
          this.#o.onResync !== undefined,
        );
        break;
    }
    if (frame.cursor !== undefined && frame.type !== FrameType.RESYNC) this.#position.advance(frame.cursor);
    const info: FrameInfo = {
      timestamp: frame.timestamp,
      replayed,
      ...(frame.cursor !== undefined && { cursor: frame.cursor }),
    };
    // Frame types the server adds later are emitted under their own name too.
    (this.#events.emit as (type: string, ...args: unknown[]) => void)(frame.type, frame.data, info);
    if (adopt) this.#resync(frame.data as FrameData['RESYNC'], adopt);
  }

  /** Calls the app's reload; the held position is adopted once it has succeeded. */
  #resync(data: FrameData['RESYNC'], adopt: () => void): void {
    const hook = this.#o.onResync;
    if (!hook) return;
    try {
      Promise.resolve(hook({ reason: data.reason, cursor: data.cursor })).then(adopt, (e: unknown) =>
        this.#fail(e),
      );
    } catch (e) {
      this.#fail(e);
    }
  }

  #fail(err: unknown): void {
    this.#events.emit('error', err instanceof Error ? err : new Error(String(err)));
  }
}
