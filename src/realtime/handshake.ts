/**
 * The WebSocket handshake's own headers, checked before credentials are read: ws would refuse the same
 * offers later, in plain text and after a ticket had been spent. The rules are ws 8's (RFC 6455 §4.2.1):
 * GET, a 16-byte base64 Sec-WebSocket-Key, version 13 or 8, and a sub-protocol list of unique tokens.
 */
import type { IncomingMessage } from 'node:http';
import { AppError, Errors } from '../errors.ts';

const KEY = /^[+/0-9A-Za-z]{22}==$/;
/** An HTTP token (RFC 7230 §3.2.6). */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** Why this offer is not a valid WebSocket handshake, as the error to answer; undefined when it is. */
export function handshakeProblem(req: IncomingMessage): AppError | undefined {
  if (req.method !== 'GET')
    return new AppError(Errors.METHOD_NOT_ALLOWED, 'a WebSocket handshake is a GET request', {
      headers: { Allow: 'GET' },
    });
  if (req.httpVersion === '1.1' && req.headers.host === undefined)
    return new AppError(Errors.BAD_REQUEST, 'missing Host header');
  const key = req.headers['sec-websocket-key'];
  if (key === undefined || !KEY.test(key))
    return new AppError(Errors.BAD_REQUEST, 'missing or invalid Sec-WebSocket-Key header');
  const version = req.headers['sec-websocket-version'];
  if (version !== '13' && version !== '8')
    return new AppError(Errors.BAD_REQUEST, 'missing or invalid Sec-WebSocket-Version header (use 13)', {
      headers: { 'Sec-WebSocket-Version': '13, 8' },
    });
  const protocols = req.headers['sec-websocket-protocol'];
  if (protocols !== undefined && !validProtocolList(protocols))
    return new AppError(Errors.BAD_REQUEST, 'invalid Sec-WebSocket-Protocol header');
  return undefined;
}

/** A comma-separated list of distinct tokens (how ws's subprotocol.parse reads it). */
function validProtocolList(header: string): boolean {
  const seen = new Set<string>();
  for (const part of header.split(',')) {
    const p = part.trim();
    if (!TOKEN.test(p) || seen.has(p)) return false;
    seen.add(p);
  }
  return true;
}
