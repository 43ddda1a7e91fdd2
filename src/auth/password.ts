/**
 * Password hashing with node:crypto scrypt at OWASP parameters (N=2^17, r=8, p=1). Parameters are stored
 * beside the hash (`scrypt$N$r$p$salt$hash`) so they can be raised later without breaking old hashes.
 * Each hash holds ~128 MiB and ~0.5 s of a core on libuv's thread pool, so hashing is always async and
 * goes through a bounded queue (../bounded-queue.ts): a flood of logins is refused with 503, not queued.
 */
import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { BoundedQueue, type QueueLoad } from '../bounded-queue.ts';
import { Errors } from '../errors.ts';

export const PASSWORD_MIN = 8;
export const PASSWORD_MAX = 1024;
const KEY_LEN = 32;

/** The key derivation function: node's scrypt; tests wrap it to count or hold the hashes that run. */
export type Kdf = (password: string, salt: Buffer, keyLen: number, opts: ScryptOptions) => Promise<Buffer>;

export const scryptKdf: Kdf = (password, salt, keyLen, opts) =>
  new Promise((resolve, reject) =>
    scrypt(password, salt, keyLen, opts, (err, key) => (err ? reject(err) : resolve(key))),
  );

export interface HashOptions {
  /** Aborted when the client has gone: a hash still waiting for its turn is dropped, never run. */
  signal?: AbortSignal;
}

export interface PasswordHasher {
  /** Throws AppError HASHER_BUSY (503) when the queue is full, an AbortError when `signal` fires first. */
  hash(password: string, opts?: HashOptions): Promise<string>;
  /** False for a wrong password or a malformed stored hash; never throws for those (busy/abort as hash). */
  verify(password: string, stored: string | null, opts?: HashOptions): Promise<boolean>;
  /** Hashes running and waiting now. */
  load(): QueueLoad;
  /** Throws HASHER_BUSY (503) if a hash asked for now would be refused. */
  assertRoom(): void;
}

export interface PasswordHasherOptions {
  N: number;
  /** Hashes that may run at once. */
  concurrency: number;
  /** Hashes that may wait for a turn; beyond that a hash is refused. Default: 4 × concurrency. */
  maxQueued?: number;
  kdf?: Kdf;
}

export function createPasswordHasher(opts: PasswordHasherOptions): PasswordHasher {
  const queue = new BoundedQueue({
    concurrency: opts.concurrency,
    maxQueued: opts.maxQueued ?? 4 * opts.concurrency,
    busy: Errors.HASHER_BUSY,
    // scrypt's production cost.
    taskMs: 600,
  });
  const kdf = opts.kdf ?? scryptKdf;
  const r = 8;
  const p = 1;
  // A fixed hash to verify against for unknown users, so their timing matches a real check.
  let dummy: Promise<string> | undefined;

  const derive = (password: string, salt: Buffer, N: number, rr: number, pp: number, o: HashOptions) =>
    queue.run(
      () => kdf(password, salt, KEY_LEN, { N, r: rr, p: pp, maxmem: 256 * N * rr + 1024 * 1024 }),
      o.signal,
    );

  const hasher: PasswordHasher = {
    async hash(password, o = {}) {
      const salt = randomBytes(16);
      const key = await derive(password, salt, opts.N, r, p, o);
      return `scrypt$${opts.N}$${r}$${p}$${salt.toString('base64')}$${key.toString('base64')}`;
    },
    async verify(password, stored, o = {}) {
      if (stored === null) {
        // Not tied to this caller's signal, and forgotten when it fails (busy), so one refusal does not
        // poison every later unknown-user check.
        dummy ??= hasher.hash('timing-equaliser').catch((err: unknown) => {
          dummy = undefined;
          throw err;
        });
        await hasher.verify(password, await dummy, o);
        return false;
      }
      const parts = stored.split('$');
      if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
      const [N, rr, pp] = [Number(parts[1]), Number(parts[2]), Number(parts[3])];
      if (![N, rr, pp].every(Number.isSafeInteger)) return false;
      const expected = Buffer.from(parts[5] ?? '', 'base64');
      const key = await derive(password, Buffer.from(parts[4] ?? '', 'base64'), N, rr, pp, o);
      return expected.length === key.length && timingSafeEqual(expected, key);
    },
    load: () => queue.load(),
    assertRoom: () => queue.assertRoom(),
  };
  return hasher;
}
