/**
 * Typed, validated configuration. `loadConfig(env)` is the only reader of environment variables and
 * is called from main.ts with `process.env`; tests call it with a literal record or build a Config
 * with `testConfig()`. Every problem is collected and reported at once, naming the variable.
 */

import {
  ConfigError,
  LOG_LEVELS,
  Reader,
  deepFreeze,
  dirOf,
  parseDatabaseUrl,
  parseTrustProxy,
  type DatabaseUrl,
  type Env,
} from './config-reader.ts';

export { ConfigError, parseDurationSec } from './config-reader.ts';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export interface DatabaseConfig {
  /** The URL as given (never logged: it may carry a password). */
  url: string;
  kind: 'sqlite' | 'postgres';
  /** For sqlite: a file path or ':memory:'. */
  sqlitePath?: string;
  poolSize: number;
  statementTimeoutMs: number;
  /** SQLite: how long a write waits (asynchronously) for another process's write lock; default 5000. */
  sqliteLockTimeoutMs?: number;
  connectTimeoutMs: number;
  /**
   * PostgreSQL without Redis: where the bus's LISTEN connection goes, when not to `url` (a pooler in
   * transaction mode, such as PgBouncer's, cannot hold a LISTEN). Never logged.
   */
  listenUrl?: string;
}

export interface Config {
  nodeId: string;
  http: {
    port: number;
    host: string;
    bodyLimit: number;
    /** true: trust X-Forwarded-For from anyone; a list: only from these proxy addresses/CIDRs. */
    trustProxy: boolean | string[];
  };
  database: DatabaseConfig;
  /** Folder for the embedded default's files (SQLite database, generated JWT secret). */
  dataDir: string;
  log: { level: LogLevel };
  auth: {
    /** Undefined means "generate one and keep it in dataDir" (embedded mode only). */
    jwtSecret: string | undefined;
    tokenTtlSec: number;
    adminUsername: string;
    adminPassword: string | undefined;
    loginMaxFailures: number;
    loginLockoutSec: number;
    /** How many scrypt hashes may run at once (each uses ~128 MiB and ~0.5 s of a core). */
    hashConcurrency: number;
    /** How many hashes may wait for a turn; beyond that logins and password changes get 503. */
    hashQueue: number;
    /** Login attempts per minute per client address (request.ip, so SKYPUSH_TRUST_PROXY applies). */
    loginRateLimit: number;
    /** OWASP scrypt cost; lowered only by tests. */
    scryptN: number;
  };
  messages: {
    maxTargets: number;
    /** A send listing more distinct targets than this is a wide send (runs in the wide lane). */
    wideSendTargets: number;
    /** Wide sends that may run at once on a node; more wait their turn (64 per slot), then 503. */
    wideSendConcurrency: number;
    idempotencyTtlSec: number;
    expirySweepMs: number;
    /** How often each PostgreSQL node folds pending sends into the unread counters. */
    counterFoldMs: number;
    /** The longest a message lives (its expiresAt is capped at send); undefined: messages without one stay. */
    retentionSec: number | undefined;
    /** UTF-8 bytes of one message's text (title, content, linkUrl, messageType, later custom data). */
    maxMessageBytes: number;
    /** Distinct targets × message bytes one send may ask to deliver. */
    maxSendBytes: number;
    /** Sends (and broadcasts) per sender per minute; 0: no limit. */
    sendRateLimit: number;
    /** The same for admins, who send for the platform; 0: no limit. */
    sendRateLimitAdmin: number;
  };
  realtime: {
    allowedOrigins: string[];
    maxConnections: number;
    maxConnectionsPerUser: number;
    heartbeatIntervalMs: number;
    heartbeatTimeoutMs: number;
    inboundRateLimit: number;
    maxPayload: number;
    perMessageDeflate: boolean;
    sendQueueBytes: number;
    ticketTtlSec: number;
    /** Live WebSocket tickets per user; issuing one more evicts that user's oldest. */
    maxTicketsPerUser: number;
    shutdownDrainMs: number;
  };
  events: {
    retentionSec: number;
    replayMax: number;
    cleanupIntervalMs: number;
    batchSize: number;
    /** Bytes of replay held on this node at once, all connections together (replay-budget.ts). */
    replayMemoryBytes: number;
    pollIntervalMs: number;
    /** How often each node checks that the database's history was not replaced (messages/history-guard.ts). */
    historyCheckIntervalMs: number;
    /** Newest events each node keeps to answer resumes from memory (messages/recent-events.ts); 0: none. */
    recentEvents: number;
    recentEventsBytes: number;
  };
  redis: { url: string | undefined; prefix: string; presenceTtlMs: number; probeIntervalMs: number };
}

/** Builds the configuration from an environment record; throws ConfigError listing every problem. */
export function loadConfig(env: Env): Config {
  const r = new Reader(env);
  const db = parseDatabaseUrl(r, 'SKYPUSH_DATABASE_URL');
  const redisUrl = r.raw('SKYPUSH_REDIS_URL');
  if (redisUrl !== undefined && !/^rediss?:\/\//.test(redisUrl)) {
    r.problems.push('SKYPUSH_REDIS_URL: expected redis://host:port or rediss://…');
  }
  const { sqlitePath } = db;
  const config: Config = {
    nodeId: r.string('SKYPUSH_NODE_ID', `node-${process.pid}-${Math.random().toString(36).slice(2, 8)}`),
    http: {
      port: r.int('SKYPUSH_PORT', 9090, 0, 65535),
      host: r.string('SKYPUSH_HOST', '0.0.0.0'),
      bodyLimit: r.int('SKYPUSH_BODY_LIMIT', 1_048_576, 1024, 64 * 1_048_576),
      trustProxy: parseTrustProxy(r, 'SKYPUSH_TRUST_PROXY'),
    },
    database: readDatabase(r, db),
    dataDir: r.string(
      'SKYPUSH_DATA_DIR',
      sqlitePath && sqlitePath !== ':memory:' ? dirOf(sqlitePath) : './data',
    ),
    log: { level: r.oneOf('SKYPUSH_LOG_LEVEL', 'info', LOG_LEVELS) },
    // Several nodes must verify each other's tokens: a per-node generated secret cannot work.
    auth: readAuth(r, db.kind === 'postgres' || redisUrl !== undefined),
    messages: readMessages(r),
    realtime: readRealtime(r),
    events: {
      retentionSec: r.durationSec('SKYPUSH_EVENT_RETENTION', 7 * 86_400, 1),
      replayMax: r.int('SKYPUSH_REPLAY_MAX', 10_000, 1, 1_000_000),
      cleanupIntervalMs: r.int('SKYPUSH_EVENT_CLEANUP_INTERVAL_MS', 60_000, 10, 86_400_000),
      batchSize: r.int('SKYPUSH_REPLAY_BATCH', 100, 1, 10_000),
      replayMemoryBytes: r.int(
        'SKYPUSH_REPLAY_MEMORY_BYTES',
        64 * 1_048_576,
        1_048_576,
        16 * 1024 * 1_048_576,
      ),
      pollIntervalMs: r.int('SKYPUSH_EVENT_POLL_INTERVAL_MS', 1_000, 10, 60_000),
      historyCheckIntervalMs: r.int('SKYPUSH_HISTORY_CHECK_INTERVAL_MS', 5_000, 100, 3_600_000),
      recentEvents: r.int('SKYPUSH_RECENT_EVENTS', 10_000, 0, 1_000_000),
      recentEventsBytes: r.int(
        'SKYPUSH_RECENT_EVENTS_BYTES',
        32 * 1_048_576,
        1_048_576,
        4 * 1024 * 1_048_576,
      ),
    },
    redis: {
      url: redisUrl,
      prefix: r.string('SKYPUSH_REDIS_PREFIX', 'skypush:'),
      presenceTtlMs: r.int('SKYPUSH_PRESENCE_TTL_MS', 15_000, 1_000, 3_600_000),
      probeIntervalMs: r.int('SKYPUSH_REDIS_PROBE_INTERVAL_MS', 5_000, 100, 3_600_000),
    },
  };
  if (r.problems.length > 0) throw new ConfigError(r.problems);
  return deepFreeze(config);
}

function readDatabase(r: Reader, db: DatabaseUrl): DatabaseConfig {
  const listenUrl = r.raw('SKYPUSH_DB_LISTEN_URL');
  if (listenUrl !== undefined && !/^postgres(ql)?:\/\//.test(listenUrl)) {
    // Never echo the value: it may hold a password.
    r.problems.push('SKYPUSH_DB_LISTEN_URL: expected postgres://…');
  }
  return {
    ...db,
    ...(listenUrl !== undefined && { listenUrl }),
    poolSize: r.int('SKYPUSH_DB_POOL_SIZE', 10, 1, 1000),
    statementTimeoutMs: r.int('SKYPUSH_DB_STATEMENT_TIMEOUT_MS', 5_000, 100, 600_000),
    connectTimeoutMs: r.int('SKYPUSH_DB_CONNECT_TIMEOUT_MS', 3_000, 100, 600_000),
    sqliteLockTimeoutMs: r.int('SKYPUSH_SQLITE_LOCK_TIMEOUT_MS', 5_000, 0, 600_000),
  };
}

function readAuth(r: Reader, clustered: boolean): Config['auth'] {
  const jwtSecret = r.raw('SKYPUSH_JWT_SECRET');
  if (jwtSecret !== undefined && Buffer.byteLength(jwtSecret) < 32) {
    r.problems.push('SKYPUSH_JWT_SECRET: must be at least 32 bytes long');
  }
  if (jwtSecret === undefined && clustered) {
    r.problems.push(
      'SKYPUSH_JWT_SECRET: required with PostgreSQL or Redis (several nodes must share one secret); set at least 32 random bytes',
    );
  }
  const adminPassword = r.raw('SKYPUSH_ADMIN_PASSWORD');
  if (adminPassword !== undefined && (adminPassword.length < 8 || adminPassword.length > 1024)) {
    r.problems.push('SKYPUSH_ADMIN_PASSWORD: must be 8 to 1024 characters');
  }
  const hashConcurrency = r.int('SKYPUSH_HASH_CONCURRENCY', 2, 1, 64);
  return {
    jwtSecret,
    tokenTtlSec: r.durationSec('SKYPUSH_TOKEN_TTL', 86_400, 10),
    adminUsername: r.string('SKYPUSH_ADMIN_USERNAME', 'admin'),
    adminPassword,
    loginMaxFailures: r.int('SKYPUSH_LOGIN_MAX_FAILURES', 5, 1, 1000),
    loginLockoutSec: r.durationSec('SKYPUSH_LOGIN_LOCKOUT', 900, 1),
    hashConcurrency,
    // Four turns of waiting: ~2.5 s at production cost before a login is refused with 503.
    hashQueue: r.int('SKYPUSH_HASH_QUEUE', 4 * hashConcurrency, 0, 10_000),
    loginRateLimit: r.int('SKYPUSH_LOGIN_RATE_LIMIT', 30, 1, 100_000),
    scryptN: 2 ** 17,
  };
}

function readMessages(r: Reader): Config['messages'] {
  const maxMessageBytes = r.int('SKYPUSH_MAX_MESSAGE_BYTES', 65_536, 1024, 1_048_576);
  const maxSendBytes = r.int('SKYPUSH_MAX_SEND_BYTES', 64 * 1_048_576, 1024, 2 ** 40);
  if (maxSendBytes < maxMessageBytes) {
    r.problems.push('SKYPUSH_MAX_SEND_BYTES: must be at least SKYPUSH_MAX_MESSAGE_BYTES');
  }
  return {
    maxTargets: r.int('SKYPUSH_MAX_TARGETS', 10_000, 1, 100_000),
    wideSendTargets: r.int('SKYPUSH_WIDE_SEND_TARGETS', 1_000, 1, 100_000),
    wideSendConcurrency: r.int('SKYPUSH_WIDE_SEND_CONCURRENCY', 1, 1, 1_000),
    idempotencyTtlSec: 86_400,
    expirySweepMs: r.int('SKYPUSH_EXPIRY_SWEEP_MS', 1_000, 50, 60_000),
    counterFoldMs: r.int('SKYPUSH_COUNTER_FOLD_MS', 100, 10, 86_400_000),
    retentionSec:
      r.raw('SKYPUSH_MESSAGE_RETENTION') === undefined
        ? undefined
        : r.durationSec('SKYPUSH_MESSAGE_RETENTION', 0, 1),
    maxMessageBytes,
    maxSendBytes,
    sendRateLimit: r.int('SKYPUSH_SEND_RATE_LIMIT', 600, 0, 1_000_000),
    sendRateLimitAdmin: r.int('SKYPUSH_SEND_RATE_LIMIT_ADMIN', 60_000, 0, 10_000_000),
  };
}

function readRealtime(r: Reader): Config['realtime'] {
  const allowedOrigins = (r.raw('SKYPUSH_ALLOWED_ORIGINS') ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const o of allowedOrigins) {
    if (o !== '*' && !/^https?:\/\/[^/\s]+$/.test(o)) {
      r.problems.push(
        `SKYPUSH_ALLOWED_ORIGINS: ${JSON.stringify(o)} is not an origin like https://app.example.com`,
      );
    }
  }
  const heartbeatIntervalMs = r.int('SKYPUSH_HEARTBEAT_INTERVAL_MS', 30_000, 50, 3_600_000);
  const heartbeatTimeoutMs = r.int('SKYPUSH_HEARTBEAT_TIMEOUT_MS', 60_000, 100, 7_200_000);
  if (heartbeatTimeoutMs <= heartbeatIntervalMs) {
    r.problems.push('SKYPUSH_HEARTBEAT_TIMEOUT_MS: must be greater than SKYPUSH_HEARTBEAT_INTERVAL_MS');
  }
  return {
    allowedOrigins,
    maxConnections: r.int('SKYPUSH_MAX_CONNECTIONS', 10_000, 1, 1_000_000),
    maxConnectionsPerUser: r.int('SKYPUSH_MAX_CONNECTIONS_PER_USER', 16, 1, 10_000),
    heartbeatIntervalMs,
    heartbeatTimeoutMs,
    inboundRateLimit: r.int('SKYPUSH_WS_RATE_LIMIT', 60, 1, 100_000),
    maxPayload: r.int('SKYPUSH_WS_MAX_PAYLOAD', 65_536, 256, 65_536),
    perMessageDeflate: r.bool('SKYPUSH_WS_DEFLATE', false),
    sendQueueBytes: r.int('SKYPUSH_WS_SEND_QUEUE_BYTES', 1_048_576, 1024, 256 * 1_048_576),
    ticketTtlSec: 30,
    maxTicketsPerUser: r.int('SKYPUSH_MAX_TICKETS_PER_USER', 32, 1, 10_000),
    shutdownDrainMs: r.int('SKYPUSH_SHUTDOWN_DRAIN_MS', 10_000, 0, 600_000),
  };
}
