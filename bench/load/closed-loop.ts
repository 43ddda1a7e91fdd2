/**
 * Closed-loop senders, as an application's request handlers would be: each of `workers` sends, awaits
 * the answer, and sends again, over kept-alive connections spread over the nodes' ports. One send in
 * `wideEvery` lists every id of `wideTargets`; the others one user of `narrowTargets`. Sends started
 * during the first `warmupMs` are not counted; the window of `durationMs` after it is.
 */
import { nowUs } from '../lib/clock.ts';
import { Histogram, type HistogramData } from '../lib/histogram.ts';
import type { MarkerKind } from '../lib/marker.ts';

export interface ClosedLoopArgs {
  ports: number[];
  workers: number;
  warmupMs: number;
  durationMs: number;
  /** Every wideEvery-th send of a worker is a wide one (0: none). */
  wideEvery: number;
  wideTargets: number[];
  narrowTargets: number[];
}

export interface ClosedLoopResult {
  /** Round trips (µs) of the sends started in the window. */
  narrow: HistogramData;
  wide: HistogramData;
  failed: number;
  errors: string[];
  /** The measured window, on the shared monotonic clock. */
  startUs: number;
  endUs: number;
}

export type SendFn = (
  port: number,
  kind: MarkerKind,
  id: number,
  to: number | readonly number[],
) => Promise<{ status: number; body: string }>;

export async function closedLoop(a: ClosedLoopArgs, send: SendFn): Promise<ClosedLoopResult> {
  if (a.ports.length === 0 || a.narrowTargets.length === 0)
    throw new Error('closedLoop: no ports or targets');
  const startUs = nowUs() + a.warmupMs * 1000;
  const endUs = startUs + a.durationMs * 1000;
  const narrow = new Histogram();
  const wide = new Histogram();
  const errors: string[] = [];
  let failed = 0;
  let nextId = 0;

  async function worker(w: number): Promise<void> {
    const port = a.ports[w % a.ports.length] as number;
    // Workers start at different points of the 1-in-wideEvery cycle, so wide sends are spread out.
    for (let k = w; nowUs() < endUs; k++) {
      const isWide = a.wideEvery > 0 && k % a.wideEvery === a.wideEvery - 1;
      const to = isWide
        ? a.wideTargets
        : (a.narrowTargets[Math.floor(Math.random() * a.narrowTargets.length)] as number);
      const t0 = nowUs();
      const res = await send(port, 'u', nextId++, to);
      if (t0 < startUs) continue;
      if (res.status === 200) (isWide ? wide : narrow).record(nowUs() - t0);
      else {
        failed++;
        if (errors.length < 5) errors.push(`${res.status} ${res.body.slice(0, 200)}`);
      }
    }
  }

  await Promise.all(Array.from({ length: a.workers }, (_, w) => worker(w)));
  return { narrow: narrow.toJSON(), wide: wide.toJSON(), failed, errors, startUs, endUs };
}
