/**
 * The benchmark harness runs end to end: every peer and skypush as real processes, load clients, driver,
 * all single-node scenarios on 50 connections, one repetition, and writes sane JSON. No timing is
 * asserted (numbers on a shared CI machine mean nothing); only that each figure exists and is coherent.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Tally } from '../bench/load/tally.ts';
import { runBench, type Results } from './helpers/bench-run.ts';

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
