/**
 * Writes frames to sockets: corking (one write per socket per turn), pre-framed fan-out writes, the
 * byte-bounded send queue with its slow-consumer close, and waiting for a socket to drain. The ws
 * privates this needs are in ws-internals.ts, used from here only.
 *
 * The bound (realtime.sendQueueBytes) counts only bytes left unsent by earlier turns: what this turn
 * corked is not the client's fault, and one frame larger than the bound still goes to a socket with
 * nothing queued (else that client would be closed, reconnect, and be closed again for ever).
 */
import type { Clock } from '../clock.ts';
import type { Config } from '../config.ts';
import type { Metrics } from '../metrics.ts';
import { CloseCode } from '../protocol.ts';
import type { WireFrame } from './codec.ts';
import type { Connection } from './connection.ts';
import type { Containment } from './containment.ts';
import { rawSocketOf, writeRawFrame } from './ws-internals.ts';

/** Pre-encoded frames are Buffers; they still go out as text frames. */
const TEXT = { binary: false } as const;
const OPEN = 1; // WebSocket.OPEN
/** How often drained() re-checks a socket that may never emit 'drain'. */
const DRAIN_POLL_MS = 50;

export interface SocketWriterDeps {
  /** sendQueueBytes: the bound; heartbeatTimeoutMs: how long drained() waits for a stalled socket. */
  realtime: Pick<Config['realtime'], 'sendQueueBytes' | 'perMessageDeflate' | 'heartbeatTimeoutMs'>;
  metrics: Pick<Metrics, 'framesDropped' | 'slowConsumers'>;
  clock: Clock;
  containment: Containment;
  /** Told after a turn that uncorked `n` sockets (the tail reader batches after large flushes). */
  onFlush?: (n: number) => void;
}

export class SocketWriter {
  /** Connections corked in this turn (each knows the bytes it held unsent before: corkedBacklog). */
  private corked: Connection[] = [];
  private readonly uncorkAll = (): void => this.flush();
  /** Without per-message deflate, fan-out frames are written to sockets pre-framed. */
  private readonly rawFrames: boolean;
  private readonly sendQueueBytes: number;

  constructor(private readonly deps: SocketWriterDeps) {
    this.rawFrames = !deps.realtime.perMessageDeflate;
    this.sendQueueBytes = deps.realtime.sendQueueBytes;
  }

  /**
   * Writes a frame; returns true when it was written. Writes to one socket within this tick coalesce
   * into one syscall (cork until the next tick; `coalesce: false` when the caller knows nothing else
   * follows, so the write need not wait for the rest of the fan-out).
   */
  send(c: Connection, frame: string | WireFrame, coalesce = true): boolean {
    if (c.state === 'closing') {
      this.deps.metrics.framesDropped.inc();
      return false;
    }
    const ws = c.socket;
    const backlog = c.corkedBacklog >= 0 ? c.corkedBacklog : ws.bufferedAmount;
    if (backlog > 0 && backlog + frame.length > this.sendQueueBytes) {
      this.slowConsumer(c);
      this.deps.metrics.framesDropped.inc();
      return false;
    }
    // A failing write closes this connection alone; the fan-out goes on to the others.
    try {
      if (coalesce && c.corkedBacklog < 0) this.cork(c, backlog);
      if (typeof frame === 'string') ws.send(frame);
      // The frame built once goes out as is: nothing per socket but the write (as Socket.IO broadcasts do).
      else if (this.rawFrames && ws.readyState === OPEN) writeRawFrame(ws, frame.wire);
      else ws.send(frame.text, TEXT);
    } catch (err) {
      this.deps.containment.failed(c, err);
      return false;
    }
    return true;
  }

  /**
   * `c`'s socket is held corked by its upgrade (the 101, CONNECTED and the first page leave in one
   * write) until `release`: what it holds was not left unsent by an earlier turn, so it counts as this
   * turn's writes, not as a backlog — or a first page of one event larger than the bound would close the
   * client at every attempt to resume. Returns the release to call instead.
   */
  heldUntil(c: Connection, release: () => void): () => void {
    c.corked(0);
    return () => {
      c.uncorked();
      release();
    };
  }

  /** Closes `c` as a slow consumer (4009), once. */
  slowConsumer(c: Connection): void {
    if (c.state === 'closing') return;
    this.deps.metrics.slowConsumers.inc();
    c.close(CloseCode.SLOW_CONSUMER, this.deps.clock.monotonic());
  }

  /**
   * Resolves true once the socket's unsent bytes are at most `below`; false if it closes first, or when
   * it stays above for stallMs: then it is closed as a slow consumer, unless `closeOnStall` is false (a
   * live connection whose later frames keep it above the mark is not stuck: the send queue's bound and
   * the heartbeat judge it).
   */
  drained(c: Connection, below: number, closeOnStall = true): Promise<boolean> {
    if (c.state === 'closing') return Promise.resolve(false);
    if (c.socket.bufferedAmount <= below) return Promise.resolve(true);
    const socket = rawSocketOf(c.socket);
    const { clock, containment } = this.deps;
    const stallMs = this.deps.realtime.heartbeatTimeoutMs;
    return new Promise((resolve) => {
      const started = clock.monotonic();
      let done = false;
      let poll: NodeJS.Timeout | undefined;
      const check = () => {
        try {
          if (c.state === 'closing') finish(false);
          else if (c.socket.bufferedAmount <= below) finish(true);
          else if (clock.monotonic() - started > stallMs) {
            if (closeOnStall) this.slowConsumer(c);
            finish(false);
          }
        } catch (err) {
          containment.failed(c, err);
          finish(false);
        }
      };
      // Bytes corked in this turn leave when it ends: look again right after, which is where a small write
      // drains. 'drain' is the prompt signal for a large one; the slow poll covers the rest (buffers that
      // never crossed the high-water mark).
      const soon = setImmediate(() => {
        check();
        if (!done) poll = setInterval(check, DRAIN_POLL_MS);
      });
      socket?.on('drain', check);
      c.socket.once('close', check);
      const finish = (ok: boolean) => {
        if (done) return;
        done = true;
        clearImmediate(soon);
        clearInterval(poll);
        socket?.off('drain', check);
        c.socket.off('close', check);
        resolve(ok);
      };
    });
  }

  private cork(c: Connection, backlog: number): void {
    const socket = rawSocketOf(c.socket);
    if (!socket) return;
    if (this.corked.length === 0) process.nextTick(this.uncorkAll);
    c.corked(backlog);
    this.corked.push(c);
    socket.cork();
  }

  /** Uncorks every socket corked this turn (run once per turn, from process.nextTick). */
  private flush(): void {
    const corked = this.corked;
    this.corked = [];
    for (const c of corked) {
      c.uncorked();
      // Inline rather than containment.served(): no closure per socket on the fan-out path.
      try {
        rawSocketOf(c.socket)?.uncork();
      } catch (err) {
        this.deps.containment.failed(c, err);
      }
    }
    this.deps.onFlush?.(corked.length);
  }
}
