/**
 * Issue #13's backlog-storm and pg-contention scenarios run end to end at tiny sizes (a file of their own: together with
 * the harness's own smoke test they would outlast the suite's per-file timeout).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { metricOf, runStorage } from './helpers/bench-run.ts';

describe("bench: issue #13's storage scenarios run end to end (tiny sizes): storm and contention", () => {
  const dir = mkdtempSync(join(tmpdir(), 'skypush-bench-storm-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

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
