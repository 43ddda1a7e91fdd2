/**
 * Cluster-wide presence in Redis. Each node keeps a set `<prefix>presence:<nodeId>` of the users it
 * holds connections for, refreshed in full every ttl/3 and updated on every first-connect/last-close;
 * a sorted set `<prefix>nodes` scores each node by its expiry. A node that dies stops refreshing, so
 * its users leave the online list within the TTL.
 */
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { systemClock } from '../clock.ts';
import { AppError, Errors } from '../errors.ts';
import type { ClusterPresence } from './presence.ts';

export interface RedisPresenceOptions {
  redis: Redis;
  prefix: string;
  nodeId: string;
  ttlMs: number;
  logger: Logger;
  /** This node's users right now. */
  localUserIds: () => number[];
  now?: () => number;
}

export class RedisPresence implements ClusterPresence {
  private readonly key: string;
  private readonly nodesKey: string;
  private timer: NodeJS.Timeout | undefined;
  private readonly now: () => number;

  constructor(private readonly o: RedisPresenceOptions) {
    this.key = `${o.prefix}presence:${o.nodeId}`;
    this.nodesKey = `${o.prefix}nodes`;
    this.now = o.now ?? systemClock.now;
  }

  async start(): Promise<void> {
    await this.refresh();
    // refresh() catches Redis failures itself; this catch covers anything else, so a bug is logged, not fatal.
    const tick = () =>
      this.refresh().catch((err: unknown) => this.o.logger.error({ err }, 'presence refresh failed'));
    this.timer = setInterval(tick, Math.max(100, Math.floor(this.o.ttlMs / 3)));
    this.timer.unref();
  }

  /** Rewrites this node's set from the hub's registry and renews its lease. */
  async refresh(): Promise<void> {
    const ids = this.o.localUserIds();
    const m = this.o.redis.multi().del(this.key);
    for (let i = 0; i < ids.length; i += 5000) m.sadd(this.key, ...ids.slice(i, i + 5000));
    m.pexpire(this.key, this.o.ttlMs)
      .zadd(this.nodesKey, this.now() + this.o.ttlMs, this.o.nodeId)
      .zremrangebyscore(this.nodesKey, '-inf', this.now());
    await m
      .exec()
      .catch((err: Error) =>
        this.o.logger.warn({ err: { message: err.message } }, 'presence refresh failed'),
      );
  }

  /** Called by the hub when a user's first connection opens or last one closes on this node. */
  changed(userId: number, online: boolean): void {
    const op = online
      ? this.o.redis.multi().sadd(this.key, userId).pexpire(this.key, this.o.ttlMs).exec()
      : this.o.redis.srem(this.key, userId);
    // A failure here is repaired by the next full refresh.
    void op.catch(() => {});
  }

  private async liveNodeKeys(): Promise<string[]> {
    const nodes = await this.o.redis.zrangebyscore(this.nodesKey, this.now(), '+inf');
    return nodes.map((n) => `${this.o.prefix}presence:${n}`);
  }

  async onlineUserIds(): Promise<number[]> {
    return this.guard(async () => {
      const keys = await this.liveNodeKeys();
      if (keys.length === 0) return [];
      return (await this.o.redis.sunion(...keys)).map(Number);
    });
  }

  async isOnline(userId: number): Promise<boolean> {
    return this.guard(async () => {
      const keys = await this.liveNodeKeys();
      if (keys.length === 0) return false;
      const p = this.o.redis.pipeline();
      for (const k of keys) p.sismember(k, userId);
      const res = (await p.exec()) ?? [];
      return res.some(([err, v]) => !err && v === 1);
    });
  }

  /** Redis unreachable → 503, not a 500 or a guess from this node alone. */
  private async guard<T>(read: () => Promise<T>): Promise<T> {
    try {
      return await read();
    } catch {
      throw new AppError(Errors.UNAVAILABLE, 'presence unavailable: Redis is unreachable');
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.o.redis
      .multi()
      .del(this.key)
      .zrem(this.nodesKey, this.o.nodeId)
      .exec()
      .catch(() => {});
  }
}
