/**
 * The pino logger. Secrets never reach a log line: Authorization, Cookie and Sec-WebSocket-Protocol
 * headers are censored, and `token`/`ticket` query parameters are replaced in every logged URL.
 */
import { pino, type DestinationStream, type Logger } from 'pino';
import type { LogLevel } from './config.ts';

const SECRET_PARAMS = /([?&](?:token|ticket|access_token)=)[^&#]*/gi;

/** The URL with secret query parameters replaced by `[REDACTED]`. */
export function redactUrl(url: string): string {
  return url.replace(SECRET_PARAMS, '$1[REDACTED]');
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
