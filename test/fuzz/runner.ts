/**
 * The fuzz loop: batches of fast-check runs against a live server until the time budget is spent, the
 * liveness oracles after every batch, and a replayable seed on any failure.
 *
 *   SKYPUSH_FUZZ_MS      fuzzing time per suite file (default 15000; each batch is whole, so a little more)
 *   SKYPUSH_FUZZ_SEED    the first batch's seed (batch i uses seed + i); random when unset
 *   SKYPUSH_FUZZ_PATH    with SKYPUSH_FUZZ_SEED: replay exactly that fast-check run, and only it
 *   SKYPUSH_FUZZ_STRICT  0: list the answers outside the envelope at the end instead of failing on them
 */
import type { TestContext } from 'node:test';
import fc from 'fast-check';
import type { FuzzServer } from './harness.ts';

const env = process.env;

/** An integer from the environment, or `fallback`; anything else stops the suite with the variable's name. */
function intFrom(name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^-?\d+$/.test(raw.trim())) throw new Error(`${name}=${JSON.stringify(raw)}: expected an integer`);
  return Number(raw);
}

export const FUZZ_MS = intFrom('SKYPUSH_FUZZ_MS', 15_000);
export const SEED = intFrom('SKYPUSH_FUZZ_SEED', (Date.now() ^ (Math.random() * 2 ** 31)) | 0);
const PATH = env['SKYPUSH_FUZZ_PATH'] || undefined;
const STRICT = env['SKYPUSH_FUZZ_STRICT'] !== '0';

/** A test's own timeout: the budget plus start-up, the last batch and the checks. */
export const testTimeout = (): number => FUZZ_MS + 90_000;

/**
 * Answers that break the envelope rule (a 4xx in Node's, Fastify's or ws's own shape): a failure, like
 * anything else wrong; with SKYPUSH_FUZZ_STRICT=0 they are only listed at the end of the run.
 */
export class Findings {
  readonly known = new Map<string, { count: number; example: string }>();
  readonly statuses = new Map<number, number>();
  requests = 0;

  status(code: number): void {
    this.statuses.set(code, (this.statuses.get(code) ?? 0) + 1);
  }

  /** Records a known issue; in strict mode, throws instead. */
  knownIssue(kind: string, example: () => string): void {
    if (STRICT) throw new Error(`${kind} (strict mode)\n${example()}`);
    const k = this.known.get(kind);
    if (k) k.count++;
    else this.known.set(kind, { count: 1, example: example() });
  }

  report(): string {
    const st = [...this.statuses].sort((a, b) => a[0] - b[0]).map(([s, n]) => `${s}×${n}`);
    const lines = [`${this.requests} inputs; statuses seen: ${st.join(' ') || 'none'}`];
    for (const [kind, { count, example }] of this.known)
      lines.push(`known issue (tolerated): ${kind} ×${count}; e.g. ${example}`);
    return lines.join('\n');
  }
}

export interface FuzzOptions<T> {
  name: string;
  server: FuzzServer;
  arb: fc.Arbitrary<T>;
  /** fast-check runs per batch (deterministic given the batch seed). */
  runsPerBatch: number;
  /** Sends one input; throws (with the bytes sent) when an oracle fails. */
  run: (input: T) => Promise<void>;
  findings: Findings;
}

function say(t: TestContext, text: string): void {
  // Printed at once (a failure may come minutes later) and kept with the test's result.
  process.stdout.write(`${text}\n`);
  t.diagnostic(text);
}

/** Runs batches until FUZZ_MS is spent (or the one replayed run); throws with the replay line on failure. */
export async function fuzz<T>(t: TestContext, o: FuzzOptions<T>): Promise<void> {
  say(
    t,
    `${o.name}: seed ${SEED}${PATH ? ` path ${PATH}` : ''}, ${FUZZ_MS} ms (replay: SKYPUSH_FUZZ_SEED=${SEED})`,
  );
  const deadline = Date.now() + FUZZ_MS;
  for (let batch = 0; batch === 0 || (Date.now() < deadline && PATH === undefined); batch++) {
    const seed = (SEED + batch) | 0;
    const out = await fc.check(
      fc.asyncProperty(o.arb, (input) => o.run(input)),
      { seed, numRuns: o.runsPerBatch, endOnFailure: true, ...(PATH !== undefined && { path: PATH }) },
    );
    if (out.failed) {
      const message =
        out.errorInstance instanceof Error ? out.errorInstance.message : String(out.errorInstance);
      throw new Error(
        `${o.name}: batch ${batch} failed: ${message}\n` +
          `replay this input: SKYPUSH_FUZZ_SEED=${out.seed} SKYPUSH_FUZZ_PATH=${out.counterexamplePath}`,
      );
    }
    try {
      await o.server.check(`${o.name} batch ${batch}`);
    } catch (e) {
      (e as Error).message += `\nreplay this batch: SKYPUSH_FUZZ_SEED=${seed}`;
      throw e;
    }
  }
  say(t, `${o.name}: ${o.findings.report()}`);
}
