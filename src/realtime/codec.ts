/**
 * Frame encoding. Durable events are spliced from the data JSON stored in the log, so a fan-out
 * serialises nothing per recipient: one string per event, written to every socket that gets it.
 */
import { FrameErrorCode, INBOUND_LIMITS, InboundType, type FrameType } from '../protocol.ts';
import { scanJson } from './json-shape.ts';
import { frameText } from './ws-internals.ts';

/**
 * A fan-out frame, encoded once for all its recipients: `wire` is the complete unmasked WebSocket text
 * frame, written as is to sockets without per-message deflate; `text` is its UTF-8 payload, for ws.send.
 */
export class WireFrame {
  readonly wire: Buffer;
  readonly text: Buffer;
  constructor(json: string) {
    const text = Buffer.from(json);
    this.wire = frameText(text);
    this.text = this.wire.subarray(this.wire.length - text.length);
  }

  get length(): number {
    return this.text.length;
  }
}

/** Encodes a non-durable frame (timestamp: unix seconds of `nowMs`, the wall clock). */
export function encodeFrame(
  type: FrameType,
  data: unknown,
  cursor: string | undefined,
  nowMs: number,
): string {
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

const refuse = (code: FrameErrorCode, message: string): Inbound => ({ ok: false, code, message });

/**
 * Validates a client frame. Before parsing, from the raw bytes: nesting ≤ maxDepth and `data` ≤
 * maxDataBytes as sent (never measured by re-serialising: that recursion is what a deep frame
 * overflows). After: a JSON object with a known string `type` (≤ 50 chars) and, for the heartbeat
 * types, `data` that is an object, null or absent (the seed's clients send {"ping"/"pong": …}).
 */
export function parseInbound(raw: Buffer | string): Inbound {
  const bytes = typeof raw === 'string' ? Buffer.from(raw) : raw;
  const shape = scanJson(bytes, INBOUND_LIMITS.maxDepth);
  if (shape.tooDeep)
    return refuse(FrameErrorCode.TOO_DEEP, `frame nests deeper than ${INBOUND_LIMITS.maxDepth} levels`);
  if (shape.dataBytes > INBOUND_LIMITS.maxDataBytes)
    return refuse(FrameErrorCode.DATA_TOO_LARGE, `data is larger than ${INBOUND_LIMITS.maxDataBytes} bytes`);
  let v: unknown;
  try {
    v = JSON.parse(typeof raw === 'string' ? raw : raw.toString('utf8'));
  } catch {
    return refuse(FrameErrorCode.BAD_JSON, 'frame is not valid JSON');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    return refuse(FrameErrorCode.BAD_FRAME, 'frame must be a JSON object {type, data}');
  const { type, data } = v as { type?: unknown; data?: unknown };
  if (typeof type !== 'string') return refuse(FrameErrorCode.BAD_FRAME, 'frame needs a string "type"');
  if (type.length > INBOUND_LIMITS.maxTypeLength)
    return refuse(
      FrameErrorCode.TYPE_TOO_LONG,
      `type is longer than ${INBOUND_LIMITS.maxTypeLength} characters`,
    );
  if (!INBOUND.has(type))
    return refuse(FrameErrorCode.UNKNOWN_TYPE, `unknown frame type ${JSON.stringify(type.slice(0, 50))}`);
  // Every inbound type so far is a heartbeat: its data is an object, or null/absent.
  if (data !== undefined && data !== null && (typeof data !== 'object' || Array.isArray(data)))
    return refuse(FrameErrorCode.BAD_DATA, `${type} data must be a JSON object`);
  return { ok: true, type: type as InboundType, data };
}
