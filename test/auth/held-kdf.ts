/**
 * A KDF for tests: the real scrypt, counted, and optionally held before it starts, so a test can fill
 * the hasher and see exactly how many hashes ran (injected with `startApp({ kdf })`).
 */
import { scryptKdf, type Kdf } from '../../src/auth/password.ts';

export interface HeldKdf {
  kdf: Kdf;
  /** Hashes that have started (held ones included). */
  readonly runs: number;
  /** From now on, hashes wait for release() before they start. */
  hold(): void;
  /** Lets every held hash run, and the next ones run at once. */
  release(): void;
  reset(): void;
}

export function heldKdf(): HeldKdf {
  let runs = 0;
  let gate: { promise: Promise<void>; open: () => void } | undefined;
  return {
    kdf: async (password, salt, keyLen, opts) => {
      runs++;
      if (gate) await gate.promise;
      return scryptKdf(password, salt, keyLen, opts);
    },
    get runs() {
      return runs;
    },
    hold() {
      let open = () => {};
      const promise = new Promise<void>((r) => (open = r));
      gate = { promise, open };
    },
    release() {
      gate?.open();
      gate = undefined;
    },
    reset() {
      runs = 0;
    },
  };
}

/** Resolves when `check` holds, polling every 10 ms; fails after `ms`. */
export async function until(check: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
