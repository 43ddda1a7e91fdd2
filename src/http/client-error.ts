/**
 * Answers errors Node raises before a request exists (its 'clientError': unparsable request lines or
 * headers, a bad Content-Length, Content-Length with chunked encoding, headers too large or too slow) in
 * the `{code,message,data}` envelope, instead of Fastify's own shape. Passed as Fastify's
 * `clientErrorHandler` option. There is no request object here: the response is written to the socket
 * raw, then the connection is closed. It never throws, and it never logs what the client sent (the raw
 * packet may carry tokens).
 */
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { Errors, type ErrorSpec } from '../errors.ts';

/** What a client sees for each class of error; anything else the parser refuses is a 400. */
function classify(code: string | undefined): { spec: ErrorSpec; message: string } {
  switch (code) {
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return { spec: Errors.REQUEST_TIMEOUT, message: Errors.REQUEST_TIMEOUT.message };
    case 'HPE_HEADER_OVERFLOW':
      return { spec: Errors.HEADERS_TOO_LARGE, message: Errors.HEADERS_TOO_LARGE.message };
    case 'HPE_INVALID_CONTENT_LENGTH':
      return { spec: Errors.BAD_REQUEST, message: 'invalid Content-Length header' };
    case 'HPE_UNEXPECTED_CONTENT_LENGTH':
      return { spec: Errors.BAD_REQUEST, message: 'Content-Length together with Transfer-Encoding' };
    case 'HPE_INVALID_TRANSFER_ENCODING':
      return { spec: Errors.BAD_REQUEST, message: 'invalid Transfer-Encoding header' };
    default:
      return { spec: Errors.BAD_REQUEST, message: 'malformed HTTP request' };
  }
}

/** The raw HTTP response for a client error, envelope body included. */
export function clientErrorResponse(code: string | undefined): string {
  const { spec, message } = classify(code);
  const body = JSON.stringify({ code: spec.code, message, data: null });
  return (
    `HTTP/1.1 ${spec.status} ${STATUS_CODES[spec.status] ?? 'Error'}\r\n` +
    'Content-Type: application/json; charset=utf-8\r\n' +
    `Content-Length: ${Buffer.byteLength(body)}\r\n` +
    'Connection: close\r\n\r\n' +
    body
  );
}

type InFlight = Socket & { _httpMessage?: { headersSent?: boolean } | null };

export function clientErrorHandler(this: FastifyInstance, err: Error & { code?: string }, socket: Socket) {
  try {
    // A reset connection has no one to answer.
    if (err.code === 'ECONNRESET' || socket.destroyed) return;
    this.log.debug({ code: err.code }, 'client error');
    // As Node does: answer only if nothing of a response to this socket has been sent yet.
    const inFlight = (socket as InFlight)._httpMessage;
    if (socket.writable && !inFlight?.headersSent) {
      socket.end(clientErrorResponse(err.code));
      // A client that does not read its answer must not keep the socket open.
      const timer = setTimeout(() => socket.destroy(), 1000).unref();
      socket.once('close', () => clearTimeout(timer));
      return;
    }
    socket.destroy();
  } catch {
    socket.destroy();
  }
}

/**
 * Node's 'checkExpectation' (an `Expect` other than 100-continue): answered 417 with the envelope
 * instead of Node's empty body, and the connection closed.
 */
export function expectationFailed(_req: IncomingMessage, res: ServerResponse): void {
  try {
    const spec = Errors.EXPECTATION_FAILED;
    const body = JSON.stringify({ code: spec.code, message: spec.message, data: null });
    res.writeHead(spec.status, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(body),
      connection: 'close',
    });
    res.end(body);
  } catch {
    res.destroy();
  }
}
