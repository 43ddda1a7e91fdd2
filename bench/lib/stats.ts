/** Summaries over repetitions: median, min and max. */

export interface Summary {
  median: number;
  min: number;
  max: number;
}

export function median(xs: readonly number[]): number {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const mid = s.length >> 1;
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

export function summarize(xs: readonly number[]): Summary {
  const s = xs.filter(Number.isFinite);
  if (s.length === 0) return { median: NaN, min: NaN, max: NaN };
  return { median: median(s), min: Math.min(...s), max: Math.max(...s) };
}
