/** Runs `npm run bench`'s harness as a child process for the smoke tests, and reads its JSON. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface Results {
  machine: { cpu: string; cores: number; node: string };
  runs: Array<{
    scenario: string;
    system: string;
    n: number;
    metric: string;
    unit: string;
    median: number;
    min: number;
    max: number;
  }>;
  skipped: Array<{ scenario: string; reason: string }>;
  notes: Array<{ scenario: string; reason: string }>;
}

export function runBench(
  args: string[],
  timeoutMs: number,
): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SKYPUSH_')));
    const p = spawn(process.execPath, ['--import', 'tsx', 'bench/run.ts', ...args], {
      cwd: ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    p.stdout.on('data', (d: Buffer) => (output += d.toString()));
    p.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

/** The median of `metric` in `scenario` (skypush), failing the test when it was not measured. */
export function metricOf(results: Results, scenario: string, metric: string): number {
  const row = results.runs.find((x) => x.scenario === scenario && x.metric === metric);
  assert.ok(row, `${scenario}: no "${metric}" in ${JSON.stringify(results.runs.map((x) => x.metric))}`);
  return row.median;
}

export async function runStorage(dir: string, scenarios: string, timeoutMs: number): Promise<Results> {
  const out = join(dir, `${scenarios.replace(/,/g, '+')}.json`);
  const r = await runBench(
    ['--smoke', '--systems', 'skypush', '--scenarios', scenarios, '--json', '--out', out],
    timeoutMs,
  );
  assert.equal(r.code, 0, r.output);
  assert.doesNotMatch(r.output, /FAILED/, r.output);
  const results = JSON.parse(readFileSync(out, 'utf8')) as Results;
  assert.deepEqual(results.skipped, [], r.output);
  for (const x of results.runs) {
    assert.equal(x.system, 'skypush');
    assert.ok(Number.isFinite(x.median), `${x.scenario} ${x.metric}: ${x.median}`);
  }
  return results;
}
