/**
 * An AbortSignal that fires when the client hangs up before its answer is written, so work still waiting
 * for its turn in a queue (a password hash, a wide send) is dropped instead of run for nobody. The
 * response's 'close' is the one to watch: the request's own 'close' fires as soon as its body is read.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { AppError, Errors } from '../errors.ts';

export function clientGone(request: FastifyRequest, reply: FastifyReply, what: string): AbortSignal {
  const ac = new AbortController();
  const gone = () =>
    ac.abort(new AppError(Errors.BAD_REQUEST, `client closed the connection before ${what}`));
  if (request.raw.socket.destroyed) gone();
  else reply.raw.once('close', () => reply.raw.writableFinished || gone());
  return ac.signal;
}
