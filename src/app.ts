/**
 * Composition root: builds the store, bus, services, hub and HTTP server from a Config, without
 * listening. `main.ts` listens and traps signals; tests call `createApp` and `listen({port: 0})`.
 */
import type { FastifyInstance } from 'fastify';
import type { DestinationStream, Logger } from 'pino';
import type { WebSocketServer } from 'ws';
import { createAuthService, type AuthService } from './auth/auth.service.ts';
import { createLoginGuard, createSharedLoginGuard } from './auth/login-guard.ts';
import { createPasswordHasher } from './auth/password.ts';
import { resolveJwtSecret } from './auth/secret.ts';
import { pruneTickets } from './auth/ticket.repository.ts';
import { createTokenService, type TokenService } from './auth/tokens.ts';
import type { Bus } from './bus/bus.ts';
import { createMemoryBus } from './bus/memory-bus.ts';
import { RedisBus } from './bus/redis-bus.ts';
import { systemClock } from './clock.ts';
import type { Config } from './config.ts';
import { buildHttpServer } from './http/server.ts';
import { createLogger, messageOf } from './logger.ts';
import { createFeed, type Feed } from './messages/feed.ts';
import { createMessageService, type MessageService } from './messages/message.service.ts';
import { createMetrics, type Metrics } from './metrics.ts';
import { CloseCode } from './protocol.ts';
import { Hub } from './realtime/hub.ts';
import type { Presence } from './realtime/presence.ts';
import { RedisPresence } from './realtime/redis-presence.ts';
import { attachWebSocket } from './realtime/upgrade.ts';
import { openStore, type Store } from './store/database.ts';
import { migrateToLatest } from './store/migrate.ts';
import { createUserService, type UserService } from './users/user.service.ts';

export interface AppOptions {
  /** Where logs go (tests capture them); default stdout. */
  logStream?: DestinationStream;
  /** A bus other than the default for this configuration (tests). */
  bus?: Bus;
  now?: () => number;
  /** Extra HTTP plugins (the web pages are added by main and tests that need them). */
  plugins?: Array<(app: FastifyInstance) => Promise<void>>;
}

export interface App {
  config: Config;
  logger: Logger;
  http: FastifyInstance;
  store: Store;
  bus: Bus;
  hub: Hub;
  feed: Feed;
  presence: Presence;
  users: UserService;
  auth: AuthService;
  tokens: TokenService;
  messages: MessageService;
  metrics: Metrics;
  /** Creates the first admin if there are no users; returns a generated password to print once. */
  bootstrap(): Promise<{ generatedPassword?: string }>;
  listen(): Promise<string>;
  /** Graceful stop: refuse upgrades, close sockets with 1012, finish in-flight HTTP, close the store. */
  close(): Promise<void>;
}

export async function createApp(config: Config, opts: AppOptions = {}): Promise<App> {
  const logger = createLogger(config.log.level, opts.logStream);
  const now = opts.now ?? Date.now;
  // Before the store is opened: a bad kept secret stops start-up with nothing to clean up.
  const jwtSecret = resolveJwtSecret(config);
  const store = openStore(config.database, (message) => logger.warn(message));
  await migrateToLatest(store);
  const metrics = createMetrics();
  const redisBus =
    opts.bus === undefined && config.redis.url !== undefined
      ? new RedisBus({
          url: config.redis.url,
          prefix: config.redis.prefix,
          nodeId: config.nodeId,
          probeIntervalMs: config.redis.probeIntervalMs,
          logger,
        })
      : undefined;
  if (redisBus) await redisBus.ready();
  const bus = opts.bus ?? redisBus ?? createMemoryBus();
  const db = store.db;

  const hasher = createPasswordHasher({ N: config.auth.scryptN, concurrency: config.auth.hashConcurrency });
  const tokens = createTokenService({
    secret: jwtSecret,
    ttlSec: config.auth.tokenTtlSec,
    now,
  });
  const users = createUserService({ db, bus, hasher, nodeId: config.nodeId, now });
  const lockout = {
    maxFailures: config.auth.loginMaxFailures,
    lockoutSec: config.auth.loginLockoutSec,
    now,
  };
  const guard = redisBus
    ? createSharedLoginGuard({ ...lockout, redis: redisBus.publisher, prefix: config.redis.prefix, logger })
    : createLoginGuard(lockout);
  const auth = createAuthService({
    db,
    users,
    tokens,
    hasher,
    guard,
    ticketTtlSec: config.realtime.ticketTtlSec,
    maxTicketsPerUser: config.realtime.maxTicketsPerUser,
    now,
  });
  const messages = createMessageService({
    db,
    dialect: store.dialect,
    bus,
    nodeId: config.nodeId,
    maxTargets: config.messages.maxTargets,
    maxMessageBytes: config.messages.maxMessageBytes,
    maxSendBytes: config.messages.maxSendBytes,
    idempotencyTtlSec: config.messages.idempotencyTtlSec,
    retentionSec: config.messages.retentionSec,
    now,
  });
  const feed = createFeed({ db, unreadCounts: messages.unreadCounts, now });
  let clusterPresence: RedisPresence | undefined;
  const hub = new Hub({
    source: feed,
    bus,
    realtime: config.realtime,
    events: config.events,
    metrics,
    logger,
    clock: { now, monotonic: systemClock.monotonic },
    onPresenceChange: (userId, online) => clusterPresence?.changed(userId, online),
    disabledAmong: users.disabledAmong,
  });
  if (redisBus) {
    clusterPresence = new RedisPresence({
      redis: redisBus.publisher,
      prefix: config.redis.prefix,
      nodeId: config.nodeId,
      ttlMs: config.redis.presenceTtlMs,
      logger,
      localUserIds: () => hub.localUserIds(),
      now,
    });
    await clusterPresence.start();
  }
  const presence: Presence = clusterPresence ?? hub;
  await hub.start();

  let shuttingDown = false;
  const isShuttingDown = () => shuttingDown;
  const http = await buildHttpServer({
    config,
    logger,
    store,
    auth,
    users,
    messages,
    presence,
    metrics,
    isShuttingDown,
    ...(redisBus && { redis: redisBus.publisher }),
    ...(opts.plugins && { plugins: opts.plugins }),
  });
  const wss: WebSocketServer = attachWebSocket({
    server: http.server,
    hub,
    auth,
    realtime: config.realtime,
    metrics,
    logger,
    checkCursor: feed.checkCursor,
    isShuttingDown,
    now,
  });

  // Retention and expiry housekeeping: small bounded batches on a timer, never a long block.
  const housekeeping = setInterval(() => {
    void (async () => {
      try {
        await feed.prune(config.events.retentionSec);
        await messages.pruneIdempotency();
        await pruneTickets(db, now());
        // Messages whose expiry has been announced: ten batches at most per round.
        for (let i = 0; i < 10; i++) if ((await messages.purgeExpired()) === 0) break;
      } catch (err) {
        logger.warn({ err: { message: messageOf(err) } }, 'housekeeping failed');
      }
    })();
  }, config.events.cleanupIntervalMs);
  housekeeping.unref();
  // Expired messages are announced to their holders (MESSAGE_DELETED) about a second after expiry.
  let announcing: Promise<unknown> | undefined;
  const expiry = setInterval(() => {
    announcing ??= messages
      .announceExpired()
      .catch((err: unknown) =>
        logger.warn({ err: { message: messageOf(err) } }, 'announcing expired messages failed'),
      )
      .finally(() => (announcing = undefined));
  }, config.messages.expirySweepMs);
  expiry.unref();

  let closing: Promise<void> | undefined;
  return {
    config,
    logger,
    http,
    store,
    bus,
    hub,
    feed,
    presence,
    users,
    auth,
    tokens,
    messages,
    metrics,
    async bootstrap() {
      const r = await users.ensureAdmin(config.auth.adminUsername, config.auth.adminPassword);
      return r.generatedPassword === undefined ? {} : { generatedPassword: r.generatedPassword };
    },
    async listen() {
      return http.listen({ port: config.http.port, host: config.http.host });
    },
    close() {
      closing ??= (async () => {
        shuttingDown = true;
        clearInterval(housekeeping);
        clearInterval(expiry);
        await announcing;
        await hub.closeAll(CloseCode.SERVICE_RESTART, config.realtime.shutdownDrainMs);
        await hub.stop();
        wss.close();
        await http.close();
        await clusterPresence?.stop();
        await bus.close();
        await store.close();
      })();
      return closing;
    },
  };
}
