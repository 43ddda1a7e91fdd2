import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadConfig, parseDurationSec } from '../src/config.ts';
import { problems } from './helpers/config-problems.ts';

describe('configuration', () => {
  it('starts on the embedded default with no variables set', () => {
    const c = loadConfig({});
    assert.equal(c.http.port, 9090);
    assert.equal(c.database.kind, 'sqlite');
    assert.equal(c.database.url, 'sqlite:./data/skypush.db');
    assert.equal(c.dataDir, './data');
    assert.equal(c.http.bodyLimit, 1_048_576);
    assert.equal(c.auth.adminUsername, 'admin');
    assert.equal(c.auth.adminPassword, undefined);
    assert.equal(c.auth.jwtSecret, undefined);
    assert.equal(c.auth.scryptN, 2 ** 17);
    assert.equal(c.auth.tokenTtlSec, 86_400);
    assert.equal(c.log.level, 'info');
  });

  it('reads every documented variable', () => {
    const c = loadConfig({
      SKYPUSH_PORT: '8080',
      SKYPUSH_HOST: '127.0.0.1',
      SKYPUSH_DATABASE_URL: 'sqlite:/tmp/skypush-config-test/x.db',
      SKYPUSH_JWT_SECRET: 's'.repeat(32),
      SKYPUSH_TOKEN_TTL: '2h',
      SKYPUSH_ADMIN_USERNAME: 'root',
      SKYPUSH_ADMIN_PASSWORD: 'root-password',
      SKYPUSH_LOG_LEVEL: 'warn',
    });
    assert.equal(c.http.port, 8080);
    assert.equal(c.http.host, '127.0.0.1');
    assert.equal(c.database.sqlitePath, '/tmp/skypush-config-test/x.db');
    assert.equal(c.dataDir, '/tmp/skypush-config-test');
    assert.equal(c.auth.jwtSecret, 's'.repeat(32));
    assert.equal(c.auth.tokenTtlSec, 7200);
    assert.equal(c.auth.adminUsername, 'root');
    assert.equal(c.auth.adminPassword, 'root-password');
    assert.equal(c.log.level, 'warn');
  });

  it('accepts sqlite::memory: and a postgres URL (with a shared secret)', () => {
    assert.equal(loadConfig({ SKYPUSH_DATABASE_URL: 'sqlite::memory:' }).database.sqlitePath, ':memory:');
    const pg = loadConfig({
      SKYPUSH_DATABASE_URL: 'postgres://u:p@db.example:5432/skypush',
      SKYPUSH_JWT_SECRET: 'x'.repeat(40),
    });
    assert.equal(pg.database.kind, 'postgres');
  });

  it('reads SKYPUSH_DB_LISTEN_URL (PostgreSQL alone) and refuses anything but postgres:// without echoing it', () => {
    const secret = { SKYPUSH_JWT_SECRET: 'x'.repeat(40), SKYPUSH_DATABASE_URL: 'postgres://pooler:6432/s' };
    assert.equal(loadConfig(secret).database.listenUrl, undefined);
    const direct = loadConfig({ ...secret, SKYPUSH_DB_LISTEN_URL: 'postgres://db:5432/s' });
    assert.equal(direct.database.listenUrl, 'postgres://db:5432/s');
    const found = problems({ ...secret, SKYPUSH_DB_LISTEN_URL: 'redis://u:hunter2-secret@db' });
    assert.deepEqual(found, ['SKYPUSH_DB_LISTEN_URL: expected postgres://…']);
  });

  it('reads SKYPUSH_TRUST_PROXY as a switch or as the proxies to believe', () => {
    assert.equal(loadConfig({}).http.trustProxy, false);
    assert.equal(loadConfig({ SKYPUSH_TRUST_PROXY: 'true' }).http.trustProxy, true);
    assert.deepEqual(
      loadConfig({ SKYPUSH_TRUST_PROXY: '10.0.0.7, 10.1.0.0/16,loopback,::1,fd00::/8' }).http.trustProxy,
      ['10.0.0.7', '10.1.0.0/16', 'loopback', '::1', 'fd00::/8'],
    );
  });

  it('keeps messages without an expiry unless SKYPUSH_MESSAGE_RETENTION is set', () => {
    assert.equal(loadConfig({}).messages.retentionSec, undefined);
    assert.equal(loadConfig({ SKYPUSH_MESSAGE_RETENTION: '90d' }).messages.retentionSec, 90 * 86_400);
  });

  it('returns a frozen configuration', () => {
    const c = loadConfig({});
    assert.ok(Object.isFrozen(c));
    assert.ok(Object.isFrozen(c.auth));
    assert.throws(() => {
      (c.http as { port: number }).port = 1;
    }, TypeError);
  });

  const BAD: Array<[string, string]> = [
    ['SKYPUSH_PORT', 'eighty'],
    ['SKYPUSH_PORT', '70000'],
    ['SKYPUSH_PORT', '80.5'],
    ['SKYPUSH_DATABASE_URL', 'mysql://localhost/db'],
    ['SKYPUSH_DATABASE_URL', 'sqlite:'],
    ['SKYPUSH_JWT_SECRET', 'too-short'],
    ['SKYPUSH_TOKEN_TTL', 'forever'],
    ['SKYPUSH_TOKEN_TTL', '5s'],
    ['SKYPUSH_ADMIN_PASSWORD', 'short'],
    ['SKYPUSH_LOG_LEVEL', 'loud'],
    ['SKYPUSH_BODY_LIMIT', '12'],
    ['SKYPUSH_TRUST_PROXY', 'maybe'],
    ['SKYPUSH_MESSAGE_RETENTION', 'forever'],
    ['SKYPUSH_TRUST_PROXY', '10.0.0.300'],
    ['SKYPUSH_TRUST_PROXY', '10.0.0.0/33'],
    ['SKYPUSH_TRUST_PROXY', 'proxy.example.com'],
    ['SKYPUSH_MAX_TARGETS', '0'],
  ];
  for (const [name, value] of BAD) {
    it(`refuses ${name}=${JSON.stringify(value)} with a message naming the variable`, () => {
      const found = problems({ [name]: value });
      assert.equal(found.length, 1, found.join('; '));
      assert.ok(found[0]?.startsWith(name), found[0]);
      try {
        loadConfig({ [name]: value });
      } catch (e) {
        assert.match((e as Error).message, new RegExp(`^invalid configuration:\\n  - ${name}`));
      }
    });
  }

  it('reports every bad variable at once', () => {
    const found = problems({ SKYPUSH_PORT: 'x', SKYPUSH_LOG_LEVEL: 'loud', SKYPUSH_JWT_SECRET: 'short' });
    assert.equal(found.length, 3);
    for (const name of ['SKYPUSH_PORT', 'SKYPUSH_LOG_LEVEL', 'SKYPUSH_JWT_SECRET']) {
      assert.ok(
        found.some((p) => p.startsWith(name)),
        name,
      );
    }
  });

  it('requires a shared JWT secret with PostgreSQL, where several nodes must verify each other', () => {
    const found = problems({ SKYPUSH_DATABASE_URL: 'postgres://localhost/skypush' });
    assert.ok(found.some((p) => p.startsWith('SKYPUSH_JWT_SECRET')));
  });

  it('never echoes a database URL, which may hold a password', () => {
    const found = problems({ SKYPUSH_DATABASE_URL: 'mysql://user:hunter2-secret@localhost/db' });
    assert.equal(found.join('\n').includes('hunter2-secret'), false);
    const bad = problems({
      SKYPUSH_DATABASE_URL: 'postgres://user:hunter2-secret@[not-a-host/db',
      SKYPUSH_JWT_SECRET: 'x'.repeat(40),
    });
    assert.equal(bad.join('\n').includes('hunter2-secret'), false);
  });

  it('treats an empty variable as unset', () => {
    assert.equal(loadConfig({ SKYPUSH_PORT: '', SKYPUSH_ADMIN_PASSWORD: '' }).http.port, 9090);
  });

  it('parses durations in seconds, minutes, hours and days', () => {
    assert.equal(parseDurationSec('90'), 90);
    assert.equal(parseDurationSec('90s'), 90);
    assert.equal(parseDurationSec('15m'), 900);
    assert.equal(parseDurationSec('1h'), 3600);
    assert.equal(parseDurationSec('7d'), 604_800);
    assert.equal(parseDurationSec('1500ms'), 1.5);
    for (const bad of ['', 'h', '1w', '-5', '1.5h']) assert.equal(parseDurationSec(bad), undefined, bad);
  });
});
