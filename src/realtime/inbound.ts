/**
 * Frames from clients. Every frame refreshes lastSeen; then, in order:
 * - binary frames close the connection (1003);
 * - a small HEARTBEAT_REPLY to a heartbeat of ours is free (at most MAX_REPLIES_OWED owed), so a
 *   short heartbeat interval never pushes a client over the rate limit;
 * - the rate limit (realtime.inboundRateLimit frames a minute): over it, an ERROR frame; the
 *   MAX_STRIKES-th time, close 4008;
 * - shape (codec.ts parseInbound: bounded before parsing): invalid, an ERROR frame; the
 *   MAX_STRIKES-th time, close 4000;
 * - HEARTBEAT gets a HEARTBEAT_REPLY once live (nothing may precede CONNECTED).
 * Also: the close code ws uses when it rejects a frame itself, for the connection's record.
 */
import type { Clock } from '../clock.ts';
import { CloseCode, FrameErrorCode, FrameType, InboundType } from '../protocol.ts';
import { encodeFrame, parseInbound, type Inbound } from './codec.ts';
import type { Connection } from './connection.ts';
import type { SocketWriter } from './socket-writer.ts';

export const MAX_STRIKES = 5;
/** Frames up to this size are parsed before the rate limit when they may be a heartbeat answer. */
const SMALL_FRAME = 256;

export class InboundFrames {
  constructor(
    private readonly writer: SocketWriter,
    private readonly clock: Clock,
  ) {}

  onFrame(c: Connection, raw: Buffer, isBinary: boolean): void {
    const mono = this.clock.monotonic();
    c.markSeen(mono);
    if (c.state === 'closing') return;
    if (isBinary) return c.close(CloseCode.UNSUPPORTED_DATA, mono);
    let msg: Inbound | undefined;
    if (c.repliesOwed > 0 && raw.length <= SMALL_FRAME) {
      msg = parseInbound(raw);
      if (msg.ok && msg.type === InboundType.HEARTBEAT_REPLY) return c.replyReceived();
    }
    if (!c.limiter.take(mono)) {
      if (c.rateStrike() >= MAX_STRIKES) return c.close(CloseCode.RATE_LIMITED, mono);
      const data = { code: FrameErrorCode.RATE_LIMITED, message: 'too many frames; slow down' };
      return this.reply(c, FrameType.ERROR, data);
    }
    msg ??= parseInbound(raw);
    if (!msg.ok) {
      if (c.invalidStrike() >= MAX_STRIKES) return c.close(CloseCode.PROTOCOL_ERROR, mono);
      return this.reply(c, FrameType.ERROR, { code: msg.code, message: msg.message });
    }
    // A client pinging during setup gets its answer from our heartbeat instead.
    if (msg.type === InboundType.HEARTBEAT) this.reply(c, FrameType.HEARTBEAT_REPLY, { pong: 'ping' });
    // HEARTBEAT_REPLY needs nothing more: receiving it already refreshed lastSeen.
  }

  /** Answers a frame, once live: nothing may precede CONNECTED. */
  private reply(c: Connection, type: FrameType, data: unknown): void {
    if (c.state === 'live') this.writer.send(c, encodeFrame(type, data, undefined, this.clock.now()));
  }
}

/** The close code ws sends by itself when it rejects an inbound frame (see ws/lib/receiver.js). */
export function wsErrorCloseCode(err: Error): number | undefined {
  const code = (err as { code?: unknown }).code;
  if (typeof code !== 'string' || !code.startsWith('WS_ERR_')) return undefined;
  if (code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' || code === 'WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH')
    return CloseCode.TOO_LARGE.code;
  if (code === 'WS_ERR_INVALID_UTF8') return CloseCode.INVALID_UTF8.code;
  if (code === 'WS_ERR_TOO_MANY_BUFFERED_PARTS') return CloseCode.POLICY_VIOLATION.code;
  return CloseCode.INVALID_FRAME.code;
}
