/**
 * A load-client process: holds up to 10,000 WebSocket connections to one system, spread over several
 * source addresses, and counts benchmark markers on receipt. The receive path never parses JSON: it
 * looks for the marker with Buffer#indexOf and stamps the shared monotonic clock only when one is there.
 */
import { SignJWT } from 'jose';
import WebSocket from 'ws';
import { nowUs, sleep, waitUntil } from '../lib/clock.ts';
import { Histogram } from '../lib/histogram.ts';
import { MARKER_KINDS, findMarker, type FoundMarker, type MarkerKind } from '../lib/marker.ts';
import { serveRpc } from '../lib/rpc.ts';
import { SIO, lastCursor, urlFor } from './protocol.ts';
import { Tally } from './tally.ts';
import type { ClientSnapshot, ClientTarget, ConnectArgs, ReconnectArgs } from './types.ts';

const MAX_CONNECTIONS = 10_000;
const UNREAD_INITIAL = 0x55; // 'U'
/** A frame longer than this keeps only its tail for the cursor (a replay batch is hundreds of KB). */
const KEEP_WHOLE_FRAME = 4096;
const CURSOR_TAIL = 512;

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
    readonly index: number,
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
/** Why connections failed, by error code or message (at most FAILURE_KINDS kinds kept). */
let failures: Record<string, number> = {};
const FAILURE_KINDS = 20;
let lastReadyUs = 0;
/** skypush UNREAD_COUNT frames since the last reset, and when the last one arrived. */
let unread = { count: 0, lastUs: 0 };
/** Per-connection exactly-once check of one marker kind, when a scenario asked for it. */
let tally: Tally | undefined;
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
function countMarkers(c: Conn, buf: Buffer): boolean {
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
    if (tally?.kind === kind) tally.record(c.index, m.id, t);
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
      if (buf[1] === SIO.EVENT) countMarkers(c, buf);
      else if (buf[1] === SIO.CONNECT) markReady(c);
    } else if (head === SIO.PING) c.ws?.send('3');
    else if (head === SIO.OPEN) c.ws?.send('40');
    return;
  }
  const replay = countMarkers(c, buf);
  if (proto === 'skypush') {
    // Every skypush frame but UNREAD_COUNT ({"type":"U…) carries a cursor: keep the frame, parse it later
    // (a long one only by its tail, where the cursor is, so a thousand replay batches are not retained).
    if (buf[9] !== UNREAD_INITIAL)
      c.cursorFrame =
        buf.length <= KEEP_WHOLE_FRAME ? buf : Buffer.from(buf.subarray(buf.length - CURSOR_TAIL));
    else {
      unread.count++;
      unread.lastUs = nowUs();
    }
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
    ws.on('error', (e: NodeJS.ErrnoException) => {
      const kind = e.code ?? e.message.slice(0, 60);
      if (Object.hasOwn(failures, kind) || Object.keys(failures).length < FAILURE_KINDS)
        failures[kind] = (failures[kind] ?? 0) + 1;
    });
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
    failures: { ...failures },
    frames,
    bytes,
    cpuUs: c.user + c.system,
    lastReadyUs,
    unread: { ...unread },
    kinds: { b: k(kinds.b), s: k(kinds.s), u: k(kinds.u), r: k(kinds.r) },
  };
}

serveRpc({
  async connect(a: ConnectArgs) {
    if (a.users.length > MAX_CONNECTIONS)
      throw new Error(`at most ${MAX_CONNECTIONS} connections per process`);
    target = a.target;
    conns = a.users.map((u, i) => new Conn(i, u, a.addresses[i % a.addresses.length] as string));
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
    // As a real client would: try again after a random pause, from the cursor it holds by then.
    const deadline = Date.now() + (a.retryForMs ?? 0);
    for (let left = down.filter((c) => !c.ready); left.length > 0 && Date.now() < deadline;) {
      await sleep(200 + Math.random() * 800);
      await eachBounded(left, a.concurrency, (c) => connectOne(c, t, since(c), a.timeoutMs));
      left = left.filter((c) => !c.ready);
    }
    for (const c of conns) c.awaitReplay = false;
    return snapshot();
  },
  /**
   * Waits until `count` markers of `kind` (and `unread` UNREAD_COUNT frames, if given) arrived since the
   * last reset, or the timeout passed.
   */
  async waitKind(a: { kind: MarkerKind; count: number; unread?: number; timeoutMs: number }) {
    const enough = () => kinds[a.kind].count >= a.count && unread.count >= (a.unread ?? 0);
    await waitUntil(enough, a.timeoutMs, 5);
    return snapshot();
  },
  /** Waits until no connection is open (after the server went away). */
  async waitClosed(a: { timeoutMs: number }) {
    await waitUntil(() => conns.every((c) => !c.open), a.timeoutMs, 20);
    return snapshot();
  },
  reset() {
    kinds = freshKinds();
    unread = { count: 0, lastUs: 0 };
    frames = 0;
    bytes = 0;
    unexpectedCloses = 0;
    failedConnects = 0;
    failures = {};
    return snapshot();
  },
  snapshot,
  /** Starts counting, per connection, each id 0 … ids−1 of `kind` (replacing any earlier tally). */
  startTally(a: { kind: MarkerKind; ids: number }) {
    tally = new Tally(a.kind, a.ids, conns.length);
    return true;
  },
  /** Waits until every connection has every id of the tally (or the timeout), then reports. */
  async waitTally(a: { timeoutMs: number }) {
    const t = tally;
    if (!t) throw new Error('no tally started');
    await waitUntil(() => t.done, a.timeoutMs, 5);
    return t.report();
  },
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
