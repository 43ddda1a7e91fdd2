/**
 * The peers' HTTP side, shared so it costs them the same: `POST /broadcast {title, content}` to every
 * connection, `POST /send {userId, title, content}` to one user's connections, `GET /health`. No auth,
 * no storage: the peers are floors, not products.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

export interface PeerActions {
  broadcast(data: { title: string; content: string }): number;
  send(userId: number, data: { title: string; content: string }): number;
}

const OK_HEAD = { 'content-type': 'application/json' };

export function peerHttpHandler(actions: PeerActions) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    if (req.method === 'GET' && req.url === '/health') {
      res.writeHead(200, OK_HEAD).end('{"ok":true}');
      return;
    }
    if (req.method !== 'POST' || (req.url !== '/broadcast' && req.url !== '/send')) {
      res.writeHead(404, OK_HEAD).end('{"ok":false}');
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let body: { userId?: number; title?: string; content?: string };
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as typeof body;
      } catch {
        res.writeHead(400, OK_HEAD).end('{"ok":false}');
        return;
      }
      const data = { title: String(body.title ?? ''), content: String(body.content ?? '') };
      const recipients =
        req.url === '/broadcast' ? actions.broadcast(data) : actions.send(Number(body.userId), data);
      res.writeHead(200, OK_HEAD).end(`{"ok":true,"recipients":${recipients}}`);
    });
  };
}

/** Settings every peer reads from its environment. */
export function peerEnv(): { port: number; heartbeatMs: number; cork: boolean } {
  return {
    port: Number(process.env['BENCH_PORT'] ?? 0),
    heartbeatMs: Number(process.env['BENCH_HEARTBEAT_MS'] ?? 30_000),
    cork: process.env['BENCH_CORK'] === '1',
  };
}

/** Exits on SIGTERM/SIGINT (the reconnect storm restarts the process). */
export function exitOnSignal(): void {
  for (const s of ['SIGTERM', 'SIGINT'] as const) process.on(s, () => process.exit(0));
}
