/**
 * A load-client process: holds up to 10,000 WebSocket connections to one system, spread over several
 * source addresses, and counts benchmark markers on receipt. The receive path never parses JSON: it
 * looks for the marker with Buffer#indexOf and stamps the shared monotonic clock only when one is there.
 */
import { SignJWT } from 'jose';
import WebSocket from 'ws';
import { nowUs, waitUntil } from '../lib/clock.ts';
import { Histogram } from '../lib/histogram.ts';
import { MARKER_KINDS, findMarker, type FoundMarker, type MarkerKind } from '../lib/marker.ts';
import { serveRpc } from '../lib/rpc.ts';
import { SIO, lastCursor, urlFor } from './protocol.ts';
import type { ClientSnapshot, ClientTarget, ConnectArgs, ReconnectArgs } from './types.ts';

const MAX_CONNECTIONS = 10_000;
const UNREAD_INITIAL = 0x55; // 'U'

class Conn {
  ws: WebSocket | undefined;
  open = false;
  ready = false;
  /** skypush: become ready only when a replayed marker arrives. */
  awaitReplay = false;
  /** skypush: the last frame that carried a cursor (read only when reconnecting). */
  cursorFrame: Buffer | undefined;
  token: string | undefined;
  closing = false;
  constructor(
    readonly userId: number,
    readonly address: string,
  ) {}
}

class KindCounter {
  count = 0;
  lastUs = 0;
  hist = new Histogram();
}

let target: ClientTarget | undefined;
let conns: Conn[] = [];
let kinds = freshKinds();
let frames = 0;
let bytes = 0;
let unexpectedCloses = 0;
let failedConnects = 0;
let lastReadyUs = 0;
const found: FoundMarker = { kind: 0, id: 0, sentUs: 0, next: 0 };
const KIND_BY_CODE = new Map(MARKER_KINDS.map((k) => [k.charCodeAt(0), k]));

function freshKinds(): Record<MarkerKind, KindCounter> {
  return { b: new KindCounter(), s: new KindCounter(), u: new KindCounter(), r: new KindCounter() };
}

function markReady(c: Conn): void {
  if (c.ready) return;
  c.ready = true;
  lastReadyUs = nowUs();
}

/** Counts the markers in a frame; returns whether a replay marker was among them. */
function countMarkers(buf: Buffer): boolean {
  let replay = false;
  let t = 0;
  for (let m = findMarker(buf, 0, found); m; m = findMarker(buf, m.next, found)) {
    const kind = KIND_BY_CODE.get(m.kind);
    if (!kind) continue;
    if (t === 0) t = nowUs();
    const k = kinds[kind];
    k.count++;
    k.lastUs = t;
    k.hist.record(t - m.sentUs);
    if (kind === 'r') replay = true;
  }
  return replay;
}

function onMessage(c: Conn, buf: Buffer): void {
  frames++;
  bytes += buf.length;
  const proto = (target as ClientTarget).proto;
  if (proto === 'sio') {
    const head = buf[0];
    if (head === SIO.MESSAGE) {
      if (buf[1] === SIO.EVENT) countMarkers(buf);
      else if (buf[1] === SIO.CONNECT) markReady(c);
    } else if (head === SIO.PING) c.ws?.send('3');
    else if (head === SIO.OPEN) c.ws?.send('40');
    return;
  }
  const replay = countMarkers(buf);
  if (proto === 'skypush') {
    // Every skypush frame but UNREAD_COUNT ({"type":"U…) carries a cursor: keep the frame, parse it later.
    if (buf[9] !== UNREAD_INITIAL) c.cursorFrame = buf;
    if (!c.awaitReplay || replay) markReady(c);
  }
}

/** Opens one connection; resolves when it is ready, or when it failed. */
function connectOne(c: Conn, t: ClientTarget, since: string | undefined, timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    c.open = false;
    c.ready = false;
    c.closing = false;
    const ws = new WebSocket(urlFor(t.proto, t.port, c.userId, since), {
      perMessageDeflate: false,
      localAddress: c.address,
      handshakeTimeout: timeoutMs,
      maxPayload: 1 << 20,
      ...(c.token !== undefined && { headers: { authorization: `Bearer ${c.token}` } }),
    });
    c.ws = ws;
    let settled = false;
    const settle = () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      failedConnects++;
      ws.terminate();
      settle();
    }, timeoutMs);
    ws.on('open', () => {
      c.open = true;
      if (t.proto === 'ws') {
        markReady(c);
        settle();
      }
    });
    ws.on('message', (data: Buffer) => {
      onMessage(c, data);
      if (c.ready) settle();
    });
    ws.on('error', () => {});
    ws.on('close', () => {
      if (c.ws !== ws) return;
      if (!c.closing && c.open) unexpectedCloses++;
      if (!c.ready) {
        failedConnects++;
        settle();
      }
      c.open = false;
      c.ready = false;
    });
  });
}

async function eachBounded<T>(items: T[], concurrency: number, fn: (x: T) => Promise<void>): Promise<void> {
  let i = 0;
  const worker = async () => {
    while (i < items.length) await fn(items[i++] as T);
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, items.length)) }, worker));
}

async function mintTokens(secret: string): Promise<void> {
  const key = new TextEncoder().encode(secret);
  const exp = Math.floor(Date.now() / 1000) + 6 * 3600;
  for (const c of conns) {
    c.token = await new SignJWT({ role: 'user' })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(String(c.userId))
      .setExpirationTime(exp)
      .sign(key);
  }
}

function snapshot(): ClientSnapshot {
  const c = process.cpuUsage();
  const k = (x: KindCounter) => ({ count: x.count, lastUs: x.lastUs, hist: x.hist.toJSON() });
  return {
    pid: process.pid,
    connections: conns.length,
    open: conns.reduce((n, x) => n + (x.open ? 1 : 0), 0),
    ready: conns.reduce((n, x) => n + (x.ready ? 1 : 0), 0),
    unexpectedCloses,
    failedConnects,
    frames,
    bytes,
    cpuUs: c.user + c.system,
    lastReadyUs,
    kinds: { b: k(kinds.b), s: k(kinds.s), u: k(kinds.u), r: k(kinds.r) },
  };
}

serveRpc({
  async connect(a: ConnectArgs) {
    if (a.users.length > MAX_CONNECTIONS)
      throw new Error(`at most ${MAX_CONNECTIONS} connections per process`);
    target = a.target;
    conns = a.users.map((u, i) => new Conn(u, a.addresses[i % a.addresses.length] as string));
    if (a.target.proto === 'skypush') await mintTokens(a.target.secret ?? '');
    const started = nowUs();
    await eachBounded(conns, a.concurrency, (c) => connectOne(c, a.target, undefined, a.timeoutMs));
    return { startedUs: started, ...snapshot() };
  },
  async reconnect(a: ReconnectArgs) {
    const t = target as ClientTarget;
    const down = conns.filter((c) => !c.open);
    for (const c of down) c.awaitReplay = a.expectReplay;
    const since = (c: Conn) => (a.resume && c.cursorFrame ? lastCursor(c.cursorFrame) : undefined);
    await eachBounded(down, a.concurrency, (c) => connectOne(c, t, since(c), a.timeoutMs));
    for (const c of conns) c.awaitReplay = false;
    return snapshot();
  },
  /** Waits until `count` markers of `kind` arrived since the last reset (or the timeout passed). */
  async waitKind(a: { kind: MarkerKind; count: number; timeoutMs: number }) {
    await waitUntil(() => kinds[a.kind].count >= a.count, a.timeoutMs, 5);
    return snapshot();
  },
  /** Waits until no connection is open (after the server went away). */
  async waitClosed(a: { timeoutMs: number }) {
    await waitUntil(() => conns.every((c) => !c.open), a.timeoutMs, 20);
    return snapshot();
  },
  reset() {
    kinds = freshKinds();
    frames = 0;
    bytes = 0;
    unexpectedCloses = 0;
    failedConnects = 0;
    return snapshot();
  },
  snapshot,
  /** Closes every connection from this side (expected closes). */
  async closeAll(a: { timeoutMs: number }) {
    for (const c of conns) {
      c.closing = true;
      c.ws?.close();
    }
    await waitUntil(() => conns.every((c) => !c.open), a.timeoutMs, 20);
    for (const c of conns) c.ws?.terminate();
    return snapshot();
  },
  /** Marks every connection as about to be closed by the server (a restart), so it is not counted. */
  expectCloses() {
    for (const c of conns) c.closing = true;
    return true;
  },
});
