/**
 * Failure containment (STYLE 19): an error met while serving one connection is logged with its id
 * (never its credentials) and closes that connection alone with 1011; a throw in a timer's or the
 * bus's callback is logged and the next call runs as usual; a promise nobody awaits has its rejection
 * logged. Every part of the hub reports through this one object.
 */
import type { Logger } from 'pino';
import type { Clock } from '../clock.ts';
import { CloseCode } from '../protocol.ts';
import type { Connection } from './connection.ts';

export class Containment {
  constructor(
    private readonly logger: Logger,
    private readonly clock: Clock,
  ) {}

  /** Runs `fn` on behalf of connection `c`: a throw is logged and closes `c` alone, with 1011. */
  served(c: Connection, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.failed(c, err);
    }
  }

  /** A bug met while serving `c`: logged, and `c` closes with 1011. */
  failed(c: Connection, err: unknown, what = 'connection handler failed'): void {
    try {
      this.logger.error({ err, connectionId: c.id, userId: c.userId }, what);
      c.close(CloseCode.INTERNAL_ERROR, this.clock.monotonic());
    } catch {
      c.socket.terminate();
    }
  }

  /** Runs a timer's or the bus's callback: a throw is logged, and the next call runs as usual. */
  guarded(what: string, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.logger.error({ err }, `${what} failed`);
    }
  }

  /** A promise nobody awaits: a rejection is logged, never left unhandled. */
  background(p: Promise<unknown>, what: string): void {
    p.catch((err: unknown) => this.logger.error({ err }, `${what} failed`));
  }
}
