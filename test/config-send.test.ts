import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadConfig } from '../src/config.ts';
import { problems } from './helpers/config-problems.ts';

describe('configuration of send quotas and sizes', () => {
  it('defaults to generous quotas (admins far above users) and 64 KiB messages, 64 MiB per send', () => {
    const m = loadConfig({}).messages;
    assert.equal(m.sendRateLimit, 600);
    assert.equal(m.sendRateLimitAdmin, 60_000);
    assert.equal(m.maxMessageBytes, 65_536);
    assert.equal(m.maxSendBytes, 64 * 1_048_576);
  });

  it('reads the variables, 0 turning a quota off', () => {
    const m = loadConfig({
      SKYPUSH_SEND_RATE_LIMIT: '0',
      SKYPUSH_SEND_RATE_LIMIT_ADMIN: '100',
      SKYPUSH_MAX_MESSAGE_BYTES: '4096',
      SKYPUSH_MAX_SEND_BYTES: '4096',
    }).messages;
    assert.deepEqual(
      [m.sendRateLimit, m.sendRateLimitAdmin, m.maxMessageBytes, m.maxSendBytes],
      [0, 100, 4096, 4096],
    );
  });

  const BAD: Array<[string, string]> = [
    ['SKYPUSH_SEND_RATE_LIMIT', '-1'],
    ['SKYPUSH_SEND_RATE_LIMIT', 'lots'],
    ['SKYPUSH_SEND_RATE_LIMIT_ADMIN', '1.5'],
    ['SKYPUSH_MAX_MESSAGE_BYTES', '100'],
    ['SKYPUSH_MAX_MESSAGE_BYTES', '2000000'],
    // Below the default message cap: one largest message to one user could never be sent.
    ['SKYPUSH_MAX_SEND_BYTES', '2048'],
  ];
  for (const [name, value] of BAD) {
    it(`refuses ${name}=${JSON.stringify(value)} with a message naming the variable`, () => {
      const found = problems({ [name]: value });
      assert.equal(found.length, 1, found.join('; '));
      assert.ok(found[0]?.startsWith(name), found[0]);
    });
  }
});
