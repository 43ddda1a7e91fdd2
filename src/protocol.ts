/**
 * The WebSocket protocol, defined once: frame types, payloads, close codes and what a client should do
 * after each. The client SDK imports this module; docs/PROTOCOL.md is checked against it by a test.
 * This file must stay free of Node-only imports (it is bundled for browsers).
 */

/** Sub-protocol the server selects when a client offers `skypush.v1, <jwt>` in Sec-WebSocket-Protocol. */
export const SUBPROTOCOL = 'skypush.v1';

/** Server → client frame types. */
export const FrameType = {
  CONNECTED: 'CONNECTED',
  NEW_MESSAGE: 'NEW_MESSAGE',
  UNREAD_COUNT: 'UNREAD_COUNT',
  MESSAGE_READ: 'MESSAGE_READ',
  MESSAGE_DELETED: 'MESSAGE_DELETED',
  SYSTEM_NOTIFY: 'SYSTEM_NOTIFY',
  HEARTBEAT: 'HEARTBEAT',
  HEARTBEAT_REPLY: 'HEARTBEAT_REPLY',
  MESSAGE_BATCH: 'MESSAGE_BATCH',
  RESYNC: 'RESYNC',
  ERROR: 'ERROR',
} as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

/** Client → server frame types the server accepts. Anything else gets an ERROR frame. */
export const InboundType = {
  HEARTBEAT_REPLY: 'HEARTBEAT_REPLY',
  HEARTBEAT: 'HEARTBEAT',
} as const;
export type InboundType = (typeof InboundType)[keyof typeof InboundType];

/** Admin broadcast types allowed on POST /api/v1/ws/broadcast. */
export const BROADCAST_TYPES: readonly FrameType[] = [FrameType.SYSTEM_NOTIFY];

/** The seed's envelope; `timestamp` is unix seconds. Durable events add `cursor`. */
export interface Frame<T extends FrameType = FrameType, D = unknown> {
  type: T;
  data: D;
  timestamp: number;
  cursor?: string;
}

export interface MessagePayload {
  messageId: number;
  title: string;
  content: string;
  messageType: string;
  priority: number;
  senderId: number;
  senderName: string;
  linkUrl: string | null;
  targetType: 'user' | 'all';
  createTime: string;
  expiresAt: string | null;
}

export interface ConnectedPayload {
  userID: number;
  connectionId: string;
  message: string;
  timestamp: number;
  /** Cursor of the newest event at connect time: resume from it if nothing arrives. */
  cursor: string;
  /** Present when the client asked to resume with `?since=`. */
  resume?: { requested: boolean; ok: boolean; replayed: number };
  heartbeatIntervalMs: number;
}

export interface FrameData {
  CONNECTED: ConnectedPayload;
  NEW_MESSAGE: MessagePayload;
  UNREAD_COUNT: { count: number };
  MESSAGE_READ: { messageId?: number; messageIds: number[]; readAt: string };
  /** `reason: 'expired'` when the message reached its `expiresAt` rather than being deleted by the user. */
  MESSAGE_DELETED: { messageId: number; reason?: 'expired' };
  SYSTEM_NOTIFY: { title?: string; content?: string; level?: string; [k: string]: unknown };
  HEARTBEAT: { ping: 'pong' };
  HEARTBEAT_REPLY: { pong: 'ping' };
  MESSAGE_BATCH: { messages: Frame[] };
  RESYNC: { reason: ResyncReason; cursor: string };
  ERROR: { code: FrameErrorCode; message: string };
}

export type ResyncReason = 'expired' | 'foreign' | 'future' | 'too_many';

/** Codes in ERROR frames (the connection stays open unless a close code follows). */
export const FrameErrorCode = {
  BAD_JSON: 'BAD_JSON',
  BAD_FRAME: 'BAD_FRAME',
  UNKNOWN_TYPE: 'UNKNOWN_TYPE',
  TYPE_TOO_LONG: 'TYPE_TOO_LONG',
  DATA_TOO_LARGE: 'DATA_TOO_LARGE',
  /** The frame's JSON nests deeper than INBOUND_LIMITS.maxDepth (checked before it is parsed). */
  TOO_DEEP: 'TOO_DEEP',
  /** `data` has the wrong JSON type for the frame's `type` (HEARTBEAT and HEARTBEAT_REPLY need an object). */
  BAD_DATA: 'BAD_DATA',
  RATE_LIMITED: 'RATE_LIMITED',
} as const;
export type FrameErrorCode = (typeof FrameErrorCode)[keyof typeof FrameErrorCode];

/** What a client should do after a close: reconnect at once, back off, get new credentials, or stop. */
export type CloseAction = 'reconnect' | 'backoff' | 'refresh' | 'stop';

export interface CloseSpec {
  readonly code: number;
  readonly reason: string;
  readonly action: CloseAction;
}

function close(code: number, reason: string, action: CloseAction): CloseSpec {
  return Object.freeze({ code, reason, action });
}

/** Every close code the server sends, with the client's next step. Reasons stay under 123 bytes. */
export const CloseCode = Object.freeze({
  NORMAL: close(1000, 'normal closure', 'stop'),
  INVALID_FRAME: close(1002, 'invalid WebSocket frame', 'backoff'),
  UNSUPPORTED_DATA: close(1003, 'binary frames are not supported', 'stop'),
  INVALID_UTF8: close(1007, 'text frame is not valid UTF-8', 'backoff'),
  POLICY_VIOLATION: close(1008, 'policy violation', 'stop'),
  TOO_LARGE: close(1009, 'frame too large', 'backoff'),
  INTERNAL_ERROR: close(1011, 'internal error', 'backoff'),
  SERVICE_RESTART: close(1012, 'service restart', 'reconnect'),
  PROTOCOL_ERROR: close(4000, 'too many invalid frames', 'backoff'),
  TOKEN_EXPIRED: close(4001, 'token expired', 'refresh'),
  USER_DISABLED: close(4003, 'user disabled', 'stop'),
  RATE_LIMITED: close(4008, 'too many frames', 'backoff'),
  SLOW_CONSUMER: close(4009, 'slow consumer', 'reconnect'),
  HEARTBEAT_TIMEOUT: close(4010, 'heartbeat timeout', 'reconnect'),
});

/** The client's next step after a close with `code` (unknown codes: back off and reconnect). */
export function closeAction(code: number): CloseAction {
  for (const c of Object.values(CloseCode)) if (c.code === code) return c.action;
  return 'backoff';
}

/**
 * Limits on inbound frames (seed section 7), checked on the raw text before it is parsed: `data` as
 * sent (bytes from its first to its last character) and the nesting of the whole frame, the envelope
 * object counting as level 1.
 */
export const INBOUND_LIMITS = Object.freeze({ maxTypeLength: 50, maxDataBytes: 10 * 1024, maxDepth: 16 });
