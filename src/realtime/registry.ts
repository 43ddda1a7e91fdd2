/**
 * This node's connections: by id and by user (two maps kept in step by register/unregister only), the
 * per-node and per-user caps with slots reserved during an upgrade, and who is online here.
 */
import type { Config } from '../config.ts';
import type { Metrics } from '../metrics.ts';
import type { Connection } from './connection.ts';
import type { Presence } from './presence.ts';

export type Reservation =
  { ok: true; release: () => void } | { ok: false; reason: 'node-full' | 'user-full' };

export interface RegistryDeps {
  realtime: Pick<Config['realtime'], 'maxConnections' | 'maxConnectionsPerUser'>;
  metrics: Pick<Metrics, 'wsConnections' | 'wsDisconnects'>;
  /** Told when a user's first connection on this node opens or the last one closes (cluster presence). */
  onPresenceChange?: ((userId: number, online: boolean) => void) | undefined;
}

const NONE: ReadonlySet<Connection> = new Set();

export class Registry implements Presence {
  private readonly connections = new Map<string, Connection>();
  private readonly byUser = new Map<number, Set<Connection>>();
  private readonly reservedByUser = new Map<number, number>();
  private reserved = 0;

  constructor(private readonly deps: RegistryDeps) {}

  get size(): number {
    return this.connections.size;
  }

  /** Every connection, in registration order (a Map iterator: it survives deletions). */
  all(): IterableIterator<Connection> {
    return this.connections.values();
  }

  /** This user's connections on this node. */
  ofUser(userId: number): ReadonlySet<Connection> {
    return this.byUser.get(userId) ?? NONE;
  }

  /** Users with at least one connection here. */
  userIds(): IterableIterator<number> {
    return this.byUser.keys();
  }

  get userCount(): number {
    return this.byUser.size;
  }

  /** Holds a slot for a connection about to upgrade; checks the per-node and per-user caps. */
  reserve(userId: number): Reservation {
    const { maxConnections, maxConnectionsPerUser } = this.deps.realtime;
    if (this.connections.size + this.reserved >= maxConnections) return { ok: false, reason: 'node-full' };
    const mine = (this.byUser.get(userId)?.size ?? 0) + (this.reservedByUser.get(userId) ?? 0);
    if (mine >= maxConnectionsPerUser) return { ok: false, reason: 'user-full' };
    this.reserved++;
    this.reservedByUser.set(userId, (this.reservedByUser.get(userId) ?? 0) + 1);
    let released = false;
    return {
      ok: true,
      release: () => {
        if (released) return;
        released = true;
        this.reserved--;
        const n = (this.reservedByUser.get(userId) ?? 1) - 1;
        if (n > 0) this.reservedByUser.set(userId, n);
        else this.reservedByUser.delete(userId);
      },
    };
  }

  register(c: Connection): void {
    this.connections.set(c.id, c);
    let set = this.byUser.get(c.userId);
    if (!set) {
      this.byUser.set(c.userId, (set = new Set()));
      this.deps.onPresenceChange?.(c.userId, true);
    }
    set.add(c);
    this.deps.metrics.wsConnections.set(this.connections.size);
  }

  /**
   * Removes exactly this connection (its socket closed with `code`); a user's other connections stay
   * (seed defects 2 and 3).
   */
  unregister(c: Connection, code: number, now: number): void {
    if (!this.connections.delete(c.id)) return;
    c.beginClose(undefined, now);
    const set = this.byUser.get(c.userId);
    set?.delete(c);
    if (set?.size === 0) {
      this.byUser.delete(c.userId);
      this.deps.onPresenceChange?.(c.userId, false);
    }
    this.deps.metrics.wsConnections.set(this.connections.size);
    // A peer that never echoed our close frame shows up as 1006: count the code we sent instead.
    this.deps.metrics.wsDisconnects.inc({ code: String(c.closeCode ?? code) });
  }

  // ---- presence (this node's answer; the Redis presence answers for the cluster) ----

  async onlineUserIds(): Promise<number[]> {
    return [...this.byUser.keys()];
  }

  async isOnline(userId: number): Promise<boolean> {
    return this.byUser.has(userId);
  }

  /** Local user ids, synchronously (for the cluster presence heartbeat). */
  localUserIds(): number[] {
    return [...this.byUser.keys()];
  }
}
