/** The problems loadConfig reports, for the configuration tests. */
import assert from 'node:assert/strict';
import { ConfigError, loadConfig } from '../../src/config.ts';

/** The problems loadConfig reports for `env`; fails the test when it does not throw. */
export function problems(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (e) {
    assert.ok(e instanceof ConfigError, String(e));
    return e.problems;
  }
  assert.fail(`loadConfig accepted ${JSON.stringify(env)}`);
}
