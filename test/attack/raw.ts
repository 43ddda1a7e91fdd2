/**
 * Raw sockets, as an attacker uses them: HTTP requests written byte for byte, a WebSocket handshake and
 * masked frames encoded by hand (so a frame can ride in the same packet as the handshake), and a reader
 * for the server's frames.
 */
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Splits one HTTP/1.1 response off the front of `buf`; undefined while it is incomplete. */
function takeResponse(buf: Buffer): { res: RawResponse; rest: Buffer } | undefined {
  const end = buf.indexOf('\r\n\r\n');
  if (end < 0) return undefined;
  const [statusLine = '', ...lines] = buf.subarray(0, end).toString('latin1').split('\r\n');
  const headers: Record<string, string> = {};
  for (const l of lines) {
    const i = l.indexOf(':');
    headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  const length = Number(headers['content-length'] ?? 0);
  if (buf.length < end + 4 + length) return undefined;
  const body = buf.subarray(end + 4, end + 4 + length).toString('utf8');
  return {
    res: { status: Number(statusLine.split(' ')[1]), headers, body },
    rest: buf.subarray(end + 4 + length),
  };
}

/**
 * Writes `chunks` (each its own write, a few ms apart) and resolves with the first `count` responses;
 * rejects if the server closes or goes silent first.
 */
export function rawHttp(base: string, chunks: Array<string | Buffer>, count = 1): Promise<RawResponse[]> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const sock = connect(Number(port), hostname);
    let buf: Buffer = Buffer.alloc(0);
    const got: RawResponse[] = [];
    const timer = setTimeout(() => done(new Error(`no answer; got ${JSON.stringify(got)}`)), 10_000);
    const done = (err?: Error) => {
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(got);
    };
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      for (let r = takeResponse(buf); r; r = takeResponse(buf)) {
        got.push(r.res);
        buf = r.rest;
        if (got.length === count) return done();
      }
    });
    sock.on('error', (e) => done(e));
    sock.on('close', () => done(new Error(`closed after ${got.length} of ${count} responses`)));
    void (async () => {
      for (const c of chunks) {
        sock.write(c);
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
  });
}

/** A client → server frame: FIN set, masked, as RFC 6455 requires of clients. */
export function maskedFrame(payload: Buffer | string, opcode = 1): Buffer {
  const data = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const mask = randomBytes(4);
  const len = data.length;
  const header =
    len < 126
      ? Buffer.from([0x80 | opcode, 0x80 | len])
      : len < 65_536
        ? Buffer.from([0x80 | opcode, 0x80 | 126, len >> 8, len & 0xff])
        : Buffer.concat([Buffer.from([0x80 | opcode, 0x80 | 127]), bigLength(len)]);
  const masked = Buffer.alloc(len);
  for (let i = 0; i < len; i++) masked[i] = (data[i] as number) ^ (mask[i % 4] as number);
  return Buffer.concat([header, mask, masked]);
}

function bigLength(len: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(len));
  return b;
}

export interface ServerFrame {
  opcode: number;
  payload: Buffer;
}

/** A WebSocket opened by hand: the frames the server sent, and a way to write raw bytes. */
export interface RawWs {
  socket: Socket;
  status: number;
  frames: ServerFrame[];
  /** Text frames parsed as JSON. */
  json(): Array<{ type: string; data: Record<string, unknown> }>;
  /** The close frame's code, once it came; undefined before. */
  closeCode(): number | undefined;
  /** Resolves when a frame matching `pred` has arrived. */
  waitFor(pred: (f: ServerFrame) => boolean, timeoutMs?: number): Promise<ServerFrame>;
}

/** The handshake for `path`, followed in the same write by `after` (frames sent before the 101 arrives). */
export function openRaw(base: string, path: string, after: Buffer = Buffer.alloc(0)): Promise<RawWs> {
  const { hostname, port, host } = new URL(base);
  const head =
    `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
    `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\n\r\n`;
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    socket.on('error', () => {});
    socket.write(Buffer.concat([Buffer.from(head, 'latin1'), after]));
    let buf: Buffer = Buffer.alloc(0);
    let status = 0;
    const frames: ServerFrame[] = [];
    const waiters = new Set<() => void>();
    const ws: RawWs = {
      socket,
      status: 0,
      frames,
      json: () =>
        frames
          .filter((f) => f.opcode === 1)
          .map((f) => JSON.parse(f.payload.toString()) as { type: string; data: Record<string, unknown> }),
      closeCode: () => {
        const c = frames.find((f) => f.opcode === 8);
        return c && c.payload.length >= 2 ? c.payload.readUInt16BE(0) : undefined;
      },
      waitFor(pred, timeoutMs = 5000) {
        return new Promise((res, rej) => {
          const check = () => {
            const f = frames.find(pred);
            if (!f) return false;
            waiters.delete(check);
            clearTimeout(t);
            res(f);
            return true;
          };
          const t = setTimeout(() => {
            waiters.delete(check);
            rej(new Error(`frame not received; got ${frames.map((f) => f.opcode).join(',')}`));
          }, timeoutMs);
          if (!check()) waiters.add(check);
        });
      },
    };
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (status === 0) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        status = Number(buf.subarray(0, end).toString('latin1').split(' ')[1]);
        ws.status = status;
        if (status !== 101) return reject(new Error(`handshake refused: ${buf.toString()}`));
        buf = buf.subarray(end + 4);
        resolve(ws);
      }
      buf = readFrames(buf, frames);
      for (const w of [...waiters]) w();
    });
  });
}

/** Moves every complete (unmasked, server → client) frame from `buf` into `out`; returns the rest. */
function readFrames(buf: Buffer, out: ServerFrame[]): Buffer {
  for (;;) {
    if (buf.length < 2) return buf;
    const opcode = (buf[0] as number) & 0x0f;
    let len = (buf[1] as number) & 0x7f;
    let off = 2;
    if (len === 126) {
      if (buf.length < 4) return buf;
      len = buf.readUInt16BE(2);
      off = 4;
    } else if (len === 127) {
      if (buf.length < 10) return buf;
      len = Number(buf.readBigUInt64BE(2));
      off = 10;
    }
    if (buf.length < off + len) return buf;
    out.push({ opcode, payload: Buffer.from(buf.subarray(off, off + len)) });
    buf = buf.subarray(off + len);
  }
}

/** Packet 1 of issue #11: an upgrade whose request target no URL parser accepts. */
export const PACKET_1 =
  'GET //a:99999/ HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n' +
  'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n';

/** Packet 2 of issue #11: a ~10 KB HEARTBEAT whose data nests `levels` arrays deep. */
export function deepHeartbeat(levels = 5000): string {
  return `{"type":"HEARTBEAT","data":${'['.repeat(levels)}${']'.repeat(levels)}}`;
}
