/**
 * One WebSocket connection's state. Timers live in the hub (one sweep for all connections); this
 * object only holds numbers the sweep and the fan-out read.
 */
import type { WebSocket } from 'ws';
import type { Role } from '../auth/tokens.ts';
import type { WireFrame } from './codec.ts';

export type ConnectionState = 'replaying' | 'live' | 'closing';

/** Token bucket for inbound frames: `limit` frames per minute, bursts up to `limit`. */
export class RateLimiter {
  private tokens: number;
  private last: number;
  constructor(
    private readonly limit: number,
    now: number,
  ) {
    this.tokens = limit;
    this.last = now;
  }

  take(now: number): boolean {
    this.tokens = Math.min(this.limit, this.tokens + ((now - this.last) * this.limit) / 60_000);
    this.last = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

export class Connection {
  state: ConnectionState = 'replaying';
  /** Highest event seq delivered (or covered by replay): later duplicates are skipped. */
  lastSeq = 0;
  /** Live events that arrived while the replay was being sent. */
  pending: Array<{ seq: number; frame: string | WireFrame }> = [];
  pendingBytes = 0;
  /** An unread count was computed for this user while replaying: send a fresh one once live. */
  countStale = false;
  lastSeen: number;
  nextHeartbeatAt: number;
  closingSince = 0;
  /** The code this side closed with, when it closed first: the peer may never echo it. */
  closeCode: number | undefined;
  /** Corked for this turn by the hub: the bytes it still held unsent from earlier turns; else -1. */
  corkedBacklog = -1;
  /** HEARTBEATs sent and not yet answered (at most 2): their HEARTBEAT_REPLYs are not rate-limited. */
  repliesOwed = 0;
  rateViolations = 0;
  invalidFrames = 0;
  readonly limiter: RateLimiter;

  constructor(
    readonly id: string,
    readonly socket: WebSocket,
    readonly userId: number,
    readonly role: Role,
    /** Credential expiry, unix seconds. */
    readonly exp: number,
    now: number,
    heartbeatIntervalMs: number,
    inboundRateLimit: number,
  ) {
    this.lastSeen = now;
    // A random phase spreads heartbeats of connections that arrived together over the interval.
    this.nextHeartbeatAt = now + Math.floor(Math.random() * heartbeatIntervalMs);
    this.limiter = new RateLimiter(inboundRateLimit, now);
  }
}
