/**
 * Issue #13's wide-send and toall-full scenarios run end to end at tiny sizes (a file of their own: together with
 * the harness's own smoke test they would outlast the suite's per-file timeout).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { metricOf, runStorage } from './helpers/bench-run.ts';

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
});
