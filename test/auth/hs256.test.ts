/**
 * The synchronous HS256 verifier (src/auth/hs256.ts) against jose's jwtVerify, which it replaces on the
 * verify path: over valid, expired, not-yet-valid, tampered and malformed tokens, and random mutations of
 * them, both give the same answer (accepted / expired / refused), except for the one difference the
 * module documents (a `crit` header).
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, it } from 'node:test';
import { errors as joseErrors, jwtVerify } from 'jose';
import { verifyHs256 } from '../../src/auth/hs256.ts';

const SECRET = 'a-test-secret-of-enough-length-0123456789';
const key = new TextEncoder().encode(SECRET);
const NOW = 1_800_000_000_000;
const now = Math.floor(NOW / 1000);

const b64 = (s: string | Buffer) => Buffer.from(s).toString('base64url');
function sign(header: unknown, payload: unknown, secret = SECRET, raw?: { h?: string; p?: string }): string {
  const h = raw?.h ?? b64(JSON.stringify(header));
  const p = raw?.p ?? b64(JSON.stringify(payload));
  return `${h}.${p}.${createHmac('sha256', secret).update(`${h}.${p}`).digest('base64url')}`;
}

async function jose(token: string): Promise<string> {
  try {
    await jwtVerify(token, key, {
      algorithms: ['HS256'],
      requiredClaims: ['exp', 'sub'],
      currentDate: new Date(NOW),
    });
    return 'ok';
  } catch (e) {
    return e instanceof joseErrors.JWTExpired ? 'expired' : 'invalid';
  }
}

function ours(token: string): string {
  const r = verifyHs256(token, Buffer.from(SECRET), NOW);
  return r.ok ? 'ok' : r.reason;
}

const HS = { alg: 'HS256', typ: 'JWT' };
const good = { sub: '42', exp: now + 60, iat: now - 1, role: 'user' };

const cases: Array<[string, string]> = [
  ['valid', sign(HS, good)],
  ['valid, no typ', sign({ alg: 'HS256' }, good)],
  ['valid, numeric sub (jose does not check its type)', sign(HS, { ...good, sub: 42 })],
  ['valid, nbf now', sign(HS, { ...good, nbf: now })],
  ['expired', sign(HS, { ...good, exp: now - 1 })],
  ['expires this second', sign(HS, { ...good, exp: now })],
  ['not yet valid', sign(HS, { ...good, nbf: now + 10 })],
  ['exp missing', sign(HS, { sub: '42' })],
  ['sub missing', sign(HS, { exp: now + 60 })],
  ['exp a string', sign(HS, { ...good, exp: String(now + 60) })],
  ['iat a string', sign(HS, { ...good, iat: 'yesterday' })],
  ['nbf a string', sign(HS, { ...good, nbf: 'soon' })],
  ['alg none', `${b64(JSON.stringify({ alg: 'none' }))}.${b64(JSON.stringify(good))}.`],
  ['alg HS512 header', sign({ alg: 'HS512' }, good)],
  ['alg missing', sign({ typ: 'JWT' }, good)],
  ['wrong secret', sign(HS, good, 'another-secret-entirely-0123456789abcdef')],
  ['payload an array', sign(HS, [good])],
  ['payload a string', sign(HS, 'hello')],
  ['payload not JSON', sign(HS, null, SECRET, { p: b64('{not json') })],
  ['payload invalid UTF-8', sign(HS, null, SECRET, { p: b64(Buffer.from([0x7b, 0xff, 0xfe, 0x7d])) })],
  ['header an array', sign([HS], good)],
  ['header not JSON', sign(null, good, SECRET, { h: b64('nope') })],
  ['two parts', sign(HS, good).split('.').slice(0, 2).join('.')],
  ['four parts', `${sign(HS, good)}.x`],
  ['empty', ''],
  ['dots only', '..'],
  ['signature truncated', sign(HS, good).slice(0, -2)],
];

describe('HS256 verification on the event loop', () => {
  for (const [name, token] of cases) {
    it(`agrees with jose: ${name}`, async () => {
      assert.equal(ours(token), await jose(token), token);
    });
  }

  it('agrees with jose on 2,000 random mutations of valid, expired and not-yet-valid tokens', async () => {
    let seed = 12345;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ ';
    const bases = [sign(HS, good), sign(HS, { ...good, exp: now - 5 }), sign(HS, { ...good, nbf: now + 5 })];
    const seen = new Set<string>();
    for (let i = 0; i < 2000; i++) {
      const base = bases[rnd(bases.length)] as string;
      const chars = [...base];
      for (let k = 0; k <= rnd(3); k++) {
        const at = rnd(chars.length);
        const op = rnd(3);
        if (op === 0) chars[at] = alphabet[rnd(alphabet.length)] as string;
        else if (op === 1) chars.splice(at, 1);
        else chars.splice(at, 0, alphabet[rnd(alphabet.length)] as string);
      }
      const token = chars.join('');
      const a = ours(token);
      seen.add(a);
      assert.equal(a, await jose(token), token);
    }
    assert.ok(seen.has('invalid'), 'the mutations reached refusals');
  });

  it('refuses a crit header (the one documented difference from jose)', () => {
    assert.equal(ours(sign({ ...HS, crit: ['b64'], b64: true }, good)), 'invalid');
    assert.equal(ours(sign({ ...HS, crit: ['exp'] }, good)), 'invalid');
  });
});
