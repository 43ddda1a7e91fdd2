/** A recording WebSocket test client: keeps every frame, waits for frames matching a predicate. */
import WebSocket from 'ws';

export interface Frame {
  type: string;
  data: Record<string, unknown> & { messages?: Frame[] };
  timestamp: number;
  cursor?: string;
}

export interface TestSocket {
  ws: WebSocket;
  frames: Frame[];
  /** Resolves with the first frame (already received or future) matching `pred`. */
  waitFor(pred: (f: Frame) => boolean, timeoutMs?: number): Promise<Frame>;
  /** Resolves with the close code and reason. */
  closed: Promise<{ code: number; reason: string }>;
  send(frame: unknown): void;
  close(): Promise<void>;
}

export interface ConnectOptions {
  token?: string;
  ticket?: string;
  since?: string;
  /** How to pass a token: query (seed style), subprotocol or header. */
  via?: 'query' | 'subprotocol' | 'header';
  origin?: string;
  autoPong?: boolean;
}

/** Opens a socket; rejects with the HTTP status when the upgrade is refused. */
export function connect(wsUrl: string, o: ConnectOptions = {}): Promise<TestSocket> {
  const url = new URL(wsUrl);
  const via = o.via ?? 'query';
  if (o.token && via === 'query') url.searchParams.set('token', o.token);
  if (o.ticket) url.searchParams.set('ticket', o.ticket);
  if (o.since) url.searchParams.set('since', o.since);
  const protocols = o.token && via === 'subprotocol' ? ['skypush.v1', o.token] : undefined;
  const ws = new WebSocket(url, protocols, {
    headers: {
      ...(o.token && via === 'header' && { authorization: `Bearer ${o.token}` }),
      ...(o.origin && { origin: o.origin }),
    },
    autoPong: o.autoPong ?? true,
  });
  const frames: Frame[] = [];
  const waiters: Array<{ pred: (f: Frame) => boolean; resolve: (f: Frame) => void }> = [];
  ws.on('message', (raw) => {
    const f = JSON.parse(raw.toString()) as Frame;
    frames.push(f);
    for (const w of [...waiters]) {
      if (w.pred(f)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(f);
      }
    }
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })),
  );
  return new Promise((resolve, reject) => {
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () =>
        reject(
          Object.assign(new Error(`upgrade refused: ${res.statusCode} ${body}`), {
            status: res.statusCode,
            body,
            headers: res.headers,
          }),
        ),
      );
    });
    ws.once('error', (e) => reject(e));
    ws.once('open', () =>
      resolve({
        ws,
        frames,
        closed,
        waitFor(pred, timeoutMs = 5000) {
          const hit = frames.find(pred);
          if (hit) return Promise.resolve(hit);
          return new Promise((res, rej) => {
            const t = setTimeout(
              () => rej(new Error(`timed out waiting for frame; got ${frames.map((f) => f.type).join(',')}`)),
              timeoutMs,
            );
            waiters.push({ pred, resolve: (f) => (clearTimeout(t), res(f)) });
          });
        },
        send(frame) {
          ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
        },
        async close() {
          if (ws.readyState === WebSocket.CLOSED) return;
          ws.close();
          await closed;
        },
      }),
    );
  });
}

/** Durable frames in arrival order, with MESSAGE_BATCH unpacked. */
export function durable(frames: Frame[]): Frame[] {
  const out: Frame[] = [];
  for (const f of frames) {
    if (f.type === 'MESSAGE_BATCH') out.push(...(f.data.messages ?? []));
    else if (f.cursor && f.type !== 'HEARTBEAT' && f.type !== 'RESYNC') out.push(f);
  }
  return out;
}
