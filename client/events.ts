/** The client's typed event map: one event per server frame type, plus the connection's lifecycle. */
import type { CloseAction, Frame, FrameData, FrameType } from '../src/protocol.ts';

export type ConnectionState = 'disconnected' | 'connecting' | 'connected';

/** Facts about a frame beside its payload. */
export interface FrameInfo {
  /** The frame's cursor, for durable events. */
  cursor?: string;
  /** Unix seconds, as sent by the server. */
  timestamp: number;
  /** True for events replayed after a reconnect (inside MESSAGE_BATCH) rather than pushed live. */
  replayed: boolean;
}

export interface DisconnectInfo {
  code: number;
  reason: string;
  /** What the client does next, from the close-code contract in src/protocol.ts. */
  action: CloseAction;
}

export interface ReconnectInfo {
  /** Consecutive failed attempts so far. */
  attempt: number;
  delayMs: number;
  /** When the next attempt starts (clock time, ms). */
  at: number;
}

export type FrameEvents = { [K in FrameType]: [data: FrameData[K], info: FrameInfo] };

export interface LifecycleEvents {
  state: [state: ConnectionState, previous: ConnectionState];
  disconnect: [info: DisconnectInfo];
  reconnecting: [info: ReconnectInfo];
  /** Every frame as received (MESSAGE_BATCH included, before it is unpacked). */
  frame: [frame: Frame];
  /** Client-side failures: credentials callback, malformed frame, onResync. The client keeps going. */
  error: [error: Error];
}

export type ClientEvents = FrameEvents & LifecycleEvents;
