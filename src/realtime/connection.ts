/**
 * One WebSocket connection and its state transitions: replaying → live → closing, never back. Timers
 * live in the sweeper (one for all connections) and writes in the socket writer; this object keeps the
 * numbers they read, and only its own methods change them.
 *
 * Times are the monotonic clock's (lastSeen, nextHeartbeatAt, closingSince) except `exp`, a wall-clock
 * credential expiry in unix seconds.
 */
import type { WebSocket } from 'ws';
import type { CloseSpec } from '../protocol.ts';
import type { WireFrame } from './codec.ts';
import { RateLimiter } from './rate-limiter.ts';

export type ConnectionState = 'replaying' | 'live' | 'closing';

/** A live event held back while the replay is written. */
export interface Pending {
  seq: number;
  frame: string | WireFrame;
}

/** Heartbeats whose HEARTBEAT_REPLY is free of the rate limit: at most this many are owed. */
export const MAX_REPLIES_OWED = 2;

export class Connection {
  private _state: ConnectionState = 'replaying';
  private _lastSeq = 0;
  private pending: Pending[] = [];
  private _pendingBytes = 0;
  private _overflowed = false;
  private _countStale = false;
  private _lastSeen: number;
  private nextHeartbeatAt: number;
  private _closingSince = 0;
  private _closeCode: number | undefined;
  private _corkedBacklog = -1;
  private _repliesOwed = 0;
  private rateStrikes = 0;
  private invalidStrikes = 0;
  readonly limiter: RateLimiter;

  constructor(
    readonly id: string,
    readonly socket: WebSocket,
    readonly userId: number,
    /** Credential expiry, unix seconds (wall clock). */
    readonly exp: number,
    now: number,
    heartbeatIntervalMs: number,
    inboundRateLimit: number,
  ) {
    this._lastSeen = now;
    // A random phase spreads heartbeats of connections that arrived together over the interval.
    this.nextHeartbeatAt = now + Math.floor(Math.random() * heartbeatIntervalMs);
    this.limiter = new RateLimiter(inboundRateLimit, now);
  }

  get state(): ConnectionState {
    return this._state;
  }
  /** Highest event seq delivered (or covered by the replay): later duplicates are skipped. */
  get lastSeq(): number {
    return this._lastSeq;
  }
  get pendingBytes(): number {
    return this._pendingBytes;
  }
  /** An unread count was pushed for this user while replaying: a fresh one is due once live. */
  get countStale(): boolean {
    return this._countStale;
  }
  get lastSeen(): number {
    return this._lastSeen;
  }
  get closingSince(): number {
    return this._closingSince;
  }
  /** The code this side closed with, when it closed first: the peer may never echo it. */
  get closeCode(): number | undefined {
    return this._closeCode;
  }
  /** Corked for this turn by the socket writer: the bytes it still held unsent from earlier turns; else -1. */
  get corkedBacklog(): number {
    return this._corkedBacklog;
  }
  /** HEARTBEATs sent and not yet answered (at most MAX_REPLIES_OWED). */
  get repliesOwed(): number {
    return this._repliesOwed;
  }

  // ---- the live/replay seam (see resume.ts) ----

  /**
   * While replaying: keeps a live event for later, up to `maxBytes` held. Past that the held events are
   * dropped and the connection is marked overflowed: the replay then reads them from the log instead
   * (see resume.ts), so a long replay under heavy traffic costs bounded memory and drops nobody.
   */
  hold(seq: number, frame: string | WireFrame, maxBytes: number): void {
    if (this._overflowed) return;
    if (this._pendingBytes + frame.length > maxBytes) {
      this._overflowed = true;
      this.pending = [];
      this._pendingBytes = 0;
      return;
    }
    this.pending.push({ seq, frame });
    this._pendingBytes += frame.length;
  }

  /** Live events were dropped while replaying (see hold): the replay must extend to the tail. */
  get overflowed(): boolean {
    return this._overflowed;
  }

  /** The replay is extended to the current tail: events after it are held again from now on. */
  clearOverflow(): void {
    this._overflowed = false;
  }

  /** While live: true when `seq` is new to this connection, which then counts it as delivered. */
  accept(seq: number): boolean {
    if (this._state !== 'live' || seq <= this._lastSeq) return false;
    this._lastSeq = seq;
    return true;
  }

  /** Replay written: live from `position` on. Returns the held events, in arrival order, to deliver. */
  startLive(position: number): Pending[] {
    const held = this.pending;
    this.pending = [];
    this._pendingBytes = 0;
    if (this._state !== 'replaying') return [];
    this._lastSeq = position;
    this._state = 'live';
    return held;
  }

  markCountStale(): void {
    this._countStale = true;
  }

  // ---- liveness and inbound ----

  markSeen(now: number): void {
    this._lastSeen = now;
  }

  heartbeatDue(now: number): boolean {
    return this._state === 'live' && now >= this.nextHeartbeatAt;
  }

  heartbeatSent(now: number, intervalMs: number): void {
    this.nextHeartbeatAt = now + intervalMs;
    this._repliesOwed = Math.min(this._repliesOwed + 1, MAX_REPLIES_OWED);
  }

  replyReceived(): void {
    if (this._repliesOwed > 0) this._repliesOwed--;
  }

  /** Counts a frame over the rate limit; returns the strikes so far. */
  rateStrike(): number {
    return ++this.rateStrikes;
  }

  /** Counts an invalid frame; returns the strikes so far. */
  invalidStrike(): number {
    return ++this.invalidStrikes;
  }

  // ---- writes (socket-writer.ts) ----

  corked(backlog: number): void {
    this._corkedBacklog = backlog;
  }

  uncorked(): void {
    this._corkedBacklog = -1;
  }

  // ---- closing ----

  /** Stops all writes to this connection; false when it was closing already. */
  beginClose(code: number | undefined, now: number): boolean {
    if (this._state === 'closing') return false;
    this._state = 'closing';
    this._closingSince = now;
    this._closeCode = code;
    this.pending = [];
    this._pendingBytes = 0;
    return true;
  }

  /** Closes with `spec` unless already closing (the sweeper terminates it if the peer never answers). */
  close(spec: CloseSpec, now: number): void {
    if (!this.beginClose(spec.code, now)) return;
    try {
      this.socket.close(spec.code, spec.reason);
    } catch {
      this.socket.terminate();
    }
  }
}
