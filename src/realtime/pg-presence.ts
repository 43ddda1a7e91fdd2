/**
 * Cluster-wide presence in PostgreSQL, for a cluster without Redis. Each node holds a lease row in
 * `presence_nodes` (renewed every ttl/3, running ttl ahead, in database time so nodes' clocks do not
 * matter) and one `presence_users` row per user it holds connections for. A node that dies stops
 * renewing: its users are ignored as soon as its lease has run out, and housekeeping deletes its rows
 * (prunePresence, the users by cascade).
 *
 * Writes are bounded: first-connect/last-close changes are gathered for FLUSH_MS and written in one
 * statement; past MAX_PENDING distinct users waiting, or after a failed write, the node's whole set is
 * rewritten instead (one statement, a diff against the table). This node's own users are answered from
 * its registry, always exact; other nodes' from the table, at most FLUSH_MS behind.
 */
import { sql, type RawBuilder } from 'kysely';
import type { Logger } from 'pino';
import { AppError, Errors } from '../errors.ts';
import type { ClusterPresence, Presence } from './presence.ts';

/** Anything a Kysely raw query runs on (a structural type: realtime/ does not depend on the store). */
type SqlExecutor = Parameters<RawBuilder<unknown>['execute']>[0];

/** How long changes are gathered before one write. */
export const FLUSH_MS = 100;
/** Distinct users with a change waiting; beyond this the next write rewrites the whole set. */
export const MAX_PENDING = 10_000;

/** The database's clock in unix milliseconds: leases are compared with one clock, whatever the nodes'. */
const DB_NOW_MS = sql<number>`(extract(epoch from clock_timestamp()) * 1000)::bigint`;

export interface PgPresenceOptions {
  db: SqlExecutor;
  nodeId: string;
  ttlMs: number;
  logger: Logger;
  /** This node's presence (the hub): its answer for its own users, and their ids right now. */
  local: Presence & { localUserIds(): number[] };
}

export class PgPresence implements ClusterPresence {
  /** user id → online, for users whose first connection opened or last one closed since the last write. */
  private readonly pending = new Map<number, boolean>();
  /** The table may not match this node's registry: the next write rewrites the whole set. */
  private rewriteNeeded = true;
  private flushTimer: NodeJS.Timeout | undefined;
  private leaseTimer: NodeJS.Timeout | undefined;
  /** Writes run one at a time, in order (a rewrite must not overtake a change, or the reverse). */
  private writes: Promise<void> = Promise.resolve();
  private stopped = false;

  constructor(private readonly o: PgPresenceOptions) {}

  async start(): Promise<void> {
    await this.enqueue(() => this.rewrite());
    this.leaseTimer = setInterval(
      () => this.schedule(() => this.renew()),
      Math.max(100, Math.floor(this.o.ttlMs / 3)),
    );
    this.leaseTimer.unref();
  }

  /** Called by the hub when a user's first connection opens or last one closes on this node. */
  changed(userId: number, online: boolean): void {
    if (this.stopped) return;
    this.pending.delete(userId); // re-inserted last: the map's order is the order of changes
    this.pending.set(userId, online);
    if (this.pending.size > MAX_PENDING) {
      this.pending.clear();
      this.rewriteNeeded = true;
    }
    if (this.flushTimer === undefined) {
      this.flushTimer = setTimeout(() => {
        this.flushTimer = undefined;
        this.schedule(() => this.flush());
      }, FLUSH_MS);
      this.flushTimer.unref();
    }
  }

  /** enqueue() from a timer, where nobody waits: enqueue logs a failed write itself. */
  private schedule(op: () => Promise<void>): void {
    this.enqueue(op).catch(() => {});
  }

  /** Runs `op` after the writes before it; a failure is logged and repaired by a rewrite later. */
  private enqueue(op: () => Promise<void>): Promise<void> {
    this.writes = this.writes.then(op).catch((err: unknown) => {
      this.rewriteNeeded = true;
      this.o.logger.warn({ err: { message: (err as Error).message } }, 'presence write failed');
    });
    return this.writes;
  }

  /** Writes the changes gathered so far (or the whole set, when that is due). */
  private async flush(): Promise<void> {
    if (this.stopped) return;
    if (this.rewriteNeeded) return this.rewrite();
    if (this.pending.size === 0) return;
    const on: number[] = [];
    const off: number[] = [];
    for (const [userId, online] of this.pending) (online ? on : off).push(userId);
    this.pending.clear();
    // Fails (foreign key) if the lease row was pruned meanwhile; enqueue() then asks for a rewrite.
    await sql`
      with gone as (
        delete from presence_users where node_id = ${this.o.nodeId} and user_id = any(${off}::bigint[])
      )
      insert into presence_users (user_id, node_id)
      select u, ${this.o.nodeId} from unnest(${on}::bigint[]) as u
      on conflict do nothing`.execute(this.o.db);
  }

  /** Renews the lease and makes the table hold exactly this node's users, in one statement. */
  private async rewrite(): Promise<void> {
    if (this.stopped) return;
    // Read and cleared in one turn: changes after this point stay pending for the next flush.
    this.pending.clear();
    this.rewriteNeeded = false;
    const ids = this.o.local.localUserIds();
    const me = this.o.nodeId;
    await sql`
      with lease as (
        insert into presence_nodes (node_id, expires_at) values (${me}, ${DB_NOW_MS} + ${this.o.ttlMs}::bigint)
        on conflict (node_id) do update set expires_at = excluded.expires_at
      ),
      gone as (
        delete from presence_users
        where node_id = ${me} and user_id not in (select unnest(${ids}::bigint[]))
      )
      insert into presence_users (user_id, node_id)
      select u, ${me} from unnest(${ids}::bigint[]) as u
      on conflict do nothing`.execute(this.o.db);
  }

  /** Moves the lease ttl ahead; if it was pruned (this node looked dead for a while), rewrites the set. */
  private async renew(): Promise<void> {
    if (this.stopped) return;
    if (this.rewriteNeeded) return this.rewrite();
    const r = await sql`
      update presence_nodes set expires_at = ${DB_NOW_MS} + ${this.o.ttlMs}::bigint
      where node_id = ${this.o.nodeId}`.execute(this.o.db);
    if (Number(r.numAffectedRows ?? 0) === 0) await this.rewrite();
  }

  async onlineUserIds(): Promise<number[]> {
    const mine = await this.o.local.onlineUserIds();
    const others = await this.guard(() =>
      sql<{ user_id: number }>`
        select distinct u.user_id from presence_users u join presence_nodes n on n.node_id = u.node_id
        where n.expires_at > ${DB_NOW_MS} and u.node_id <> ${this.o.nodeId}`.execute(this.o.db),
    );
    return [...new Set([...mine, ...others.rows.map((r) => Number(r.user_id))])];
  }

  async isOnline(userId: number): Promise<boolean> {
    if (await this.o.local.isOnline(userId)) return true;
    const r = await this.guard(() =>
      sql`
        select 1 from presence_users u join presence_nodes n on n.node_id = u.node_id
        where u.user_id = ${userId} and u.node_id <> ${this.o.nodeId} and n.expires_at > ${DB_NOW_MS}
        limit 1`.execute(this.o.db),
    );
    return r.rows.length > 0;
  }

  /** Database unreachable → 503, not a 500 or a guess from this node alone. */
  private async guard<T>(read: () => Promise<T>): Promise<T> {
    try {
      return await read();
    } catch {
      throw new AppError(Errors.UNAVAILABLE, 'presence unavailable: the database is unreachable');
    }
  }

  /** Stops writing and removes this node's lease and users (a clean leave, not a wait for the lease). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.leaseTimer);
    clearTimeout(this.flushTimer);
    this.pending.clear();
    await this.writes;
    await sql`delete from presence_nodes where node_id = ${this.o.nodeId}`.execute(this.o.db).catch(() => {});
  }
}

/** Housekeeping: deletes the leases that ran out (dead nodes) and, by cascade, their users. */
export async function prunePresence(db: SqlExecutor): Promise<number> {
  const r = await sql`delete from presence_nodes where expires_at <= ${DB_NOW_MS}`.execute(db);
  return Number(r.numAffectedRows ?? 0);
}
