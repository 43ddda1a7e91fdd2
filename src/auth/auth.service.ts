/**
 * Authentication: password login with lockout, bearer-token resolution (the user must exist and be
 * enabled; the role is read from the database so a demotion applies at once), and one-time WebSocket
 * tickets (stored hashed, valid 30 s, usable once, on any node).
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import { AppError, Errors } from '../errors.ts';
import type { DB } from '../store/schema.ts';
import type { LoginResult } from '../api-types.ts';
import { toUser, type User, type UserService } from '../users/user.service.ts';
import type { AttemptOutcome, LoginGuard } from './login-guard.ts';
import { PASSWORD_MAX, type PasswordHasher } from './password.ts';
import { insertTicket, takeTicket } from './ticket.repository.ts';
import type { Role, TokenService } from './tokens.ts';

export type { LoginResult } from '../api-types.ts';

/** Who is calling: resolved from a token or a ticket. */
export interface Principal {
  userId: number;
  role: Role;
  username: string;
  displayName: string;
  /** Credential expiry, unix seconds: sockets close when it passes. */
  exp: number;
}

export interface AuthServiceDeps {
  db: Kysely<DB>;
  users: UserService;
  tokens: TokenService;
  hasher: PasswordHasher;
  guard: LoginGuard;
  ticketTtlSec: number;
  /** SKYPUSH_MAX_TICKETS_PER_USER: live tickets a user keeps; issuing one more evicts the oldest. */
  maxTicketsPerUser?: number;
  now?: () => number;
}

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

/** Authentication as the routes, the auth hooks and the WebSocket upgrade use it. */
export interface AuthService {
  /**
   * Checks a password. The attempt is counted (and may be refused, 429) before the hash; the hash
   * waits in the bounded queue (503 when full) and is dropped if `signal` fires first (client gone).
   */
  login(
    username: string,
    password: string,
    ip: string,
    opts?: { signal?: AbortSignal },
  ): Promise<LoginResult>;
  /** Resolves a bearer token to a principal; throws 401 AppErrors. */
  authenticate(token: string): Promise<Principal>;
  issueTicket(p: Principal): Promise<{ ticket: string; expiresIn: number }>;
  /** Consumes a ticket: valid once, within its lifetime, for an enabled user. */
  redeemTicket(ticket: string): Promise<Principal>;
}

/** The deps with the clock's default filled in, as the operations below take them. */
type Deps = AuthServiceDeps & { now: () => number };

async function principalFor(deps: Deps, userId: number, exp: number): Promise<Principal> {
  const row = await deps.users.findRow(userId);
  if (!row || row.disabled === 1) throw new AppError(Errors.UNAUTHENTICATED, 'unknown or disabled user');
  return { userId, role: row.role, username: row.username, displayName: row.display_name, exp };
}

async function login(
  deps: Deps,
  username: string,
  password: string,
  ip: string,
  opts: { signal?: AbortSignal },
): Promise<LoginResult> {
  const { users, hasher } = deps;
  if (password.length > PASSWORD_MAX) throw new AppError(Errors.PASSWORD_POLICY);
  // A saturated hasher refuses at once: in a flood, no lockout bookkeeping or user lookup either.
  hasher.assertRoom();
  const admission = await deps.guard.begin(username, ip);
  if (!admission.admitted) {
    const headers = { 'retry-after': String(admission.retryAfter) };
    throw new AppError(Errors.LOGIN_LOCKED, undefined, { headers });
  }
  let outcome: AttemptOutcome = 'unchecked';
  let user: User | undefined;
  try {
    const row = await users.findRowByUsername(username);
    // Unknown users are verified against a dummy hash: same body, similar time.
    const ok = await hasher.verify(password, row?.password_hash ?? null, opts);
    if (row && ok && row.disabled !== 1) user = toUser(row);
    outcome = user ? 'success' : 'failure';
  } finally {
    await admission.attempt.end(outcome);
  }
  if (!user) throw new AppError(Errors.INVALID_CREDENTIALS);
  const t = await deps.tokens.issue(user.id, user.role);
  return {
    accessToken: t.token,
    tokenType: 'Bearer',
    expiresIn: t.expiresIn,
    user: { id: user.id, username: user.username, role: user.role, displayName: user.displayName },
  };
}

async function issueTicket(deps: Deps, p: Principal): Promise<{ ticket: string; expiresIn: number }> {
  const ticket = randomBytes(24).toString('base64url');
  const t = deps.now();
  const row = {
    ticket_hash: sha256(ticket),
    user_id: p.userId,
    role: p.role,
    token_exp: p.exp,
    expires_at: t + deps.ticketTtlSec * 1000,
  };
  await insertTicket(deps.db, row, deps.maxTicketsPerUser ?? 32, t);
  return { ticket, expiresIn: deps.ticketTtlSec };
}

async function redeemTicket(deps: Deps, ticket: string): Promise<Principal> {
  const row = await takeTicket(deps.db, sha256(ticket));
  if (!row || Number(row.expires_at) < deps.now()) throw new AppError(Errors.INVALID_TICKET);
  return principalFor(deps, Number(row.user_id), Number(row.token_exp));
}

export function createAuthService(opts: AuthServiceDeps): AuthService {
  const deps: Deps = { ...opts, now: opts.now ?? Date.now };
  return {
    login: (username, password, ip, loginOpts = {}) => login(deps, username, password, ip, loginOpts),
    authenticate: async (token) => {
      const claims = await deps.tokens.verify(token);
      return principalFor(deps, claims.userId, claims.exp);
    },
    issueTicket: (p) => issueTicket(deps, p),
    redeemTicket: (ticket) => redeemTicket(deps, ticket),
  };
}
