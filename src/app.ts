/**
 * Composition root: builds the store, bus, services, hub and HTTP server from a Config, without
 * listening. `main.ts` listens and traps signals; tests call `createApp` and `listen({port: 0})`.
 */
import type { FastifyInstance } from 'fastify';
import type { DestinationStream, Logger } from 'pino';
import type { WebSocketServer } from 'ws';
import type { AuthService } from './auth/auth.service.ts';
import { createAuth } from './auth/create-auth.ts';
import type { Kdf, PasswordHasher } from './auth/password.ts';
import { resolveJwtSecret } from './auth/secret.ts';
import type { TokenService } from './auth/tokens.ts';
import type { Bus } from './bus/bus.ts';
import { systemClock } from './clock.ts';
import type { Config } from './config.ts';
import { buildHttpServer, type HttpDeps } from './http/server.ts';
import { createLogger } from './logger.ts';
import { unreadCounts } from './messages/counters.repository.ts';
import { createEventLogReader, type EventLogStore } from './messages/event-log-reader.ts';
import { type ExpiryAnnouncer } from './messages/expiry.ts';
import { openHistoryGuard, type HistoryGuard, type HistoryNode } from './messages/history-guard.ts';
import { createMessages, type MessageService } from './messages/message.service.ts';
import { createMetrics, type Metrics } from './metrics.ts';
import { CloseCode } from './protocol.ts';
import { Hub } from './realtime/hub.ts';
import type { ClusterPresence, Presence } from './realtime/presence.ts';
import { attachWebSocket } from './realtime/upgrade.ts';
import { openStore, type Store } from './store/database.ts';
import { migrateToLatest } from './store/migrate.ts';
import type { UserService } from './users/user.service.ts';

import { openBus, startClusterPresence } from './app-cluster.ts';
import { startTimers } from './app-timers.ts';
export interface AppOptions {
  /** Where logs go (tests capture them); default stdout. */
  logStream?: DestinationStream;
  /** A bus other than the default for this configuration (tests). */
  bus?: Bus;
  now?: () => number;
  /** Extra HTTP plugins (the web pages are added by main and tests that need them). */
  plugins?: Array<(app: FastifyInstance) => Promise<void>>;
  /** The password KDF (default scrypt); tests wrap it to count or hold the hashes that really run. */
  kdf?: Kdf;
}

export interface App {
  config: Config;
  logger: Logger;
  http: FastifyInstance;
  store: Store;
  bus: Bus;
  hub: Hub;
  eventLog: EventLogStore;
  /** Rotates the cursor epoch when the database's history is replaced (restore, PITR, failover). */
  history: HistoryGuard;
  presence: Presence;
  users: UserService;
  auth: AuthService;
  hasher: PasswordHasher;
  tokens: TokenService;
  messages: MessageService;
  expiry: ExpiryAnnouncer;
  metrics: Metrics;
  /** Creates the first admin if there are no users; returns a generated password to print once. */
  bootstrap(): Promise<{ generatedPassword?: string }>;
  listen(): Promise<string>;
  /** Graceful stop: refuse upgrades, close sockets with 1012, finish in-flight HTTP, close the store. */
  close(): Promise<void>;
}

/**
 * Builds every part in dependency order and wires them (long only because it reads top to bottom as that
 * order: each step is one call; the work lives in the parts).
 */
export async function createApp(config: Config, opts: AppOptions = {}): Promise<App> {
  const logger = createLogger(config.log.level, opts.logStream);
  const now = opts.now ?? Date.now;
  // Before the store is opened: a bad kept secret stops start-up with nothing to clean up.
  const jwtSecret = resolveJwtSecret(config);
  const store = openStore(config.database, (message) => logger.warn(message));
  await migrateToLatest(store);
  // Before anything serves a cursor: a restored database gets a new epoch here.
  const history = await openHistory(config, store, logger);
  const metrics = createMetrics();
  const db = store.db;
  const { bus, redisBus, pgBus } = await openBus(config, opts.bus, db, logger);

  const { hasher, tokens, users, auth } = createAuth(config, {
    db,
    bus,
    redis: redisBus?.publisher,
    lockoutInDatabase: pgBus !== undefined,
    jwtSecret,
    logger,
    now,
    ...(opts.kdf && { kdf: opts.kdf }),
  });
  const { dialect } = store;
  const eventLog = createEventLogReader({
    db,
    unreadCounts: (userIds) => unreadCounts(db, dialect, userIds),
    now,
    recent: { events: config.events.recentEvents, bytes: config.events.recentEventsBytes },
  });
  const parts = createMessages({
    db,
    dialect,
    bus,
    nodeId: config.nodeId,
    settings: config.messages,
    now,
    // Without Redis the committing transaction wakes the hubs itself (NOTIFY is delivered at commit).
    ...(pgBus && { inTransaction: pgBus.wakeInTransaction }),
    sent: (message, recipients) => eventLog.noteSent(message, recipients),
    appended: (rows) => eventLog.noteAppended(rows),
    onBatch: (n) => metrics.commitBatch.observe(n),
  });
  const { service: messages, expiry } = parts;
  // Assigned once the hub exists; the hub reports presence changes to it from then on.
  let clusterPresence: ClusterPresence | undefined = undefined;
  const hub = new Hub({
    source: eventLog,
    bus,
    realtime: config.realtime,
    events: config.events,
    metrics,
    logger,
    clock: { now, monotonic: systemClock.monotonic },
    onPresenceChange: (userId, online) => clusterPresence?.changed(userId, online),
    disabledAmong: users.disabledAmong,
  });
  clusterPresence = await startClusterPresence(config, { redisBus, pgBus, db, hub, logger, now });
  const presence: Presence = clusterPresence ?? hub;
  await hub.start();
  history.watch(historyNode(eventLog, hub));

  let shuttingDown = false;
  const isShuttingDown = () => shuttingDown;
  const { http, wss } = await serve({
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
    hub,
    checkCursor: eventLog.checkCursor,
    now,
  });
  const stopTimers = startTimers(config, { db, dialect, now, logger, eventLog, messages: parts });

  let closing: Promise<void> | undefined;
  return {
    config,
    logger,
    http,
    store,
    bus,
    hub,
    eventLog,
    history,
    presence,
    users,
    auth,
    hasher,
    tokens,
    messages,
    expiry,
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
        await stopTimers();
        await hub.closeAll(CloseCode.SERVICE_RESTART, config.realtime.shutdownDrainMs);
        await hub.stop();
        await history.stop();
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

/** The history guard, after its start-up check (on SQLite it keeps its mark beside the database file). */
function openHistory(config: Config, store: Store, logger: Logger): Promise<HistoryGuard> {
  const path = config.database.sqlitePath;
  return openHistoryGuard({
    db: store.db,
    dialect: store.dialect,
    ...(store.dialect === 'sqlite' &&
      path &&
      path !== ':memory:' && { sqliteFile: { dataDir: config.dataDir, path } }),
    intervalMs: config.events.historyCheckIntervalMs,
    logger,
  });
}

/** This node as the history guard sees it: the event log reader's epoch and the hub's tail. */
function historyNode(eventLog: EventLogStore, hub: Hub): HistoryNode {
  return {
    epoch: () => eventLog.epoch(),
    seen: () => hub.tailSeq,
    replaced(epoch, head) {
      eventLog.adoptEpoch(epoch);
      return hub.historyReplaced(epoch, head);
    },
  };
}

/** The HTTP server with the WebSocket upgrade attached, not listening yet. */
async function serve(
  deps: HttpDeps & { hub: Hub; checkCursor: (cursor: string) => void; now: () => number },
): Promise<{ http: FastifyInstance; wss: WebSocketServer }> {
  const { hub, checkCursor, now, ...httpDeps } = deps;
  const { config, auth, metrics, logger, isShuttingDown } = deps;
  const http = await buildHttpServer(httpDeps);
  const wss = attachWebSocket({
    server: http.server,
    hub,
    auth,
    realtime: config.realtime,
    metrics,
    logger,
    checkCursor,
    isShuttingDown,
    now,
  });
  return { http, wss };
}
