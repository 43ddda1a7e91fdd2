/**
 * Authentication's parts, wired from the configuration: the password hasher (bounded queue), tokens,
 * the login guard (per node, or shared through the cluster's Redis or, without Redis, its PostgreSQL),
 * the user service and the auth service. createApp calls this once; tests reach each part through the App.
 */
import type { Kysely } from 'kysely';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Bus } from '../bus/bus.ts';
import type { Config } from '../config.ts';
import type { DB } from '../store/schema.ts';
import { createUserService, type UserService } from '../users/user.service.ts';
import { createAuthService, type AuthService } from './auth.service.ts';
import { createLoginGuard } from './login-guard.ts';
import { createPgLoginGuard } from './login-guard.pg.ts';
import { createSharedLoginGuard } from './login-guard.redis.ts';
import { createPasswordHasher, type Kdf, type PasswordHasher } from './password.ts';
import { createTokenService, type TokenService } from './tokens.ts';

export interface AuthParts {
  hasher: PasswordHasher;
  tokens: TokenService;
  users: UserService;
  auth: AuthService;
}

export function createAuth(
  config: Config,
  deps: {
    db: Kysely<DB>;
    bus: Bus;
    /** The cluster's Redis: the lockout is counted there when present. */
    redis: Redis | undefined;
    /** A cluster on PostgreSQL alone: the lockout is counted in the database (`db`). */
    lockoutInDatabase?: boolean;
    jwtSecret: string;
    logger: Logger;
    now: () => number;
    /** A key-derivation function other than scrypt (tests count or hold hashes with it). */
    kdf?: Kdf;
  },
): AuthParts {
  const { db, bus, now } = deps;
  const hasher = createPasswordHasher({
    N: config.auth.scryptN,
    concurrency: config.auth.hashConcurrency,
    maxQueued: config.auth.hashQueue,
    ...(deps.kdf && { kdf: deps.kdf }),
  });
  const tokens = createTokenService({ secret: deps.jwtSecret, ttlSec: config.auth.tokenTtlSec, now });
  // SQLite: this process alone changes users, so their rows can be kept (users/user-row-cache.ts).
  const users = createUserService({
    db,
    bus,
    hasher,
    nodeId: config.nodeId,
    now,
    cacheRows: config.database.kind === 'sqlite',
  });
  const lockout = { maxFailures: config.auth.loginMaxFailures, lockoutSec: config.auth.loginLockoutSec, now };
  const guard = deps.redis
    ? createSharedLoginGuard({
        ...lockout,
        redis: deps.redis,
        prefix: config.redis.prefix,
        logger: deps.logger,
      })
    : deps.lockoutInDatabase
      ? createPgLoginGuard({ ...lockout, db, logger: deps.logger })
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
  return { hasher, tokens, users, auth };
}
