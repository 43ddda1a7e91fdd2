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

export type AuthService = ReturnType<typeof createAuthService>;

export function createAuthService(deps: AuthServiceDeps) {
  const { db, users, tokens, hasher, guard } = deps;
  const now = deps.now ?? Date.now;

  async function principalFor(userId: number, exp: number): Promise<Principal> {
    const row = await users.findRow(userId);
    if (!row || row.disabled === 1) throw new AppError(Errors.UNAUTHENTICATED, 'unknown or disabled user');
    return { userId, role: row.role, username: row.username, displayName: row.display_name, exp };
  }

  return {
    /**
     * Checks a password. The attempt is counted (and may be refused, 429) before the hash; the hash
     * waits in the bounded queue (503 when full) and is dropped if `signal` fires first (client gone).
     */
    async login(
      username: string,
      password: string,
      ip: string,
      opts: { signal?: AbortSignal } = {},
    ): Promise<LoginResult> {
      if (password.length > PASSWORD_MAX) throw new AppError(Errors.PASSWORD_POLICY);
      // A saturated hasher refuses at once: in a flood, no lockout bookkeeping or user lookup either.
      hasher.assertRoom();
      const admission = await guard.begin(username, ip);
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
      const t = await tokens.issue(user.id, user.role);
      return {
        accessToken: t.token,
        tokenType: 'Bearer',
        expiresIn: t.expiresIn,
        user: { id: user.id, username: user.username, role: user.role, displayName: user.displayName },
      };
    },

    /** Resolves a bearer token to a principal; throws 401 AppErrors. */
    async authenticate(token: string): Promise<Principal> {
      const claims = await tokens.verify(token);
      return principalFor(claims.userId, claims.exp);
    },

    async issueTicket(p: Principal): Promise<{ ticket: string; expiresIn: number }> {
      const ticket = randomBytes(24).toString('base64url');
      const t = now();
      const row = {
        ticket_hash: sha256(ticket),
        user_id: p.userId,
        role: p.role,
        token_exp: p.exp,
        expires_at: t + deps.ticketTtlSec * 1000,
      };
      await insertTicket(db, row, deps.maxTicketsPerUser ?? 32, t);
      return { ticket, expiresIn: deps.ticketTtlSec };
    },

    /** Consumes a ticket: valid once, within its lifetime, for an enabled user. */
    async redeemTicket(ticket: string): Promise<Principal> {
      const row = await takeTicket(db, sha256(ticket));
      if (!row || Number(row.expires_at) < now()) throw new AppError(Errors.INVALID_TICKET);
      return principalFor(Number(row.user_id), Number(row.token_exp));
    },
  };
}
