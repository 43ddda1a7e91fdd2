/**
 * Issue #11: the process-level handlers are a tripwire that the attack tests assert never fires. This
 * proves it does fire: a real server process, with a preloaded script (test-only, loaded through
 * NODE_OPTIONS, nothing in production code) that throws from a timer or leaves a rejection unhandled on
 * a signal, must log the fatal line with the error's stack and exit 1.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { startNode } from '../helpers/node-process.ts';

const PRELOAD = pathToFileURL(new URL('./tripwire-preload.mjs', import.meta.url).pathname).href;

interface LogLine {
  level: number;
  msg: string;
  err?: { message?: string; stack?: string };
}

async function trip(signal: NodeJS.Signals): Promise<{ code: number | null; fatal: LogLine[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'skypush-tripwire-'));
  try {
    const node = await startNode({
      SKYPUSH_DATABASE_URL: `sqlite:${join(dir, 'skypush.db')}`,
      SKYPUSH_DATA_DIR: dir,
      SKYPUSH_SHUTDOWN_DRAIN_MS: '0',
      NODE_OPTIONS: `--import=${PRELOAD}`,
    });
    const exited = new Promise<number | null>((r) => node.proc.once('exit', (code) => r(code)));
    assert.equal((await fetch(`${node.url}/healthz`)).status, 200);
    node.proc.kill(signal);
    const code = await exited;
    const fatal = node.output
      .join('')
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as LogLine)
      .filter((l) => l.level === 60);
    return { code, fatal };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('the fatal-error tripwire of a real server process', () => {
  it('logs "uncaught exception" at fatal with the stack and exits 1 when a timer throws', async () => {
    const { code, fatal } = await trip('SIGUSR2');
    assert.equal(code, 1);
    assert.equal(fatal.length, 1, JSON.stringify(fatal));
    assert.equal(fatal[0]?.msg, 'uncaught exception');
    assert.equal(fatal[0]?.err?.message, 'tripwire test: thrown from a timer');
    assert.match(fatal[0]?.err?.stack ?? '', /tripwire-preload\.mjs/);
  });

  it('logs "unhandled rejection" at fatal with the stack and exits 1 for a rejection nobody handles', async () => {
    const { code, fatal } = await trip('SIGHUP');
    assert.equal(code, 1);
    assert.equal(fatal.length, 1, JSON.stringify(fatal));
    assert.equal(fatal[0]?.msg, 'unhandled rejection');
    assert.equal(fatal[0]?.err?.message, 'tripwire test: a rejection nobody handles');
    assert.match(fatal[0]?.err?.stack ?? '', /tripwire-preload\.mjs/);
  });
});
