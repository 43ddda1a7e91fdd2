/**
 * The pino logger. Secrets never reach a log line: Authorization, Cookie and Sec-WebSocket-Protocol
 * headers are censored, and `token`/`ticket` query parameters are replaced in every logged URL.
 */
import { pino, type DestinationStream, type Logger } from 'pino';
import type { LogLevel } from './config.ts';

const SECRET_PARAMS = new Set(['token', 'ticket', 'access_token']);

/**
 * The URL with secret query parameters replaced by `[REDACTED]`. Names are compared decoded and
 * case-insensitively, so `?%74oken=` or `?TOKEN=` is caught as well.
 */
export function redactUrl(url: string): string {
  const q = url.indexOf('?');
  if (q < 0) return url;
  const hash = url.indexOf('#', q);
  const query = url.slice(q + 1, hash < 0 ? undefined : hash);
  const redacted = query
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=');
      const rawName = eq < 0 ? pair : pair.slice(0, eq);
      let name = rawName;
      try {
        name = decodeURIComponent(rawName.replace(/\+/g, ' '));
      } catch {
        // undecodable: keep the raw name for the comparison
      }
      return SECRET_PARAMS.has(name.trim().toLowerCase()) ? `${rawName}=[REDACTED]` : pair;
    })
    .join('&');
  return `${url.slice(0, q + 1)}${redacted}${hash < 0 ? '' : url.slice(hash)}`;
}

interface LoggableRequest {
  method?: string;
  url?: string;
  ip?: string;
  id?: string | number;
  headers?: Record<string, unknown>;
}

export function createLogger(level: LogLevel, stream?: DestinationStream): Logger {
  return pino(
    {
      level,
      redact: {
        paths: [
          'req.headers.authorization',
          'req.headers.cookie',
          'req.headers["sec-websocket-protocol"]',
          'headers.authorization',
          'headers["sec-websocket-protocol"]',
          'password',
          '*.password',
          'accessToken',
          '*.accessToken',
        ],
        censor: '[REDACTED]',
      },
      serializers: {
        req(req: LoggableRequest) {
          return { id: req.id, method: req.method, url: redactUrl(req.url ?? ''), remoteAddress: req.ip };
        },
      },
    },
    stream,
  );
}

/** The message of anything thrown or rejected, for a log line (a rejection need not be an Error). */
export const messageOf = (err: unknown): string => (err instanceof Error ? err.message : String(err));
