/**
 * Requests that offer an upgrade to something other than WebSocket (`Upgrade: h2c` from `curl --http2`,
 * or any other token) are ordinary HTTP requests that the client would like to upgrade: the server may
 * ignore the offer (RFC 9110 §7.8). Node 20 hands every request with `Connection: upgrade` to the
 * 'upgrade' listener once one exists and has no per-request switch (`shouldUpgradeCallback` arrived in
 * later Node versions), so this module gives such a request back to the HTTP server: it rebuilds the
 * request head without the upgrade offer, puts it back in front of the bytes already read, and lets
 * Node's HTTP parser start on the socket again as on a new connection. Bodies (Content-Length or
 * chunked) and pipelined requests follow in the socket's own bytes and are parsed as usual; the
 * connection stays keep-alive.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';

/** True when `Upgrade` offers WebSocket (ws then checks the rest of the handshake). */
export function offersWebSocket(req: IncomingMessage): boolean {
  return (req.headers.upgrade ?? '').split(',').some((token) => token.trim().toLowerCase() === 'websocket');
}

/** Headers that only make sense for the upgrade offer (hop-by-hop). */
const OFFER_HEADERS = new Set(['upgrade', 'http2-settings']);

/** The request's head as it was sent, minus the upgrade offer. Header bytes are latin1 in Node. */
export function headWithoutUpgrade(req: IncomingMessage): Buffer {
  const lines = [`${req.method ?? 'GET'} ${req.url ?? '/'} HTTP/${req.httpVersion}`];
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i] as string;
    const value = raw[i + 1] as string;
    const lower = name.toLowerCase();
    if (OFFER_HEADERS.has(lower)) continue;
    if (lower === 'connection') {
      const rest = value
        .split(',')
        .map((t) => t.trim())
        .filter((t) => t !== '' && !OFFER_HEADERS.has(t.toLowerCase()));
      if (rest.length > 0) lines.push(`${name}: ${rest.join(', ')}`);
      continue;
    }
    lines.push(`${name}: ${value}`);
  }
  return Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1');
}

/**
 * Serves `req` as a plain HTTP request on `server`. A response to an earlier request on the same
 * socket may still be on its way (pipelining): the socket is handed back once that one has finished,
 * else Node would lose track of the order of responses.
 */
export function serveAsPlainRequest(
  server: Server,
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
): void {
  socket.unshift(head);
  socket.unshift(headWithoutUpgrade(req));
  const handBack = () => {
    if (socket.destroyed) return;
    // An earlier response may have armed the keep-alive idle timeout; the new parser arms its own.
    (socket as Duplex & { setTimeout?: (ms: number) => void }).setTimeout?.(0);
    server.emit('connection', socket);
  };
  // `_httpMessage` is a Node private (not ws): the response Node's HTTP server still has on this socket.
  const pending = (socket as Duplex & { _httpMessage?: ServerResponse | null })._httpMessage;
  if (!pending || pending.writableFinished) return handBack();
  // Node took its own 'error' listener off the socket when it emitted 'upgrade': until the handover, a
  // reset by the peer would be an 'error' event nobody listens to, which takes the process down.
  socket.on('error', destroySocket);
  pending.once('finish', () => {
    socket.off('error', destroySocket);
    handBack();
  });
}

function destroySocket(this: Duplex): void {
  this.destroy();
}
