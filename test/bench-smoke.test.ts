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
import { Tally } from '../bench/load/tally.ts';

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
  notes: Array<{ scenario: string; reason: string }>;
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

/** The median of `metric` in `scenario` (skypush), failing the test when it was not measured. */
function metricOf(results: Results, scenario: string, metric: string): number {
  const row = results.runs.find((x) => x.scenario === scenario && x.metric === metric);
  assert.ok(row, `${scenario}: no "${metric}" in ${JSON.stringify(results.runs.map((x) => x.metric))}`);
  return row.median;
}

async function runStorage(dir: string, scenarios: string, timeoutMs: number): Promise<Results> {
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

describe("bench: issue #13's storage scenarios run end to end (tiny sizes)", () => {
  const dir = mkdtempSync(join(tmpdir(), 'skypush-bench-storage-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it(
    'wide send on SQLite and PostgreSQL, send-to-all with empty and full inboxes',
    { timeout: 150_000 },
    async () => {
      const results = await runStorage(dir, 'wide-send,toall-full', 145_000);
      for (const dialect of ['sqlite', 'postgres'])
        for (const size of ['400 B', '4 KB']) {
          const at = `(${dialect}, ${size} content)`;
          // At 50 recipients a send may fit in pages the database already had: growth ≥ 0, not > 0.
          assert.ok(metricOf(results, 'wide-send', `DB bytes per recipient ${at}`) >= 0, at);
          assert.ok(metricOf(results, 'wide-send', `server CPU per recipient ${at}`) > 0, at);
          assert.equal(metricOf(results, 'wide-send', `online recipients missed ${at}`), 0, at);
        }
      // The WAL always grows with a commit, whatever the pages.
      assert.ok(metricOf(results, 'wide-send', 'WAL bytes per recipient (postgres, 4 KB content)') > 0);
      for (const dialect of ['sqlite', 'postgres'])
        for (const state of ['empty', 'full']) {
          const at = `${state} inboxes (${dialect})`;
          assert.equal(metricOf(results, 'toall-full', `clients missing a frame, ${at}`), 0, at);
          assert.equal(metricOf(results, 'toall-full', `clients dropped, ${at}`), 0, at);
          assert.ok(metricOf(results, 'toall-full', `server CPU, ${at}`) > 0, at);
        }
      assert.ok(metricOf(results, 'toall-full', 'full / empty, server CPU (sqlite)') > 0);
      assert.ok(metricOf(results, 'toall-full', 'full / empty, server + PostgreSQL CPU (postgres)') > 0);
    },
  );

  it(
    'backlog storm (exactly once per client and message) and PostgreSQL contention',
    { timeout: 150_000 },
    async () => {
      const results = await runStorage(dir, 'backlog-storm,pg-contention', 145_000);
      assert.equal(metricOf(results, 'backlog-storm', 'clients back'), 50);
      assert.equal(metricOf(results, 'backlog-storm', 'clients with every message exactly once'), 50);
      assert.equal(metricOf(results, 'backlog-storm', 'duplicate deliveries'), 0);
      assert.equal(metricOf(results, 'backlog-storm', 'missing deliveries'), 0);
      assert.ok(metricOf(results, 'backlog-storm', 'time until all caught up') > 0);
      assert.ok(
        results.notes.some((n) => n.scenario === 'backlog-storm' && /REPLAY_MEMORY_BYTES/.test(n.reason)),
      );
      assert.equal(metricOf(results, 'pg-contention', 'sends failed'), 0);
      assert.ok(metricOf(results, 'pg-contention', 'sends/s') > 0);
      assert.ok(metricOf(results, 'pg-contention', '1-target send latency p99') > 0);
      assert.ok(metricOf(results, 'pg-contention', 'pg_stat_activity samples') > 0);
    },
  );
});

describe('bench: the exactly-once tally', () => {
  it('counts a connection as exactly once only when it got every id once', () => {
    const t = new Tally('r', 3, 2);
    for (const id of [0, 1, 2]) t.record(0, id, 10 + id);
    for (const id of [0, 1, 1, 2]) t.record(1, id, 20 + id);
    const r = t.report();
    assert.equal(t.done, true);
    assert.deepEqual(r, {
      connections: 2,
      exactlyOnce: 1,
      complete: 2,
      duplicates: 1,
      missing: 0,
      stray: 0,
      lastCompleteUs: 22,
    });
  });

  it('reports gaps and ids outside the range, and is not done while one is missing', () => {
    const t = new Tally('r', 3, 2);
    for (const id of [0, 1, 2]) t.record(0, id, 1);
    t.record(1, 0, 2);
    t.record(1, 7, 3);
    assert.equal(t.done, false);
    const r = t.report();
    assert.equal(r.exactlyOnce, 1);
    assert.equal(r.complete, 1);
    assert.equal(r.missing, 2);
    assert.equal(r.stray, 1);
    assert.equal(r.lastCompleteUs, 1);
  });
});
