/**
 * GET /api/v1/ws/messages: everything that happens before the WebSocket handshake. Credentials, Origin,
 * cursor syntax and connection caps are all checked first; a refusal is a plain HTTP response with the
 * envelope (401/403/400/429/503), so no socket is ever upgraded for a caller who may not have one.
 */
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { WebSocketServer } from 'ws';
import type { AuthService, Principal } from '../auth/auth.service.ts';
import type { Config } from '../config.ts';
import { AppError, Errors } from '../errors.ts';
import { handshakeProblem } from './handshake.ts';
import { redactUrl } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import { SUBPROTOCOL } from '../protocol.ts';
import type { Hub } from './hub.ts';
import { offersWebSocket, serveAsPlainRequest } from './plain-upgrade.ts';

export const WS_PATH = '/api/v1/ws/messages';

export interface UpgradeDeps {
  server: Server;
  hub: Hub;
  auth: AuthService;
  realtime: Config['realtime'];
  metrics: Metrics;
  logger: Logger;
  /** Throws AppError INVALID_CURSOR for a malformed `since`. */
  checkCursor: (cursor: string) => void;
  isShuttingDown: () => boolean;
  /** Wall clock for ticket expiry; the hub's clock when absent. */
  now?: () => number;
}

/** The path and query of an origin-form request target (`/path?query`). */
export interface Target {
  pathname: string;
  searchParams: URLSearchParams;
}

/**
 * Splits the request target without a URL parser, so it cannot throw: `new URL('//a:99999/', base)`
 * reads `a:99999` as a host and throws. Only origin-form is accepted here: undefined for anything that
 * does not start with exactly one `/` (absolute-form, authority-form, `*`, `//host…`).
 */
export function parseTarget(raw: string | undefined): Target | undefined {
  if (raw === undefined || !raw.startsWith('/') || raw.startsWith('//')) return undefined;
  const hash = raw.indexOf('#');
  const target = hash < 0 ? raw : raw.slice(0, hash);
  const q = target.indexOf('?');
  return {
    pathname: q < 0 ? target : target.slice(0, q),
    searchParams: new URLSearchParams(q < 0 ? '' : target.slice(q + 1)),
  };
}

/** Where the caller's credentials came from; the first present one wins, in this order. */
export function credentialsOf(
  req: IncomingMessage,
  url: Pick<Target, 'searchParams'>,
): { kind: 'ticket' | 'token'; value: string } | undefined {
  const ticket = url.searchParams.get('ticket');
  if (ticket) return { kind: 'ticket', value: ticket };
  const offered = (req.headers['sec-websocket-protocol'] ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (offered.includes(SUBPROTOCOL)) {
    const token = offered.find((p) => p !== SUBPROTOCOL);
    if (token) return { kind: 'token', value: token };
  }
  const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
  if (m?.[1]) return { kind: 'token', value: m[1] };
  const token = url.searchParams.get('token');
  if (token) return { kind: 'token', value: token };
  return undefined;
}

/** Same-origin (Origin's host equals Host) is always allowed; others only when listed; `*` allows all. */
export function originAllowed(
  origin: string | undefined,
  host: string | undefined,
  allowed: readonly string[],
): boolean {
  if (origin === undefined) return true; // not a browser: Origin protects browsers from cross-site use
  if (allowed.includes('*') || allowed.includes(origin)) return true;
  try {
    return host !== undefined && new URL(origin).host === host;
  } catch {
    return false;
  }
}

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

function writeRefusal(socket: Duplex, e: AppError): void {
  const body = JSON.stringify({ code: e.code, message: e.message, data: e.data });
  const headers = [
    `HTTP/1.1 ${e.status} ${STATUS_TEXT[e.status] ?? 'Error'}`,
    'Content-Type: application/json; charset=utf-8',
    `Content-Length: ${Buffer.byteLength(body)}`,
    'Connection: close',
    ...Object.entries(e.headers).map(([k, v]) => `${k}: ${v}`),
  ];
  if (socket.writable) socket.end(`${headers.join('\r\n')}\r\n\r\n${body}`);
  else socket.destroy();
}

/** Answers `e` on `socket` and closes it; if even that fails, the socket is destroyed. */
function refuse(socket: Duplex, e: AppError): void {
  try {
    writeRefusal(socket, e);
  } catch {
    socket.destroy();
  }
}

function destroySocket(this: Duplex): void {
  this.destroy();
}

/** What every step of an upgrade works with: the endpoint's deps and the ws server that does handshakes. */
interface Endpoint {
  deps: UpgradeDeps;
  wss: WebSocketServer;
}

async function authenticate(ep: Endpoint, req: IncomingMessage, url: Target): Promise<Principal> {
  const { deps } = ep;
  const cred = credentialsOf(req, url);
  if (!cred)
    throw new AppError(
      Errors.UNAUTHENTICATED,
      'missing credentials: use ?ticket=, the skypush.v1 sub-protocol, a Bearer header or ?token=',
    );
  if (cred.kind === 'token') return deps.auth.authenticate(cred.value);
  const principal = await deps.auth.redeemTicket(cred.value);
  // A ticket lives 30 s but carries its token's expiry, which may have passed meanwhile.
  if (principal.exp * 1000 <= (deps.now ? deps.now() : deps.hub.clock.now()))
    throw new AppError(Errors.TOKEN_EXPIRED);
  return principal;
}

/** Refuses this socket alone: an AppError as is; anything else is a bug, logged and answered 500. */
function fail(ep: Endpoint, req: IncomingMessage, socket: Duplex, e: unknown): void {
  const err = e instanceof AppError ? e : new AppError(Errors.INTERNAL);
  if (!(e instanceof AppError))
    ep.deps.logger.error({ err: e, url: redactUrl(String(req.url)) }, 'upgrade failed');
  ep.deps.metrics.wsRejects.inc({ status: String(err.status) });
  refuse(socket, err);
}

function onUpgrade(ep: Endpoint, req: IncomingMessage, socket: Duplex, head: Buffer): void {
  const { deps } = ep;
  // Not a WebSocket offer (`Upgrade: h2c` from curl --http2): an ordinary request for Fastify.
  if (!offersWebSocket(req)) return serveAsPlainRequest(deps.server, req, socket, head);
  // A shared function, not a closure: a closure would keep this scope (req, its headers, url, head)
  // alive for as long as the socket lives, ~1.5 KB per idle connection.
  socket.on('error', destroySocket);
  const url = parseTarget(req.url);
  if (url === undefined)
    return fail(ep, req, socket, new AppError(Errors.BAD_REQUEST, 'malformed request target'));
  if (url.pathname !== WS_PATH)
    return fail(ep, req, socket, new AppError(Errors.NOT_FOUND, 'no WebSocket endpoint here'));
  const problem = handshakeProblem(req);
  if (problem) return fail(ep, req, socket, problem);
  if (deps.isShuttingDown())
    return fail(
      ep,
      req,
      socket,
      new AppError(Errors.SHUTTING_DOWN, undefined, { headers: { 'Retry-After': '5' } }),
    );
  if (!originAllowed(req.headers.origin, req.headers.host, deps.realtime.allowedOrigins))
    return fail(ep, req, socket, new AppError(Errors.ORIGIN_NOT_ALLOWED));

  const since = url.searchParams.get('since') ?? undefined;
  admit(ep, req, socket, head, url, since).catch((e: unknown) => fail(ep, req, socket, e));
}

/** Cursor, credentials, shutdown and caps, then the handshake. Rejects with what refuses the socket. */
async function admit(
  ep: Endpoint,
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  url: Target,
  since: string | undefined,
): Promise<void> {
  const { deps } = ep;
  const { hub, logger } = deps;
  if (since !== undefined) deps.checkCursor(since);
  // Before the user row is read: the hub closes the socket if the user is disabled after this.
  const authStartedAt = hub.clock.monotonic();
  const principal = await authenticate(ep, req, url);
  if (deps.isShuttingDown())
    throw new AppError(Errors.SHUTTING_DOWN, undefined, { headers: { 'Retry-After': '5' } });
  const slot = hub.reserve(principal.userId);
  if (!slot.ok) {
    throw slot.reason === 'node-full'
      ? new AppError(Errors.SERVER_FULL, undefined, { headers: { 'Retry-After': '10' } })
      : new AppError(Errors.TOO_MANY_CONNECTIONS_USER, undefined, { headers: { 'Retry-After': '30' } });
  }
  // handleUpgrade answers a bad handshake itself without calling back: free the slot on close too.
  socket.once('close', slot.release);
  if (socket.destroyed) return slot.release();
  // The 101, CONNECTED, a short replay and the first unread count in one write: the socket holds its
  // writes until attach lets them go (once live, or before it waits for a replay page to leave).
  socket.cork();
  let held = true;
  const release = () => {
    if (!held) return;
    held = false;
    try {
      socket.uncork();
    } catch {
      socket.destroy();
    }
  };
  ep.wss.handleUpgrade(req, socket, head, (ws) => {
    slot.release();
    // ws has its own listeners on the socket from now on.
    socket.removeListener('close', slot.release);
    socket.removeListener('error', destroySocket);
    hub.attach(ws, principal, since, authStartedAt, release).catch((err: unknown) => {
      // attach closes the connection itself on a failure it catches; this is for anything it missed.
      logger.error({ err }, 'connection setup failed');
      ws.terminate();
    });
  });
}

/** Attaches the WebSocket endpoint to `server`; returns the ws server (closed by the app on shutdown). */
export function attachWebSocket(deps: UpgradeDeps): WebSocketServer {
  const { realtime } = deps;
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: realtime.maxPayload,
    perMessageDeflate: realtime.perMessageDeflate,
    clientTracking: false,
    // Select our sub-protocol; the token offered beside it is never echoed back.
    handleProtocols: (protocols) => (protocols.has(SUBPROTOCOL) ? SUBPROTOCOL : false),
  });
  const ep: Endpoint = { deps, wss };

  // Anything ws still refuses in the handshake (an unacceptable Sec-WebSocket-Extensions offer) is
  // answered with the envelope too, instead of ws's plain text.
  wss.on('wsClientError', (err: Error, socket: Duplex, req: IncomingMessage) =>
    fail(ep, req, socket, new AppError(Errors.BAD_REQUEST, `invalid WebSocket handshake: ${err.message}`)),
  );

  // Everything the listener does is guarded: whatever a request triggers refuses that socket alone
  // (400/404/… with the envelope, or 500 and a log line for a bug) and never reaches the process.
  deps.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    try {
      onUpgrade(ep, req, socket, head);
    } catch (e) {
      try {
        fail(ep, req, socket, e);
      } catch {
        socket.destroy();
      }
    }
  });
  return wss;
}
