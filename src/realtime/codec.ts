/**
 * Frame encoding. Durable events are spliced from the data JSON stored in the log, so a fan-out
 * serialises nothing per recipient: one string per event, written to every socket that gets it.
 */
import * as ws from 'ws';
import { FrameErrorCode, INBOUND_LIMITS, InboundType, type FrameType } from '../protocol.ts';

type FrameFn = (
  data: Buffer,
  options: { fin: boolean; opcode: number; mask: boolean; readOnly: boolean; rsv1: boolean },
) => Buffer[];
// ws exports Sender at run time (Socket.IO pre-frames its broadcasts with it the same way); @types/ws
// does not declare it.
const frameOf = (ws as unknown as { Sender: { frame: FrameFn } }).Sender.frame;
const TEXT_FRAME = { fin: true, opcode: 1, mask: false, readOnly: true, rsv1: false };

/**
 * A fan-out frame, encoded once for all its recipients: `wire` is the complete unmasked WebSocket text
 * frame, written as is to sockets without per-message deflate; `text` is its UTF-8 payload, for ws.send.
 */
export class WireFrame {
  readonly wire: Buffer;
  readonly text: Buffer;
  constructor(json: string) {
    const text = Buffer.from(json);
    this.wire = Buffer.concat(frameOf(text, TEXT_FRAME));
    this.text = this.wire.subarray(this.wire.length - text.length);
  }

  get length(): number {
    return this.text.length;
  }
}

/** Encodes a non-durable frame (timestamp: unix seconds now). */
export function encodeFrame(type: FrameType, data: unknown, cursor?: string, nowMs = Date.now()): string {
  const frame: Record<string, unknown> = { type, data, timestamp: Math.floor(nowMs / 1000) };
  if (cursor !== undefined) frame['cursor'] = cursor;
  return JSON.stringify(frame);
}

/** Builds a durable event's frame around its stored data JSON, without parsing it. */
export function spliceFrame(type: string, dataJson: string, timestampSec: number, cursor: string): string {
  return `{"type":${JSON.stringify(type)},"data":${dataJson},"timestamp":${timestampSec},"cursor":${JSON.stringify(cursor)}}`;
}

export type Inbound =
  { ok: true; type: InboundType; data: unknown } | { ok: false; code: FrameErrorCode; message: string };

const INBOUND = new Set<string>(Object.values(InboundType));

/** Validates a client frame: JSON object, known `type` (≤ 50 chars), `data` ≤ 10 KB. */
export function parseInbound(text: string): Inbound {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return { ok: false, code: FrameErrorCode.BAD_JSON, message: 'frame is not valid JSON' };
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    return { ok: false, code: FrameErrorCode.BAD_FRAME, message: 'frame must be a JSON object {type, data}' };
  }
  const { type, data } = v as { type?: unknown; data?: unknown };
  if (typeof type !== 'string')
    return { ok: false, code: FrameErrorCode.BAD_FRAME, message: 'frame needs a string "type"' };
  if (type.length > INBOUND_LIMITS.maxTypeLength) {
    return {
      ok: false,
      code: FrameErrorCode.TYPE_TOO_LONG,
      message: `type is longer than ${INBOUND_LIMITS.maxTypeLength} characters`,
    };
  }
  if (data !== undefined && Buffer.byteLength(JSON.stringify(data)) > INBOUND_LIMITS.maxDataBytes) {
    return {
      ok: false,
      code: FrameErrorCode.DATA_TOO_LARGE,
      message: `data is larger than ${INBOUND_LIMITS.maxDataBytes} bytes`,
    };
  }
  if (!INBOUND.has(type))
    return {
      ok: false,
      code: FrameErrorCode.UNKNOWN_TYPE,
      message: `unknown frame type ${JSON.stringify(type.slice(0, 50))}`,
    };
  return { ok: true, type: type as InboundType, data };
}
