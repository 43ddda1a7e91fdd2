import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { createPgDatabase, REDIS_URL, startApp, type Res, type TestApp } from '../helpers/app.ts';
import { rowCounts } from '../helpers/store.ts';

const SEND = '/api/v1/messages/send';
const BROADCAST = '/api/v1/ws/broadcast';

/** A 429 in the envelope with a Retry-After within the minute window. */
function assertThrottled(r: Res<unknown>): void {
  assert.equal(r.status, 429, JSON.stringify(r.body));
  assert.equal(r.body.code, 429);
  assert.match(r.body.message, /too many requests/);
  assert.equal(r.body.data, null);
  const retryAfter = Number(r.headers.get('retry-after'));
  assert.ok(retryAfter >= 1 && retryAfter <= 60, `Retry-After ${r.headers.get('retry-after')}`);
}

describe('per-sender quota on sends and broadcasts', () => {
  let t: TestApp;
  let ann: { id: number; token: string };
  let ben: { id: number; token: string };
  before(async () => {
    t = await startApp({ env: { SKYPUSH_SEND_RATE_LIMIT: '3', SKYPUSH_SEND_RATE_LIMIT_ADMIN: '5' } });
    ann = await t.createUser('ann', { id: 801 });
    ben = await t.createUser('ben', { id: 802 });
  });
  after(async () => t.close());

  const send = (token: string, to = 802) =>
    t.request<unknown>('POST', SEND, {
      token,
      body: { title: 't', content: 'c', targetType: 'user', targetIds: [to] },
    });

  it('refuses the send over a user quota with 429 and Retry-After, and stores nothing', async () => {
    for (let i = 0; i < 3; i++) assert.equal((await send(ann.token)).status, 200);
    const before = await rowCounts(t.app.store.db);
    assertThrottled(await send(ann.token));
    assertThrottled(await send(ann.token));
    assert.deepEqual(await rowCounts(t.app.store.db), before);
    // Reading is not sending.
    assert.equal((await t.request('GET', '/api/v1/messages', { token: ann.token })).status, 200);
  });

  it('counts per authenticated user, not per address', async () => {
    // ann and ben call from the same address; ann's quota is used up, ben's is not.
    for (let i = 0; i < 3; i++) assert.equal((await send(ben.token, 801)).status, 200);
    assertThrottled(await send(ben.token, 801));
  });

  it('authenticates before counting: bad credentials always get 401, never 429', async () => {
    // Were the quota counted before authentication, these would share one bucket and hit 429.
    for (let i = 0; i < 5; i++) {
      const token = i % 2 === 0 ? undefined : 'not-a-token';
      const r = await t.request('POST', SEND, {
        ...(token && { token }),
        body: { title: 't', content: 'c', targetType: 'all' },
      });
      assert.equal(r.status, 401, `request ${i}`);
    }
  });

  it('gives admins their own, higher limit, and counts broadcasts apart from sends', async () => {
    for (let i = 0; i < 5; i++) assert.equal((await send(t.adminToken)).status, 200, `admin send ${i}`);
    assertThrottled(await send(t.adminToken));
    const broadcast = () =>
      t.request<unknown>('POST', BROADCAST, {
        token: t.adminToken,
        body: { data: { title: 'notice', content: 'x' } },
      });
    for (let i = 0; i < 5; i++) assert.equal((await broadcast()).status, 200, `broadcast ${i}`);
    const before = await rowCounts(t.app.store.db);
    assertThrottled(await broadcast());
    assert.deepEqual(await rowCounts(t.app.store.db), before);
  });
});

describe('a quota of 0', () => {
  it('turns the limit off for that role only', async () => {
    const t = await startApp({ env: { SKYPUSH_SEND_RATE_LIMIT: '0', SKYPUSH_SEND_RATE_LIMIT_ADMIN: '2' } });
    try {
      const u = await t.createUser('free', { id: 810 });
      const body = { title: 't', content: 'c', targetType: 'user', targetIds: [1] };
      for (let i = 0; i < 12; i++)
        assert.equal((await t.request('POST', SEND, { token: u.token, body })).status, 200);
      for (let i = 0; i < 2; i++)
        assert.equal((await t.request('POST', SEND, { token: t.adminToken, body })).status, 200);
      assertThrottled(await t.request('POST', SEND, { token: t.adminToken, body }));
    } finally {
      await t.close();
    }
  });
});

describe('per-sender quota in a cluster', () => {
  it('is shared by every node through Redis', async () => {
    const pg = await createPgDatabase();
    const env = {
      SKYPUSH_DATABASE_URL: pg.url,
      SKYPUSH_REDIS_URL: REDIS_URL,
      SKYPUSH_REDIS_PREFIX: `test-quota-${randomUUID()}:`,
      SKYPUSH_SEND_RATE_LIMIT: '2',
    };
    const nodes: TestApp[] = [];
    try {
      nodes.push(await startApp({ env }));
      nodes.push(await startApp({ env }));
      const [a, b] = nodes as [TestApp, TestApp];
      const u = await a.createUser('clustered', { id: 820 });
      const body = { title: 't', content: 'c', targetType: 'user', targetIds: [1] };
      const statuses: number[] = [];
      for (const node of [a, b, a, b])
        statuses.push((await node.request('POST', SEND, { token: u.token, body })).status);
      assert.deepEqual(statuses, [200, 200, 429, 429]);
    } finally {
      for (const n of nodes) await n.close();
      await pg.drop();
    }
  });
});
