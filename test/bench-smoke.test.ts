/**
 * The benchmark harness runs end to end: every peer and skypush as real processes, load clients, driver,
 * all single-node scenarios on 50 connections, one repetition, and writes sane JSON. No timing is
 * asserted (numbers on a shared CI machine mean nothing); only that each figure exists and is coherent.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

interface Results {
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
}

function runBench(args: string[], timeoutMs: number): Promise<{ code: number | null; output: string }> {
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

describe('bench: the harness runs end to end', () => {
  const dir = mkdtempSync(join(tmpdir(), 'skypush-bench-smoke-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it(
    'measures skypush and its peers on 50 connections and writes the JSON',
    { timeout: 60_000 },
    async () => {
      const out = join(dir, 'smoke.json');
      const r = await runBench(['--smoke', '--json', '--out', out], 55_000);
      assert.equal(r.code, 0, r.output);
      assert.doesNotMatch(r.output, /FAILED/, r.output);
      const results = JSON.parse(readFileSync(out, 'utf8')) as Results;

      assert.ok(results.machine.cores >= 1 && results.machine.node.startsWith('v'));
      for (const system of ['skypush', 'ws', 'ws-cork', 'socketio'])
        assert.ok(
          results.runs.some((x) => x.system === system),
          `no results for ${system}`,
        );
      for (const scenario of ['connect', 'idle', 'broadcast', 'fanout', 'sends', 'storm'])
        assert.ok(
          results.runs.some((x) => x.scenario === scenario),
          `no results for ${scenario}`,
        );
      for (const x of results.runs) {
        assert.equal(x.n, 50);
        assert.ok(x.metric && x.unit, JSON.stringify(x));
        assert.ok(Number.isFinite(x.median), `${x.system} ${x.scenario} ${x.metric}: ${x.median}`);
        assert.ok(x.min <= x.median && x.median <= x.max, JSON.stringify(x));
      }
      const get = (system: string, scenario: string, metric: string) =>
        results.runs.find((x) => x.system === system && x.scenario === scenario && x.metric === metric)
          ?.median;
      // Every system delivered everything it was asked to, and every client came back after the restart.
      for (const system of ['skypush', 'ws', 'socketio']) {
        assert.equal(get(system, 'broadcast', 'deliveries missing'), 0, system);
        assert.equal(get(system, 'sends', 'sends failed or undelivered'), 0, system);
        assert.equal(get(system, 'storm', 'clients back'), 50, system);
        assert.ok((get(system, 'broadcast', 'server CPU per delivery') ?? 0) > 0, system);
      }
      // skypush resumed with the cursor of its last frame and got the event it missed.
      assert.equal(get('skypush', 'storm', 'missed event replayed'), 50);
    },
  );
});
