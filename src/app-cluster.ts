/**
 * The cluster's shape, chosen from the configuration: which bus wakes the nodes (Redis, PostgreSQL's
 * LISTEN/NOTIFY, or in-process) and where presence lives (docs/decisions/0003, 0012).
 */
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { Bus } from './bus/bus.ts';
import { createMemoryBus } from './bus/memory-bus.ts';
import { PgBus } from './bus/pg-bus.ts';
import { RedisBus } from './bus/redis-bus.ts';
import type { Config } from './config.ts';
import type { Hub } from './realtime/hub.ts';
import { PgPresence } from './realtime/pg-presence.ts';
import type { ClusterPresence } from './realtime/presence.ts';
import { RedisPresence } from './realtime/redis-presence.ts';
import type { DB } from './store/schema.ts';

/**
 * The given bus; else the Redis bus when one is configured; else, on PostgreSQL, the PostgreSQL bus
 * (LISTEN/NOTIFY); else the in-process one. A network bus is connected before use.
 */
export async function openBus(
  config: Config,
  given: Bus | undefined,
  db: Kysely<DB>,
  logger: Logger,
): Promise<{ bus: Bus; redisBus?: RedisBus; pgBus?: PgBus }> {
  if (given) return { bus: given };
  const { redis, database } = config;
  if (redis.url !== undefined) {
    const redisBus = new RedisBus({
      url: redis.url,
      prefix: redis.prefix,
      nodeId: config.nodeId,
      probeIntervalMs: redis.probeIntervalMs,
      logger,
    });
    await redisBus.ready();
    return { bus: redisBus, redisBus };
  }
  if (database.kind !== 'postgres') return { bus: createMemoryBus() };
  const pgBus = new PgBus({
    listenUrl: database.listenUrl ?? database.url,
    db,
    prefix: redis.prefix,
    nodeId: config.nodeId,
    probeIntervalMs: redis.probeIntervalMs,
    connectTimeoutMs: database.connectTimeoutMs,
    logger,
  });
  await pgBus.start();
  return { bus: pgBus, pgBus };
}

/**
 * With a cluster bus, presence is the cluster's (each node records its local users in Redis, or in
 * PostgreSQL when that is the bus); else undefined: the hub's own.
 */
export async function startClusterPresence(
  config: Config,
  deps: { redisBus?: RedisBus; pgBus?: PgBus; db: Kysely<DB>; hub: Hub; logger: Logger; now: () => number },
): Promise<ClusterPresence | undefined> {
  const { redisBus, hub, logger } = deps;
  const common = { nodeId: config.nodeId, ttlMs: config.redis.presenceTtlMs, logger };
  let presence: RedisPresence | PgPresence;
  if (redisBus) {
    presence = new RedisPresence({
      ...common,
      redis: redisBus.publisher,
      prefix: config.redis.prefix,
      localUserIds: () => hub.localUserIds(),
      now: deps.now,
    });
  } else if (deps.pgBus) {
    presence = new PgPresence({ ...common, db: deps.db, local: hub });
  } else return undefined;
  await presence.start();
  return presence;
}
