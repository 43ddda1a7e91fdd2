/**
 * Typed, validated configuration. `loadConfig(env)` is the only reader of environment variables and
 * is called from main.ts with `process.env`; tests call it with a literal record or build a Config
 * with `testConfig()`. Every problem is collected and reported at once, naming the variable.
 */

import { isIP } from 'node:net';

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
    idempotencyTtlSec: number;
    expirySweepMs: number;
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
    pollIntervalMs: number;
  };
  redis: { url: string | undefined; prefix: string; presenceTtlMs: number; probeIntervalMs: number };
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

const DURATION = /^(\d+)(ms|s|m|h|d)?$/;
const UNIT_SEC: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400 };

/** Parses `90`, `90s`, `15m`, `1h`, `7d` into seconds (a bare number is seconds). */
export function parseDurationSec(raw: string): number | undefined {
  const m = DURATION.exec(raw.trim());
  if (!m) return undefined;
  return Number(m[1]) * (UNIT_SEC[m[2] ?? 's'] ?? 1);
}

class Reader {
  readonly problems: string[] = [];
  constructor(private readonly env: Env) {}

  raw(name: string): string | undefined {
    const v = this.env[name];
    return v === undefined || v === '' ? undefined : v;
  }

  string(name: string, fallback: string): string {
    return this.raw(name) ?? fallback;
  }

  int(name: string, fallback: number, min: number, max: number): number {
    const v = this.raw(name);
    if (v === undefined) return fallback;
    const n = Number(v);
    if (!/^-?\d+$/.test(v.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
      this.problems.push(`${name}=${JSON.stringify(v)}: expected an integer from ${min} to ${max}`);
      return fallback;
    }
    return n;
  }

  bool(name: string, fallback: boolean): boolean {
    const v = this.raw(name);
    if (v === undefined) return fallback;
    if (/^(1|true|yes|on)$/i.test(v)) return true;
    if (/^(0|false|no|off)$/i.test(v)) return false;
    this.problems.push(`${name}=${JSON.stringify(v)}: expected true or false`);
    return fallback;
  }

  durationSec(name: string, fallbackSec: number, minSec: number): number {
    const v = this.raw(name);
    if (v === undefined) return fallbackSec;
    const s = parseDurationSec(v);
    if (s === undefined || s < minSec) {
      this.problems.push(
        `${name}=${JSON.stringify(v)}: expected a duration like 3600, 15m, 1h or 7d (at least ${minSec}s)`,
      );
      return fallbackSec;
    }
    return s;
  }

  oneOf<T extends string>(name: string, fallback: T, allowed: readonly T[]): T {
    const v = this.raw(name);
    if (v === undefined) return fallback;
    if (!(allowed as readonly string[]).includes(v)) {
      this.problems.push(`${name}=${JSON.stringify(v)}: expected one of ${allowed.join(', ')}`);
      return fallback;
    }
    return v as T;
  }
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

function parseDatabaseUrl(r: Reader, name: string): Pick<DatabaseConfig, 'url' | 'kind' | 'sqlitePath'> {
  const url = r.string(name, 'sqlite:./data/skypush.db');
  if (url.startsWith('sqlite:')) {
    const path = url.slice('sqlite:'.length);
    if (path === '')
      r.problems.push(`${name}: sqlite URL needs a path, e.g. sqlite:./data/skypush.db or sqlite::memory:`);
    return { url, kind: 'sqlite', sqlitePath: path || './data/skypush.db' };
  }
  if (/^postgres(ql)?:\/\//.test(url)) {
    try {
      new URL(url);
    } catch {
      r.problems.push(`${name}: not a valid postgres:// URL`);
    }
    return { url, kind: 'postgres' };
  }
  // Never echo the value: it may hold a password.
  r.problems.push(`${name}: expected sqlite:<path>, sqlite::memory: or postgres://…`);
  return { url: 'sqlite::memory:', kind: 'sqlite', sqlitePath: ':memory:' };
}

const PROXY_KEYWORDS = ['loopback', 'linklocal', 'uniquelocal'];

/** true/false, or the proxies to believe: addresses, CIDRs and proxy-addr's keywords, comma-separated. */
function parseTrustProxy(r: Reader, name: string): boolean | string[] {
  const v = r.raw(name);
  if (v === undefined || !(/[.:,]/.test(v) || PROXY_KEYWORDS.includes(v.trim()))) return r.bool(name, false);
  const list = v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const entry of list) {
    const [addr, bits, extra] = entry.split('/');
    const family = isIP(addr ?? '');
    const maxBits = family === 4 ? 32 : 128;
    const okBits = bits === undefined || (/^\d{1,3}$/.test(bits) && Number(bits) <= maxBits);
    if (!(PROXY_KEYWORDS.includes(entry) || (family !== 0 && okBits && extra === undefined)))
      r.problems.push(
        `${name}: ${JSON.stringify(entry)} is not an address, a CIDR (10.0.0.0/8) or one of ${PROXY_KEYWORDS.join(', ')}`,
      );
  }
  return list;
}

function dirOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i <= 0 ? (i === 0 ? '/' : '.') : path.slice(0, i);
}

/** Builds the configuration from an environment record; throws ConfigError listing every problem. */
export function loadConfig(env: Env): Config {
  const r = new Reader(env);
  const db = parseDatabaseUrl(r, 'SKYPUSH_DATABASE_URL');
  const redisUrl = r.raw('SKYPUSH_REDIS_URL');
  if (redisUrl !== undefined && !/^rediss?:\/\//.test(redisUrl)) {
    r.problems.push('SKYPUSH_REDIS_URL: expected redis://host:port or rediss://…');
  }

  const jwtSecret = r.raw('SKYPUSH_JWT_SECRET');
  if (jwtSecret !== undefined && Buffer.byteLength(jwtSecret) < 32) {
    r.problems.push('SKYPUSH_JWT_SECRET: must be at least 32 bytes long');
  }
  // Several nodes must verify each other's tokens: a per-node generated secret cannot work.
  if (jwtSecret === undefined && (db.kind === 'postgres' || redisUrl !== undefined)) {
    r.problems.push(
      'SKYPUSH_JWT_SECRET: required with PostgreSQL or Redis (several nodes must share one secret); set at least 32 random bytes',
    );
  }
  const adminPassword = r.raw('SKYPUSH_ADMIN_PASSWORD');
  if (adminPassword !== undefined && (adminPassword.length < 8 || adminPassword.length > 1024)) {
    r.problems.push('SKYPUSH_ADMIN_PASSWORD: must be 8 to 1024 characters');
  }

  const origins = (r.raw('SKYPUSH_ALLOWED_ORIGINS') ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const o of origins) {
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
  const sqlitePath = db.sqlitePath;
  const maxMessageBytes = r.int('SKYPUSH_MAX_MESSAGE_BYTES', 65_536, 1024, 1_048_576);
  const maxSendBytes = r.int('SKYPUSH_MAX_SEND_BYTES', 64 * 1_048_576, 1024, 2 ** 40);
  if (maxSendBytes < maxMessageBytes) {
    r.problems.push('SKYPUSH_MAX_SEND_BYTES: must be at least SKYPUSH_MAX_MESSAGE_BYTES');
  }
  const hashConcurrency = r.int('SKYPUSH_HASH_CONCURRENCY', 2, 1, 64);

  const config: Config = {
    nodeId: r.string('SKYPUSH_NODE_ID', `node-${process.pid}-${Math.random().toString(36).slice(2, 8)}`),
    http: {
      port: r.int('SKYPUSH_PORT', 9090, 0, 65535),
      host: r.string('SKYPUSH_HOST', '0.0.0.0'),
      bodyLimit: r.int('SKYPUSH_BODY_LIMIT', 1_048_576, 1024, 64 * 1_048_576),
      trustProxy: parseTrustProxy(r, 'SKYPUSH_TRUST_PROXY'),
    },
    database: {
      ...db,
      poolSize: r.int('SKYPUSH_DB_POOL_SIZE', 10, 1, 1000),
      statementTimeoutMs: r.int('SKYPUSH_DB_STATEMENT_TIMEOUT_MS', 5_000, 100, 600_000),
      connectTimeoutMs: r.int('SKYPUSH_DB_CONNECT_TIMEOUT_MS', 3_000, 100, 600_000),
      sqliteLockTimeoutMs: r.int('SKYPUSH_SQLITE_LOCK_TIMEOUT_MS', 5_000, 0, 600_000),
    },
    dataDir: r.string(
      'SKYPUSH_DATA_DIR',
      sqlitePath && sqlitePath !== ':memory:' ? dirOf(sqlitePath) : './data',
    ),
    log: { level: r.oneOf('SKYPUSH_LOG_LEVEL', 'info', LOG_LEVELS) },
    auth: {
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
    },
    messages: {
      maxTargets: r.int('SKYPUSH_MAX_TARGETS', 10_000, 1, 100_000),
      idempotencyTtlSec: 86_400,
      expirySweepMs: r.int('SKYPUSH_EXPIRY_SWEEP_MS', 1_000, 50, 60_000),
      retentionSec:
        r.raw('SKYPUSH_MESSAGE_RETENTION') === undefined
          ? undefined
          : r.durationSec('SKYPUSH_MESSAGE_RETENTION', 0, 1),
      maxMessageBytes,
      maxSendBytes,
      sendRateLimit: r.int('SKYPUSH_SEND_RATE_LIMIT', 600, 0, 1_000_000),
      sendRateLimitAdmin: r.int('SKYPUSH_SEND_RATE_LIMIT_ADMIN', 60_000, 0, 10_000_000),
    },
    realtime: {
      allowedOrigins: origins,
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
    },
    events: {
      retentionSec: r.durationSec('SKYPUSH_EVENT_RETENTION', 7 * 86_400, 1),
      replayMax: r.int('SKYPUSH_REPLAY_MAX', 10_000, 1, 1_000_000),
      cleanupIntervalMs: r.int('SKYPUSH_EVENT_CLEANUP_INTERVAL_MS', 60_000, 10, 86_400_000),
      batchSize: r.int('SKYPUSH_REPLAY_BATCH', 100, 1, 10_000),
      pollIntervalMs: r.int('SKYPUSH_EVENT_POLL_INTERVAL_MS', 1_000, 10, 60_000),
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

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}
