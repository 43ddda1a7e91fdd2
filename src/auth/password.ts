/**
 * Password hashing with node:crypto scrypt at OWASP parameters (N=2^17, r=8, p=1). Parameters are stored
 * beside the hash (`scrypt$N$r$p$salt$hash`) so they can be raised later without breaking old hashes.
 * Each hash holds ~128 MiB and ~0.5 s of a core, so hashing is always async and bounded by a semaphore.
 */
import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';

export const PASSWORD_MIN = 8;
export const PASSWORD_MAX = 1024;
const KEY_LEN = 32;

function scryptAsync(password: string, salt: Buffer, opts: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scrypt(password, salt, KEY_LEN, opts, (err, key) => (err ? reject(err) : resolve(key))),
  );
}

/** Limits how many async tasks run at once; the rest wait in FIFO order. */
export class Semaphore {
  private active = 0;
  private readonly waiting: Array<() => void> = [];
  constructor(private readonly limit: number) {}

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((r) => this.waiting.push(r));
    this.active++;
    try {
      return await task();
    } finally {
      this.active--;
      this.waiting.shift()?.();
    }
  }
}

export interface PasswordHasher {
  hash(password: string): Promise<string>;
  /** False for a wrong password or a malformed stored hash; never throws for those. */
  verify(password: string, stored: string | null): Promise<boolean>;
}

export function createPasswordHasher(opts: { N: number; concurrency: number }): PasswordHasher {
  const gate = new Semaphore(opts.concurrency);
  const r = 8;
  const p = 1;
  // A fixed hash to verify against for unknown users, so their timing matches a real check.
  let dummy: Promise<string> | undefined;

  const derive = (password: string, salt: Buffer, N: number, rr: number, pp: number) =>
    gate.run(() => scryptAsync(password, salt, { N, r: rr, p: pp, maxmem: 256 * N * rr + 1024 * 1024 }));

  const hasher: PasswordHasher = {
    async hash(password) {
      const salt = randomBytes(16);
      const key = await derive(password, salt, opts.N, r, p);
      return `scrypt$${opts.N}$${r}$${p}$${salt.toString('base64')}$${key.toString('base64')}`;
    },
    async verify(password, stored) {
      if (stored === null) {
        dummy ??= hasher.hash('timing-equaliser');
        await hasher.verify(password, await dummy);
        return false;
      }
      const parts = stored.split('$');
      if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
      const [N, rr, pp] = [Number(parts[1]), Number(parts[2]), Number(parts[3])];
      if (![N, rr, pp].every(Number.isSafeInteger)) return false;
      const expected = Buffer.from(parts[5] ?? '', 'base64');
      const key = await derive(password, Buffer.from(parts[4] ?? '', 'base64'), N, rr, pp);
      return expected.length === key.length && timingSafeEqual(expected, key);
    },
  };
  return hasher;
}
