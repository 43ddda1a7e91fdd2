/**
 * Summarises a V8 .cpuprofile (from `npm run bench -- --cpu-prof`, written to bench/results/profiles/):
 * the functions with the most self time, and the files they live in.
 *
 *   node --import tsx bench/profile.ts bench/results/profiles/<file>.cpuprofile [top=25]
 */
import { readFileSync } from 'node:fs';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

interface Profile {
  nodes: Node[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

const [file, topArg] = process.argv.slice(2);
if (!file) {
  console.error('usage: bench/profile.ts <file.cpuprofile> [top]');
  process.exit(2);
}
const top = Number(topArg ?? 25);
const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;

// Self time per node from the sample deltas (µs).
const self = new Map<number, number>();
const samples = p.samples ?? [];
const deltas = p.timeDeltas ?? [];
for (let i = 0; i < samples.length; i++) {
  const id = samples[i] as number;
  self.set(id, (self.get(id) ?? 0) + (deltas[i + 1] ?? deltas[i] ?? 0));
}
const total = [...self.values()].reduce((a, b) => a + b, 0);

const short = (url: string) =>
  url.replace(/^file:\/\/.*?\/node_modules\//, '').replace(/^file:\/\/.*?\/(src|bench)\//, '$1/') ||
  '(native)';
const byFn = new Map<string, number>();
const byFile = new Map<string, number>();
for (const n of p.nodes) {
  const t = self.get(n.id) ?? 0;
  if (!t) continue;
  const { functionName, url, lineNumber } = n.callFrame;
  const fn = `${functionName || '(anonymous)'}  ${short(url)}${url ? `:${lineNumber + 1}` : ''}`;
  byFn.set(fn, (byFn.get(fn) ?? 0) + t);
  const f = url
    ? short(url)
        .split(':')[0]
        ?.replace(/^(.*?node_modules\/)?([^/]+).*$/, '$2')
    : functionName;
  byFile.set(f ?? '?', (byFile.get(f ?? '?') ?? 0) + t);
}
const print = (title: string, m: Map<string, number>) => {
  console.log(`\n${title}`);
  for (const [k, v] of [...m].sort((a, b) => b[1] - a[1]).slice(0, top))
    console.log(
      `${((v / total) * 100).toFixed(1).padStart(5)} %  ${(v / 1000).toFixed(0).padStart(7)} ms  ${k}`,
    );
};
// Inclusive time of the project's own functions (src/, bench/): where the time goes, top-down.
const byId = new Map(p.nodes.map((n) => [n.id, n]));
const inclusive = new Map<number, number>();
const incl = (id: number): number => {
  const known = inclusive.get(id);
  if (known !== undefined) return known;
  const n = byId.get(id);
  const t = (self.get(id) ?? 0) + (n?.children ?? []).reduce((a, c) => a + incl(c), 0);
  inclusive.set(id, t);
  return t;
};
const ownTotal = new Map<string, number>();
const onStack = new Set<string>();
const walk = (id: number): void => {
  const n = byId.get(id);
  if (!n) return;
  const { functionName, url, lineNumber } = n.callFrame;
  const own = /\/(src|client)\//.test(url) && !url.includes('node_modules');
  const key = `${functionName || '(anonymous)'}  ${short(url)}:${lineNumber + 1}`;
  const counted = own && !onStack.has(key);
  if (counted) {
    ownTotal.set(key, (ownTotal.get(key) ?? 0) + incl(id));
    onStack.add(key);
  }
  for (const c of n.children ?? []) walk(c);
  if (counted) onStack.delete(key);
};
walk(p.nodes[0]?.id ?? 1);
console.log(`${file}: ${(total / 1000).toFixed(0)} ms sampled`);
print('self time by function', byFn);
print('self time by package / top-level frame', byFile);
print('inclusive time of src/ functions', ownTotal);
