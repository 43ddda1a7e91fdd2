/** The login limits' settings: defaults, and a bad value stops start-up naming the variable. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config.ts';

describe('login limit settings', () => {
  it('defaults: a queue of four turns per running hash, 30 logins a minute per source', () => {
    const c = loadConfig({});
    assert.equal(c.auth.hashQueue, 4 * c.auth.hashConcurrency);
    assert.equal(c.auth.loginRateLimit, 30);
    assert.equal(loadConfig({ SKYPUSH_HASH_CONCURRENCY: '3' }).auth.hashQueue, 12);
    const set = loadConfig({ SKYPUSH_HASH_QUEUE: '0', SKYPUSH_LOGIN_RATE_LIMIT: '5' });
    assert.equal(set.auth.hashQueue, 0);
    assert.equal(set.auth.loginRateLimit, 5);
  });

  for (const [name, value] of [
    ['SKYPUSH_HASH_QUEUE', '-1'],
    ['SKYPUSH_HASH_QUEUE', 'lots'],
    ['SKYPUSH_LOGIN_RATE_LIMIT', '0'],
    ['SKYPUSH_LOGIN_RATE_LIMIT', '1.5'],
  ] as const) {
    it(`refuses ${name}=${value} with a ConfigError naming it`, () => {
      assert.throws(
        () => loadConfig({ [name]: value }),
        (e: unknown) => e instanceof ConfigError && e.problems.some((p) => p.startsWith(`${name}=`)),
      );
    });
  }
});
