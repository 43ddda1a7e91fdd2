/**
 * The one timer for all connections: heartbeats due, silent connections (4010), expired credentials
 * (4001), closes the peer never finished (terminated after CLOSE_GRACE_MS), and forgetting remembered
 * disabled users. Every connection is visited once per period, a slice per tick, so heartbeats leave
 * in small bursts (10k connections at a 30 s interval: ~30 per 100 ms tick, not ~330 at once every
 * second).
 */
import type { Clock } from '../clock.ts';
import type { Config } from '../config.ts';
import { CloseCode, FrameType } from '../protocol.ts';
import { WireFrame, encodeFrame } from './codec.ts';
import type { Connection } from './connection.ts';
import type { Containment } from './containment.ts';
import type { DisabledUsers } from './disabled-users.ts';
import type { Registry } from './registry.ts';
import type { SocketWriter } from './socket-writer.ts';

export const CLOSE_GRACE_MS = 2000;
const MAX_SLICES = 10;

/** The sweep's period (each connection visited once per period) and the ticks it is cut into. */
export function sweepSchedule(heartbeatIntervalMs: number): { periodMs: number; slices: number } {
  const periodMs = Math.max(20, Math.min(1000, Math.floor(heartbeatIntervalMs / 4)));
  return { periodMs, slices: Math.max(1, Math.min(MAX_SLICES, Math.floor(periodMs / 20))) };
}

export interface SweeperDeps {
  registry: Registry;
  writer: SocketWriter;
  disabled: DisabledUsers;
  containment: Containment;
  realtime: Pick<Config['realtime'], 'heartbeatIntervalMs' | 'heartbeatTimeoutMs'>;
  clock: Clock;
  tailSeq: () => number;
  cursor: (seq: number) => string;
}

export class Sweeper {
  private readonly slices: number;
  private readonly tickMs: number;
  private timer: NodeJS.Timeout | undefined;
  /** Where the round through the connections stands (Map iterators survive deletions). */
  private round: Iterator<Connection> | undefined;

  constructor(private readonly deps: SweeperDeps) {
    const { periodMs, slices } = sweepSchedule(deps.realtime.heartbeatIntervalMs);
    this.slices = slices;
    this.tickMs = Math.floor(periodMs / slices);
  }

  start(): void {
    this.timer = setInterval(() => this.deps.containment.guarded('sweep', () => this.tick()), this.tickMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** One tick: the next slice of the round (a round ends at the end of the registry). */
  tick(): void {
    const { registry, containment } = this.deps;
    this.deps.disabled.expire();
    // The common heartbeat is framed once per tick and shared by every connection caught up to the tail.
    const shared: { heartbeat?: WireFrame } = {};
    const budget = Math.ceil(registry.size / this.slices);
    for (let i = 0; i < budget; i++) {
      this.round ??= registry.all();
      const next = this.round.next();
      if (next.done) {
        this.round = undefined; // the round is over; the next tick starts another
        break;
      }
      // One connection's failure closes it alone (1011); the round goes on to the others.
      try {
        this.visit(next.value, shared);
      } catch (err) {
        containment.failed(next.value, err);
      }
    }
  }

  private visit(c: Connection, shared: { heartbeat?: WireFrame }): void {
    const { clock, realtime } = this.deps;
    const mono = clock.monotonic();
    if (c.state === 'closing') {
      if (mono - c.closingSince > CLOSE_GRACE_MS) c.socket.terminate();
      return;
    }
    if (mono - c.lastSeen > realtime.heartbeatTimeoutMs) return c.close(CloseCode.HEARTBEAT_TIMEOUT, mono);
    const now = clock.now();
    if (c.exp * 1000 <= now) return c.close(CloseCode.TOKEN_EXPIRED, mono);
    if (!c.heartbeatDue(mono)) return;
    c.heartbeatSent(mono, realtime.heartbeatIntervalMs);
    // The heartbeat carries the position the connection is caught up to, so idle clients' cursors
    // advance too.
    const tail = this.deps.tailSeq();
    const frame =
      c.lastSeq > tail
        ? encodeFrame(FrameType.HEARTBEAT, { ping: 'pong' }, this.deps.cursor(c.lastSeq), now)
        : (shared.heartbeat ??= new WireFrame(
            encodeFrame(FrameType.HEARTBEAT, { ping: 'pong' }, this.deps.cursor(tail), now),
          ));
    this.deps.writer.send(c, frame);
    c.socket.ping();
  }
}
