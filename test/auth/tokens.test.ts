/**
 * Tokens: HS256 verification and the memory of verified tokens (tokens.ts). A remembered token is
 * served without a signature check until its exp, never past it; only tokens that verified are kept,
 * at most VERIFIED_MAX.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SignJWT } from 'jose';
import { createTokenService, VERIFIED_MAX } from '../../src/auth/tokens.ts';
import { Errors } from '../../src/errors.ts';

const SECRET = 'tokens-test-secret-tokens-test-secret-0123';
const sign = (sub: string, exp: number, secret = SECRET, extra: Record<string, unknown> = {}) =>
  new SignJWT({ role: 'user', ...extra })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(sub)
    .setExpirationTime(exp)
    .sign(new TextEncoder().encode(secret));

const code = (e: unknown) => (e as { code?: number }).code;

describe('token verification and its memory', () => {
  it('remembers a verified token until its exp, and refuses it from then on', async () => {
    const clock = { t: 1_800_000_000_000 };
    const tokens = createTokenService({ secret: SECRET, ttlSec: 60, now: () => clock.t });
    const token = await sign('7', clock.t / 1000 + 60);
    assert.deepEqual(await tokens.verify(token), { userId: 7, role: 'user', exp: clock.t / 1000 + 60 });
    assert.equal(tokens.remembered(), 1);
    assert.equal((await tokens.verify(token)).userId, 7);
    clock.t += 60_000;
    await assert.rejects(tokens.verify(token), (e) => code(e) === Errors.TOKEN_EXPIRED.code);
    assert.equal(tokens.remembered(), 0, 'forgotten once expired');
    await assert.rejects(tokens.verify(token), (e) => code(e) === Errors.TOKEN_EXPIRED.code);
  });

  it('keeps nothing of a token that did not verify, and a remembered one vouches for no other text', async () => {
    const clock = { t: 1_800_000_000_000 };
    const tokens = createTokenService({ secret: SECRET, ttlSec: 60, now: () => clock.t });
    const exp = clock.t / 1000 + 60;
    const good = await sign('7', exp);
    await tokens.verify(good);
    const forged = await sign('7', exp, 'another-secret-another-secret-another-0123');
    await assert.rejects(tokens.verify(forged), (e) => code(e) === Errors.UNAUTHENTICATED.code);
    // The same header and payload with the good token's signature on other claims.
    const [, , sig] = good.split('.');
    const other = (await sign('8', exp)).split('.');
    await assert.rejects(
      tokens.verify(`${other[0]}.${other[1]}.${sig}`),
      (e) => code(e) === Errors.UNAUTHENTICATED.code,
    );
    assert.equal(tokens.remembered(), 1);
  });

  it(`remembers at most ${VERIFIED_MAX} tokens, dropping the oldest first`, async () => {
    const clock = { t: 1_800_000_000_000 };
    const tokens = createTokenService({ secret: SECRET, ttlSec: 600, now: () => clock.t });
    const exp = clock.t / 1000 + 600;
    const first = await sign('1', exp);
    await tokens.verify(first);
    for (let i = 2; i <= VERIFIED_MAX + 1; i++) await tokens.verify(await sign(String(i), exp));
    assert.equal(tokens.remembered(), VERIFIED_MAX);
    // The first was dropped: it verifies again (and is remembered again, evicting the next oldest).
    assert.equal((await tokens.verify(first)).userId, 1);
    assert.equal(tokens.remembered(), VERIFIED_MAX);
  });
});
