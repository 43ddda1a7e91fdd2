/**
 * Issue #3 item 12 and seed defect 8 (tokens in access logs): the realtime metrics exist and move, and
 * no token or ticket reaches a log line, whichever way it was passed and whether or not it worked.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CloseCode } from '../../src/protocol.ts';
import { startApp, type TestApp } from '../helpers/app.ts';
import { createUsers, metricValue, mintToken, refused, sendTo, waitUntil } from '../helpers/realtime.ts';
import { connect } from '../helpers/ws-client.ts';

type U = { id: number; token: string };

describe('observability: metrics', () => {
  let t: TestApp;
  let users: U[];
  before(async () => {
    t = await startApp();
    users = await createUsers(t, 10_001, 2);
  });
  after(async () => t.close());

  const scrape = async () => {
    const res = await fetch(`${t.url}/metrics`);
    assert.equal(res.status, 200);
    return res.text();
  };
  const sample = (text: string, series: string): number => {
    const line = text.split('\n').find((l) => l.startsWith(`${series} `));
    return line === undefined ? Number.NaN : Number(line.slice(series.length + 1));
  };

  it('exposes open connections, connects, disconnects by close code, frames sent and the fan-out histogram', async () => {
    const [a, b] = users as [U, U];
    const sa = await connect(t.wsUrl, { token: a.token });
    const sb = await connect(t.wsUrl, { token: b.token });
    let text = await scrape();
    assert.equal(sample(text, 'skypush_ws_connections'), 2);
    assert.ok(sample(text, 'skypush_ws_connects_total') >= 2);

    const framesBefore = sample(text, 'skypush_ws_frames_sent_total');
    const fanoutsBefore = sample(text, 'skypush_fanout_duration_seconds_count');
    const id = await sendTo(t, [a.id, b.id]);
    await Promise.all([sa, sb].map((s) => s.waitFor((f) => f.data['messageId'] === id)));
    text = await scrape();
    assert.ok(sample(text, 'skypush_ws_frames_sent_total') >= framesBefore + 2);
    assert.ok(sample(text, 'skypush_fanout_duration_seconds_count') > fanoutsBefore);
    assert.match(text, /^skypush_fanout_duration_seconds_bucket\{le="0\.001"\} \d+$/m);
    assert.match(text, /^skypush_ws_slow_consumer_closes_total \d+$/m);
    assert.match(text, /^skypush_ws_frames_dropped_total \d+$/m);

    // ws closes an oversized frame with 1009 itself and never reads the echo: still counted as 1009.
    sa.send('x'.repeat(t.config.realtime.maxPayload + 1));
    assert.equal((await sa.closed).code, CloseCode.TOO_LARGE.code);
    sb.send('not json');
    for (let i = 0; i < 5; i++) sb.send('still not json');
    assert.equal((await sb.closed).code, CloseCode.PROTOCOL_ERROR.code);
    await waitUntil(() => t.app.hub.size === 0);
    text = await scrape();
    assert.equal(sample(text, 'skypush_ws_connections'), 0);
    assert.equal(sample(text, 'skypush_ws_disconnects_total{code="1009"}'), 1);
    assert.equal(sample(text, 'skypush_ws_disconnects_total{code="4000"}'), 1);
    assert.ok(Number.isNaN(sample(text, 'skypush_ws_disconnects_total{code="1006"}')));
  });

  it('counts the changes of each SQLite group commit', async () => {
    const [a] = users as [U];
    const before = await scrape();
    const sum0 = sample(before, 'skypush_db_commit_batch_size_sum');
    const count0 = sample(before, 'skypush_db_commit_batch_size_count');
    await Promise.all(Array.from({ length: 12 }, () => sendTo(t, [a.id])));
    const text = await scrape();
    assert.equal(sample(text, 'skypush_db_commit_batch_size_sum'), sum0 + 12, 'every send counted once');
    const transactions = sample(text, 'skypush_db_commit_batch_size_count') - count0;
    assert.ok(transactions >= 1 && transactions <= 12, `${transactions} transactions for 12 sends`);
    assert.match(text, /^skypush_db_commit_batch_size_bucket\{le="64"\} \d+$/m);
  });

  it('counts refused upgrades by status', async () => {
    const before = await metricValue(t, 'skypush_ws_rejects_total', { status: '401' });
    await refused(t.wsUrl, { token: 'nope' });
    assert.equal(await metricValue(t, 'skypush_ws_rejects_total', { status: '401' }), before + 1);
  });
});

describe('observability: no credentials in logs', () => {
  let t: TestApp;
  before(async () => {
    t = await startApp({ env: { SKYPUSH_LOG_LEVEL: 'trace' } });
  });
  after(async () => t.close());

  it('never logs a token or ticket, passed any way, accepted or refused', async () => {
    const u = await t.createUser('logged', { id: 10_101 });
    const secrets: string[] = [u.token, t.adminToken];
    const ticketOf = async () => {
      const r = await t.request<{ ticket: string }>('POST', '/api/v1/ws/ticket', { token: u.token });
      secrets.push(r.body.data.ticket);
      return r.body.data.ticket;
    };

    const ticket = await ticketOf();
    for (const s of [
      await connect(t.wsUrl, { ticket }),
      await connect(t.wsUrl, { token: u.token, via: 'query' }),
      await connect(t.wsUrl, { token: u.token, via: 'subprotocol' }),
      await connect(t.wsUrl, { token: u.token, via: 'header' }),
    ]) {
      await s.waitFor((f) => f.type === 'CONNECTED');
      await s.close();
    }
    // Refusals: a used ticket, an expired token, a foreign origin, a bad cursor, a wrong path.
    const expired = await mintToken(u.id, { exp: Math.floor(Date.now() / 1000) - 5 });
    secrets.push(expired);
    await refused(t.wsUrl, { ticket });
    await refused(t.wsUrl, { token: expired });
    await refused(t.wsUrl, { token: u.token, origin: 'https://evil.example' });
    await refused(t.wsUrl, { token: u.token, since: 'garbage' });
    await refused(t.wsUrl.replace('/messages', '/nope'), { token: u.token });
    await refused(t.wsUrl.replace('/messages', '/nope'), { ticket: await ticketOf() });
    // The same URLs as plain HTTP requests, which do go through the HTTP server's request log.
    for (const q of [`token=${u.token}`, `ticket=${await ticketOf()}`, `access_token=${u.token}`]) {
      await t.request('GET', `/api/v1/ws/messages?${q}`);
    }
    await t.request('GET', '/api/v1/ws/online/check', { token: expired });

    const logs = t.logs.join('');
    assert.ok(logs.length > 0);
    assert.match(logs, /\[REDACTED\]/, 'expected redacted URLs in the request log');
    for (const s of secrets) assert.ok(!logs.includes(s), `a credential was logged: ${s.slice(0, 12)}…`);
  });
});
