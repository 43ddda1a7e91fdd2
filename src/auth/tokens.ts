/**
 * JWT issue (jose) and verify (hs256.ts, node:crypto on the event loop): HS256 only, `exp` and `sub` required, `sub` a numeric user id. A host
 * platform holding the same secret can mint tokens with these claims and skypush accepts them.
 *
 * A token that verified is remembered (by its exact text) until its `exp`, so the same token on the next
 * request or reconnect costs a map lookup instead of a signature check. Only tokens that verified are
 * kept, at most VERIFIED_MAX, the oldest dropped first: a flood of bad tokens caches nothing.
 */
import { SignJWT } from 'jose';
import type { Role } from '../api-types.ts';
import { AppError, Errors } from '../errors.ts';
import { verifyHs256 } from './hs256.ts';

export type { Role } from '../api-types.ts';

export interface TokenClaims {
  userId: number;
  role: Role;
  /** Expiry, unix seconds. */
  exp: number;
}

export interface TokenService {
  issue(userId: number, role: Role): Promise<{ token: string; expiresIn: number; exp: number }>;
  /** Throws AppError UNAUTHENTICATED / TOKEN_EXPIRED. */
  verify(token: string): Promise<TokenClaims>;
  /** How many verified tokens are remembered now (≤ VERIFIED_MAX). */
  remembered(): number;
}

/** Verified tokens remembered at most (about 2 MB of token text at 200 bytes each). */
export const VERIFIED_MAX = 10_000;

export function createTokenService(opts: {
  secret: string;
  ttlSec: number;
  now?: () => number;
}): TokenService {
  // Imported once: given raw bytes, jose would import the key again on every sign and verify.
  const key = crypto.subtle.importKey(
    'raw',
    new TextEncoder().encode(opts.secret),
    { name: 'HMAC', hash: 'SHA-256' },
    false,
    ['sign', 'verify'],
  );
  const now = opts.now ?? Date.now;
  // Verification is a synchronous HMAC (hs256.ts); signing goes through jose and WebCrypto.
  const secret = Buffer.from(opts.secret, 'utf8');
  /** Verified tokens by their text, oldest first (a Map keeps insertion order). */
  const verified = new Map<string, TokenClaims>();
  const remember = (token: string, claims: TokenClaims) => {
    if (verified.size >= VERIFIED_MAX) verified.delete(verified.keys().next().value as string);
    verified.set(token, claims);
  };
  return {
    async issue(userId, role) {
      const iat = Math.floor(now() / 1000);
      const exp = iat + opts.ttlSec;
      const token = await new SignJWT({ role })
        .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
        .setSubject(String(userId))
        .setIssuedAt(iat)
        .setExpirationTime(exp)
        .sign(await key);
      return { token, expiresIn: opts.ttlSec, exp };
    },
    remembered: () => verified.size,
    async verify(token) {
      const known = verified.get(token);
      if (known) {
        // The signature was checked when it was first seen; only its expiry can have changed since.
        if (known.exp * 1000 > now()) return { ...known };
        verified.delete(token);
        throw new AppError(Errors.TOKEN_EXPIRED);
      }
      const r = verifyHs256(token, secret, now());
      if (!r.ok) {
        throw r.reason === 'expired'
          ? new AppError(Errors.TOKEN_EXPIRED)
          : new AppError(Errors.UNAUTHENTICATED, 'invalid token');
      }
      const { payload } = r;
      const sub = payload['sub'] ?? '';
      const userId = Number(sub);
      if (!/^\d{1,15}$/.test(String(sub)) || !Number.isSafeInteger(userId) || userId <= 0) {
        throw new AppError(Errors.UNAUTHENTICATED, 'token subject must be a numeric user id');
      }
      const role: Role = payload['role'] === 'admin' ? 'admin' : 'user';
      const claims: TokenClaims = { userId, role, exp: payload['exp'] as number };
      remember(token, { ...claims });
      return claims;
    },
  };
}
