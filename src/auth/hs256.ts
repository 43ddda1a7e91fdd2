/**
 * HS256 JWT verification on the event loop with node:crypto: one HMAC over a few hundred bytes, a few
 * microseconds, where WebCrypto's verify (what jose uses) goes through a promise and the thread pool.
 * Every connect with a new token pays for it (issue #14). Signing stays with jose (tokens.ts).
 *
 * It accepts what jose's `jwtVerify(token, key, { algorithms: ['HS256'], requiredClaims: ['exp',
 * 'sub'] })` accepts, which test/auth/hs256.test.ts checks against jose itself over valid, expired,
 * not-yet-valid, tampered and malformed tokens: compact form (three unpadded base64url parts), a JSON
 * object header with `alg: "HS256"`, a valid signature, a JSON object payload in valid UTF-8, `exp` a
 * number in the future, `nbf` (if any) a number not in the future, `iat` (if any) a number, `sub`
 * present (tokens.ts checks it is a numeric id). One deliberate difference: a header with `crit` is
 * refused (jose accepts `crit: ["b64"]` with `b64: true`, which no JWT issuer sends).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export type Hs256Result =
  { ok: true; payload: Record<string, unknown> } | { ok: false; reason: 'invalid' | 'expired' };

const B64URL = /^[A-Za-z0-9_-]*$/;
const UTF8 = new TextDecoder('utf-8', { fatal: true });

function jsonObject(part: string): Record<string, unknown> | undefined {
  if (!B64URL.test(part)) return undefined;
  try {
    const v: unknown = JSON.parse(UTF8.decode(Buffer.from(part, 'base64url')));
    return v !== null && typeof v === 'object' && !Array.isArray(v)
      ? (v as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

const isNumber = (v: unknown): v is number => typeof v === 'number';

export function verifyHs256(token: string, secret: Buffer, nowMs: number): Hs256Result {
  const invalid = { ok: false, reason: 'invalid' } as const;
  const parts = token.split('.');
  if (parts.length !== 3) return invalid;
  const [h, p, s] = parts as [string, string, string];
  const header = jsonObject(h);
  if (!header || header['alg'] !== 'HS256' || 'crit' in header) return invalid;
  if (!B64URL.test(s)) return invalid;
  const given = Buffer.from(s, 'base64url');
  const expected = createHmac('sha256', secret).update(`${h}.${p}`).digest();
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return invalid;
  const payload = jsonObject(p);
  if (!payload) return invalid;
  const now = Math.floor(nowMs / 1000);
  if (!Object.hasOwn(payload, 'exp') || !Object.hasOwn(payload, 'sub')) return invalid;
  const { exp, nbf, iat } = payload;
  if (iat !== undefined && !isNumber(iat)) return invalid;
  if (nbf !== undefined && (!isNumber(nbf) || nbf > now)) return invalid;
  if (!isNumber(exp)) return invalid;
  if (exp <= now) return { ok: false, reason: 'expired' };
  return { ok: true, payload };
}
