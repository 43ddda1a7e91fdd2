/**
 * A log-bucketed latency histogram (1 % wide buckets from 1 µs to ~100 s): clients record into it on the
 * receive path without allocating, and the parent merges the plain arrays it gets over IPC.
 */
const SCALE = 100; // buckets per natural-log unit: ~1 % resolution
const BUCKETS = 1900; // e^(1900/100) µs ≈ 178 s

export interface HistogramData {
  counts: number[];
  count: number;
  min: number;
  max: number;
}

export class Histogram {
  private counts = new Float64Array(BUCKETS);
  count = 0;
  min = Infinity;
  max = 0;

  record(us: number): void {
    const v = us < 1 ? 1 : us;
    const i = Math.min(BUCKETS - 1, Math.floor(Math.log(v) * SCALE));
    this.counts[i] = (this.counts[i] ?? 0) + 1;
    this.count++;
    if (v < this.min) this.min = v;
    if (v > this.max) this.max = v;
  }

  toJSON(): HistogramData {
    // Sparse-friendly: trailing zeros trimmed.
    let last = BUCKETS - 1;
    while (last >= 0 && this.counts[last] === 0) last--;
    return {
      counts: Array.from(this.counts.subarray(0, last + 1)),
      count: this.count,
      min: this.min,
      max: this.max,
    };
  }
}

export function emptyHistogram(): HistogramData {
  return { counts: [], count: 0, min: Infinity, max: 0 };
}

export function mergeHistograms(parts: readonly HistogramData[]): HistogramData {
  const out = emptyHistogram();
  for (const p of parts) {
    for (let i = 0; i < p.counts.length; i++) out.counts[i] = (out.counts[i] ?? 0) + (p.counts[i] ?? 0);
    out.count += p.count;
    out.min = Math.min(out.min, p.min);
    out.max = Math.max(out.max, p.max);
  }
  return out;
}

/** The q-quantile (0..1) in µs; the max is exact, other quantiles are bucket midpoints (±0.5 %). */
export function quantile(h: HistogramData, q: number): number {
  if (h.count === 0) return NaN;
  if (q >= 1) return h.max;
  const rank = Math.ceil(q * h.count);
  let seen = 0;
  for (let i = 0; i < h.counts.length; i++) {
    seen += h.counts[i] ?? 0;
    if (seen >= rank) return Math.min(h.max, Math.max(h.min, Math.exp((i + 0.5) / SCALE)));
  }
  return h.max;
}
