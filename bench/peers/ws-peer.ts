/**
 * Peer (a): a bare `ws` server — the floor. Each broadcast is serialised and framed once
 * (`Sender.frame`, as Socket.IO does for its broadcasts) and the same bytes are written to every socket:
 * one write syscall per delivery. With BENCH_CORK=1 it corks each socket on its first write in an
 * event-loop turn and uncorks them all in setImmediate, so frames bound for one socket within a turn
 * leave in one syscall (the coalescing floor). Heartbeat: one timer, pings spread over the interval.
 */
import { createServer } from 'node:http';
import * as wsModule from 'ws';
import { WebSocketServer, type WebSocket } from 'ws';
import { exitOnSignal, peerEnv, peerHttpHandler } from './peer-http.ts';

interface Peer {
  ws: WebSocket;
  socket: { cork(): void; uncork(): void };
  sender: { sendFrame(list: Buffer[]): void };
  userId: number;
  alive: boolean;
  nextPingAt: number;
}

type FrameFn = (data: Buffer, options: Record<string, unknown>) => Buffer[];
// `Sender` is exported by ws at runtime but not in @types/ws.
const frameOf = (wsModule as unknown as { Sender: { frame: FrameFn } }).Sender.frame;

const { port, heartbeatMs, cork } = peerEnv();
const peers = new Set<Peer>();
const byUser = new Map<number, Set<Peer>>();
const corked: Peer[] = [];

/** Serialises and frames once; the returned buffer is written as is to every recipient. */
function frame(type: string, data: unknown): Buffer {
  const json = JSON.stringify({ type, data, timestamp: Math.floor(Date.now() / 1000) });
  const opts = { fin: true, opcode: 1, mask: false, readOnly: true, rsv1: false };
  return Buffer.concat(frameOf(Buffer.from(json), opts));
}

function write(p: Peer, bytes: Buffer): void {
  if (cork && corked.push(p) === 1) setImmediate(uncorkAll);
  if (cork) p.socket.cork();
  p.sender.sendFrame([bytes]);
}

function uncorkAll(): void {
  for (const p of corked) p.socket.uncork();
  corked.length = 0;
}

const http = createServer(
  peerHttpHandler({
    broadcast(data) {
      const bytes = frame('SYSTEM_NOTIFY', data);
      for (const p of peers) write(p, bytes);
      return peers.size;
    },
    send(userId, data) {
      const set = byUser.get(userId);
      if (!set) return 0;
      const bytes = frame('NEW_MESSAGE', data);
      for (const p of set) write(p, bytes);
      return set.size;
    },
  }),
);

const wss = new WebSocketServer({
  server: http,
  perMessageDeflate: false,
  clientTracking: false,
  maxPayload: 65536,
});
wss.on('connection', (ws, req) => {
  const userId = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('uid'));
  const internals = ws as unknown as { _socket: Peer['socket']; _sender: Peer['sender'] };
  const p: Peer = {
    ws,
    socket: internals._socket,
    sender: internals._sender,
    userId,
    alive: true,
    nextPingAt: Date.now() + Math.random() * heartbeatMs,
  };
  peers.add(p);
  let set = byUser.get(userId);
  if (!set) byUser.set(userId, (set = new Set()));
  set.add(p);
  ws.on('pong', () => {
    p.alive = true;
  });
  ws.on('error', () => {});
  ws.on('close', () => {
    peers.delete(p);
    set.delete(p);
    if (set.size === 0) byUser.delete(userId);
  });
});

// One timer: ping whoever is due, terminate whoever did not answer the previous ping.
setInterval(
  () => {
    const now = Date.now();
    for (const p of peers) {
      if (now < p.nextPingAt) continue;
      if (!p.alive) {
        p.ws.terminate();
        continue;
      }
      p.alive = false;
      p.nextPingAt = now + heartbeatMs;
      p.ws.ping();
    }
  },
  Math.max(50, Math.min(1000, heartbeatMs / 4)),
);

exitOnSignal();
http.listen(port, '127.0.0.1');
