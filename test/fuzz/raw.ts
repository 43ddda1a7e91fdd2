/**
 * Bytes on a real socket, for the fuzz suite: one raw exchange over node:net, a tolerant parser for the
 * HTTP responses that came back, and a WebSocket frame encoder/decoder that can also lie (reserved bits
 * and opcodes, no mask, a declared length that differs from the payload).
 */
import { connect } from 'node:net';

export interface Exchange {
  /** Everything the server wrote. */
  data: Buffer;
  /** The server closed the connection (rather than our timeout ending it). */
  closedByPeer: boolean;
  /** A socket error (ECONNREFUSED means the server is gone; ECONNRESET is an ordinary refusal). */
  error?: string;
}

export interface ExchangeOptions {
  /** Half-close after writing, so an incomplete request ends at once instead of waiting for a timeout. */
  halfClose?: boolean;
  /** Give up (and destroy the socket) after this long in total. */
  timeoutMs: number;
  /** Called with everything received so far; returns bytes to write next (e.g. frames after the 101). */
  onData?: (received: Buffer) => Buffer | undefined;
  /** Give up once nothing has been written or received for this long (the server is waiting for more). */
  idleMs?: number;
  /** Stop once this returns true for what was received. */
  done?: (received: Buffer) => boolean;
}

/** Connects to 127.0.0.1:port, writes `chunks` in order, collects the answer until close or timeout. */
export function exchange(port: number, chunks: Buffer[], o: ExchangeOptions): Promise<Exchange> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    const received: Buffer[] = [];
    let error: string | undefined;
    let settled = false;
    const finish = (closedByPeer: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(idle);
      socket.destroy();
      resolve({ data: Buffer.concat(received), closedByPeer, ...(error !== undefined && { error }) });
    };
    const timer = setTimeout(() => finish(false), o.timeoutMs);
    let idle: NodeJS.Timeout | undefined;
    const active = () => {
      if (o.idleMs === undefined) return;
      clearTimeout(idle);
      idle = setTimeout(() => finish(false), o.idleMs);
    };
    socket.on('error', (e: NodeJS.ErrnoException) => {
      error = e.code ?? e.message;
    });
    socket.on('close', () => finish(true));
    socket.on('data', (chunk: Buffer) => {
      active();
      received.push(chunk);
      const all = Buffer.concat(received);
      const more = o.onData?.(all);
      if (more && socket.writable) socket.write(more);
      if (o.done?.(all)) finish(false);
    });
    socket.once('connect', () => {
      active();
      for (const c of chunks) socket.write(c);
      if (o.halfClose) socket.end();
    });
  });
}

export interface ParsedResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/**
 * Splits the bytes into HTTP responses (Content-Length, chunked, or "until close"). Stops at the first
 * thing that is not a response head, or after a 101 (what follows is WebSocket frames).
 */
export function parseResponses(data: Buffer, firstIsHead = false): ParsedResponse[] {
  const out: ParsedResponse[] = [];
  let at = 0;
  while (at < data.length) {
    const end = data.indexOf('\r\n\r\n', at);
    if (end < 0) break;
    const lines = data.subarray(at, end).toString('latin1').split('\r\n');
    const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '');
    if (!m) break;
    const headers: Record<string, string> = {};
    for (const l of lines.slice(1)) {
      const i = l.indexOf(':');
      if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
    }
    const status = Number(m[1]);
    let next = end + 4;
    let body: Buffer;
    // 1xx (100 Continue before the real answer), 204 and 304 have no body.
    if (
      status < 200 ||
      status === 204 ||
      status === 304 ||
      (firstIsHead && !out.some((r) => r.status >= 200))
    )
      body = Buffer.alloc(0);
    else if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
      const parts: Buffer[] = [];
      for (;;) {
        const nl = data.indexOf('\r\n', next);
        const size = nl < 0 ? NaN : parseInt(data.subarray(next, nl).toString('latin1'), 16);
        if (!Number.isFinite(size)) break;
        parts.push(data.subarray(nl + 2, nl + 2 + size));
        next = nl + 2 + size + 2;
        if (size === 0) break;
      }
      body = Buffer.concat(parts);
    } else if (headers['content-length'] !== undefined) {
      const len = Number(headers['content-length']);
      body = data.subarray(next, next + len);
      next += len;
    } else {
      body = data.subarray(next);
      next = data.length;
    }
    out.push({ status, headers, body });
    if (status === 101) break;
    at = next;
  }
  return out;
}

/** True when `body` is the `{code, message}` envelope. */
export function isEnvelope(body: Buffer): boolean {
  try {
    const v = JSON.parse(body.toString('utf8')) as { code?: unknown; message?: unknown };
    return typeof v === 'object' && v !== null && typeof v.code === 'number' && typeof v.message === 'string';
  } catch {
    return false;
  }
}

export interface FrameSpec {
  fin: boolean;
  /** RSV1..3 as a 3-bit number. */
  rsv: number;
  opcode: number;
  mask: boolean;
  payload: Buffer;
  /** A length to declare instead of the payload's own (a lie), or undefined. */
  declaredLength?: number;
}

/** Encodes one client frame exactly as specified, lies included. */
export function encodeFrame(f: FrameSpec): Buffer {
  const len = f.declaredLength ?? f.payload.length;
  const head: number[] = [(f.fin ? 0x80 : 0) | ((f.rsv & 7) << 4) | (f.opcode & 0xf)];
  const maskBit = f.mask ? 0x80 : 0;
  if (len < 126) head.push(maskBit | len);
  else if (len < 65536) head.push(maskBit | 126, len >> 8, len & 0xff);
  else {
    head.push(maskBit | 127);
    const big = BigInt(len);
    for (let i = 7; i >= 0; i--) head.push(Number((big >> BigInt(i * 8)) & 0xffn));
  }
  if (!f.mask) return Buffer.concat([Buffer.from(head), f.payload]);
  const key = Buffer.from([0x37, 0xfa, 0x21, 0x3d]);
  const body = Buffer.from(f.payload);
  for (let i = 0; i < body.length; i++) body[i] = (body[i] as number) ^ (key[i & 3] as number);
  return Buffer.concat([Buffer.from(head), key, body]);
}

/** A masked, final text frame: what a well-behaved client sends. */
export const textFrame = (text: string | Buffer): Buffer =>
  encodeFrame({ fin: true, rsv: 0, opcode: 1, mask: true, payload: Buffer.from(text) });

/** A masked close frame with `code`. */
export function closeFrame(code = 1000): Buffer {
  const p = Buffer.alloc(2);
  p.writeUInt16BE(code);
  return encodeFrame({ fin: true, rsv: 0, opcode: 8, mask: true, payload: p });
}

export interface ServerFrame {
  opcode: number;
  payload: Buffer;
}

/** Decodes the server's (unmasked) frames; stops at an incomplete one. */
export function decodeFrames(data: Buffer): ServerFrame[] {
  const out: ServerFrame[] = [];
  let at = 0;
  while (at + 2 <= data.length) {
    const b1 = data[at + 1] as number;
    let len = b1 & 0x7f;
    let p = at + 2;
    if (len === 126) {
      if (p + 2 > data.length) break;
      len = data.readUInt16BE(p);
      p += 2;
    } else if (len === 127) {
      if (p + 8 > data.length) break;
      len = Number(data.readBigUInt64BE(p));
      p += 8;
    }
    if (b1 & 0x80) p += 4;
    if (p + len > data.length) break;
    out.push({ opcode: (data[at] as number) & 0xf, payload: data.subarray(p, p + len) });
    at = p + len;
  }
  return out;
}

/** The close code of the first close frame, if any. */
export function closeCodeOf(frames: ServerFrame[]): number | undefined {
  const c = frames.find((f) => f.opcode === 8);
  return c && c.payload.length >= 2 ? c.payload.readUInt16BE(0) : undefined;
}

/** A short, printable rendering of raw bytes: long runs folded, non-printables escaped. */
export function showBytes(b: Buffer, max = 1500): string {
  const s = b
    .toString('latin1')
    .replace(
      /(.{1,8}?)\1{7,}/gs,
      (run, unit: string) => `⟨${JSON.stringify(unit)}×${run.length / unit.length}⟩`,
    );
  const esc = JSON.stringify(s);
  return esc.length > max ? `${esc.slice(0, max)}… (${b.length} bytes)` : `${esc} (${b.length} bytes)`;
}

/** Frames as specified (unmasked payloads), one per line, for a failure message. */
export function describeFrames(frames: FrameSpec[]): string {
  return frames
    .map(
      (f) =>
        `frame op=${f.opcode} fin=${f.fin} rsv=${f.rsv} mask=${f.mask}` +
        `${f.declaredLength !== undefined ? ` declaredLength=${f.declaredLength}` : ''} payload=${showBytes(f.payload, 600)}`,
    )
    .join('\n');
}
