/**
 * The sender process: issues the HTTP requests that make the system under test deliver — one at a time
 * (broadcast bursts, a send to a long target list), as an open-loop stream at a fixed rate, or from
 * closed-loop senders (closed-loop.ts). Each request carries a marker stamped with its *scheduled* time,
 * so a late request (queued behind a slow server) is charged to the latency.
 */
import { Agent, request } from 'node:http';
import { nowUs, sleep } from '../lib/clock.ts';
import { Histogram } from '../lib/histogram.ts';
import { markerContent, type MarkerKind } from '../lib/marker.ts';
import { serveRpc } from '../lib/rpc.ts';
import { closedLoop, type ClosedLoopArgs } from './closed-loop.ts';
import type { DriverTarget, Endpoint, StreamArgs, StreamResult } from './types.ts';

// Idle pooled sockets are dropped after 2 s, well before a server's keep-alive timeout (Node's default
// is 5 s): reusing a socket the server is closing at that moment fails with ECONNRESET.
const newAgent = () => new Agent({ keepAlive: true, maxSockets: 128, timeout: 2_000 });
let agent = newAgent();
let target: DriverTarget | undefined;

interface Req {
  path: string;
  body: string;
}

/** skypush's targets of a send: one user, a list, or everyone ('toall'). */
function targetsJson(endpoint: Endpoint, to: number | readonly number[]): string {
  if (endpoint === 'toall') return '"targetType":"all"';
  return `"targetType":"user","targetIds":[${typeof to === 'number' ? to : to.join(',')}]`;
}

function build(
  endpoint: Endpoint,
  kind: MarkerKind,
  id: number,
  dueUs: number,
  to: number | readonly number[] = 0,
): Req {
  const t = target as DriverTarget;
  const content = markerContent(kind, id, dueUs, t.contentLength, t.filler);
  const title = JSON.stringify(`bench ${kind}${id}`);
  if (t.kind === 'peer') {
    const userId = typeof to === 'number' ? to : (to[0] ?? 0);
    return endpoint === 'broadcast'
      ? { path: '/broadcast', body: `{"title":${title},"content":"${content}"}` }
      : { path: '/send', body: `{"userId":${userId},"title":${title},"content":"${content}"}` };
  }
  return endpoint === 'broadcast'
    ? { path: '/api/v1/ws/broadcast', body: `{"data":{"title":${title},"content":"${content}"}}` }
    : {
        path: '/api/v1/messages/send',
        body: `{"title":${title},"content":"${content}",${targetsJson(endpoint, to)}}`,
      };
}

function post(r: Req, port?: number): Promise<{ status: number; body: string }> {
  const t = target as DriverTarget;
  return new Promise((resolve) => {
    const req = request(
      {
        agent,
        host: '127.0.0.1',
        port: port ?? t.port,
        method: 'POST',
        path: r.path,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(r.body),
          ...(t.token !== undefined && { authorization: `Bearer ${t.token}` }),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      },
    );
    req.on('error', (e) => resolve({ status: 0, body: e.message }));
    req.end(r.body);
  });
}

function shuffled<T>(xs: readonly T[]): T[] {
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [a[i], a[j]] = [a[j] as T, a[i] as T];
  }
  return a;
}

async function stream(a: StreamArgs): Promise<StreamResult> {
  const interval = 1e6 / a.rate;
  const start = nowUs() + 5_000;
  const firstId = a.firstId ?? 0;
  const order = a.endpoint === 'send' ? shuffled(a.users ?? []) : [];
  if (a.endpoint === 'send' && order.length === 0) throw new Error('send stream needs users');
  const http = new Histogram();
  const perUser: Record<number, number> = {};
  const errors: string[] = [];
  let ok = 0;
  let failed = 0;
  const inFlight: Array<Promise<void>> = [];
  let i = 0;
  // Fire everything that is due, sleep ~1 ms, repeat: bounded by `count`.
  while (i < a.count) {
    const now = nowUs();
    for (; i < a.count && start + i * interval <= now; i++) {
      const due = start + i * interval;
      const userId = order.length > 0 ? (order[i % order.length] as number) : 0;
      if (userId) perUser[userId] = (perUser[userId] ?? 0) + 1;
      inFlight.push(
        post(build(a.endpoint, a.kind, firstId + i, due, userId)).then((res) => {
          http.record(nowUs() - due);
          if (res.status === 200) ok++;
          else {
            failed++;
            if (errors.length < 5) errors.push(`${res.status} ${res.body.slice(0, 200)}`);
          }
        }),
      );
    }
    if (i < a.count) await sleep(Math.max(0, Math.min(1, (start + i * interval - nowUs()) / 1000)));
  }
  await Promise.all(inFlight);
  return {
    sent: a.count,
    ok,
    failed,
    firstDueUs: start,
    lastDueUs: start + (a.count - 1) * interval,
    ...(a.endpoint === 'send' && { perUser }),
    http: http.toJSON(),
    errors,
  };
}

serveRpc({
  configure(t: DriverTarget) {
    target = t;
    // A fresh pool: after a server restart the kept-alive sockets are dead.
    agent.destroy();
    agent = newAgent();
    return true;
  },
  /** One request now (to `userId`, or to every id of `targets`); resolves with its due time once answered. */
  async one(a: { endpoint: Endpoint; kind: MarkerKind; id: number; userId?: number; targets?: number[] }) {
    const due = nowUs();
    const res = await post(build(a.endpoint, a.kind, a.id, due, a.targets ?? a.userId));
    if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${res.body.slice(0, 300)}`);
    return { dueUs: due, doneUs: nowUs() };
  },
  stream,
  /** Closed-loop senders (send, await, repeat) over kept-alive connections: closed-loop.ts. */
  closedLoop: (a: ClosedLoopArgs) =>
    closedLoop(a, (port, kind, id, to) => post(build('send', kind, id, nowUs(), to), port)),
});
