/**
 * Issue #3 items 1 and 2: credentials, Origin and caps are checked before the upgrade (refusals are
 * plain HTTP with the envelope), and CONNECTED is always a connection's first frame (seed defect 4).
 */
import assert from 'node:assert/strict';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { DIALECTS, startApp, type TestApp } from '../helpers/app.ts';
import { createUsers, mintToken, refused, sendTo, unsignedToken, waitUntil } from '../helpers/realtime.ts';
import { connect, type Frame, type TestSocket } from '../helpers/ws-client.ts';

const ticketFor = async (t: TestApp, token: string): Promise<string> => {
  const r = await t.request<{ ticket: string; expiresIn: number }>('POST', '/api/v1/ws/ticket', { token });
  assert.equal(r.status, 200);
  assert.equal(r.body.data.expiresIn, 30);
  return r.body.data.ticket;
};

/** A raw handshake, to see exactly which headers the server answers with. */
function rawUpgrade(
  wsUrl: string,
  headers: Record<string, string>,
): Promise<{ status: number; headers: IncomingHttpHeaders }> {
  const url = new URL(wsUrl.replace(/^ws/, 'http'));
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, {
      headers: {
        connection: 'Upgrade',
        upgrade: 'websocket',
        'sec-websocket-version': '13',
        'sec-websocket-key': randomBytes(16).toString('base64'),
        ...headers,
      },
    });
    req.on('upgrade', (res, socket) => {
      socket.destroy();
      resolve({ status: res.statusCode ?? 0, headers: res.headers });
    });
    req.on('response', (res) => {
      res.resume();
      resolve({ status: res.statusCode ?? 0, headers: res.headers });
    });
    req.on('error', reject);
    req.end();
  });
}

describe('connect: credentials', () => {
  let t: TestApp;
  let alice: { id: number; token: string };
  before(async () => {
    t = await startApp();
    alice = await t.createUser('alice', { id: 1001 });
  });
  after(async () => t.close());

  const connectedAs = async (sock: TestSocket, userId: number) => {
    const first = await sock.waitFor(() => true);
    assert.equal(first.type, 'CONNECTED');
    assert.equal(first.data['userID'], userId);
    await sock.close();
  };

  it('accepts a one-time ticket exactly once', async () => {
    const ticket = await ticketFor(t, alice.token);
    await connectedAs(await connect(t.wsUrl, { ticket }), alice.id);
    const again = await refused(t.wsUrl, { ticket });
    assert.equal(again.status, 401);
    assert.equal(again.body.code, 40103);
  });

  it('refuses an expired ticket', async () => {
    const ticket = await ticketFor(t, alice.token);
    await t.app.store.db
      .updateTable('ws_tickets')
      .set({ expires_at: Date.now() - 1 })
      .execute();
    const r = await refused(t.wsUrl, { ticket });
    assert.equal(r.status, 401);
    assert.equal(r.body.code, 40103);
  });

  it('accepts a token offered as "skypush.v1, <jwt>" and answers skypush.v1 without echoing the token', async () => {
    const sock = await connect(t.wsUrl, { token: alice.token, via: 'subprotocol' });
    assert.equal(sock.ws.protocol, 'skypush.v1');
    await connectedAs(sock, alice.id);
    const raw = await rawUpgrade(t.wsUrl, { 'sec-websocket-protocol': `skypush.v1, ${alice.token}` });
    assert.equal(raw.status, 101);
    assert.equal(raw.headers['sec-websocket-protocol'], 'skypush.v1');
    assert.ok(!JSON.stringify(raw.headers).includes(alice.token), 'the token is echoed in a header');
  });

  it('accepts Authorization: Bearer', async () => {
    await connectedAs(await connect(t.wsUrl, { token: alice.token, via: 'header' }), alice.id);
  });

  it('accepts ?token= (seed compatibility)', async () => {
    await connectedAs(await connect(t.wsUrl, { token: alice.token, via: 'query' }), alice.id);
  });

  it('uses the first credential present: a ticket wins over a header, with no fallback', async () => {
    const ticket = await ticketFor(t, alice.token);
    await connectedAs(await connect(t.wsUrl, { ticket, token: 'garbage', via: 'header' }), alice.id);
    // The ticket is used up: the valid Bearer header beside it does not rescue the attempt.
    const r = await refused(t.wsUrl, { ticket, token: alice.token, via: 'header' });
    assert.equal(r.status, 401);
  });

  const bad: Array<[string, () => Promise<string | undefined>, number]> = [
    ['missing', async () => undefined, 401],
    ['forged (wrong secret)', () => mintToken(1001, { secret: 'x'.repeat(48) }), 401],
    ['alg: none', async () => unsignedToken(1001), 401],
    ['expired', () => mintToken(1001, { exp: Math.floor(Date.now() / 1000) - 60 }), 40102],
    ['not a JWT', async () => 'not.a.jwt', 401],
    ['for an unknown user', () => mintToken(999_999), 401],
  ];
  for (const [name, make, code] of bad) {
    it(`answers HTTP 401 with the envelope before the upgrade for a ${name} token`, async () => {
      const token = await make();
      for (const via of ['query', 'subprotocol', 'header'] as const) {
        const r = await refused(t.wsUrl, token === undefined ? {} : { token, via });
        assert.equal(r.status, 401, via);
        assert.equal(r.body.code, code, via);
        assert.equal(typeof r.body.message, 'string');
        assert.equal(r.body.data, null);
        assert.match(String(r.headers['content-type']), /application\/json/);
      }
    });
  }

  it('answers 400 for a malformed ?since= and 404 for another path, before the upgrade', async () => {
    const r = await refused(t.wsUrl, { token: alice.token, since: 'not-a-cursor' });
    assert.equal(r.status, 400);
    assert.equal(r.body.code, 40004);
    const other = await refused(t.wsUrl.replace('/api/v1/ws/messages', '/api/v1/ws/other'), {
      token: alice.token,
    });
    assert.equal(other.status, 404);
  });

  it('negotiates no permessage-deflate by default', async () => {
    const sock = await connect(t.wsUrl, { token: alice.token });
    assert.equal(sock.ws.extensions, '');
    await sock.close();
  });
});

describe('connect: Origin policy', () => {
  let t: TestApp;
  let listed: TestApp;
  let any: TestApp;
  let token: string;
  before(async () => {
    t = await startApp();
    listed = await startApp({ env: { SKYPUSH_ALLOWED_ORIGINS: 'https://app.example.com' } });
    any = await startApp({ env: { SKYPUSH_ALLOWED_ORIGINS: '*', SKYPUSH_WS_DEFLATE: 'true' } });
    // The three apps share the test secret, so the admin token of one is valid on all.
    token = t.adminToken;
  });
  after(async () => Promise.all([t.close(), listed.close(), any.close()]));

  it('refuses a foreign Origin with 403 and allows same-origin and non-browser clients by default', async () => {
    const r = await refused(t.wsUrl, { token, origin: 'https://evil.example' });
    assert.equal(r.status, 403);
    assert.equal(r.body.code, 40302);
    assert.equal((await refused(t.wsUrl, { token, origin: 'null' })).status, 403);
    await (await connect(t.wsUrl, { token, origin: t.url })).close();
    await (await connect(t.wsUrl, { token })).close();
  });

  it('allows exactly the origins in SKYPUSH_ALLOWED_ORIGINS (plus same-origin)', async () => {
    await (await connect(listed.wsUrl, { token, origin: 'https://app.example.com' })).close();
    await (await connect(listed.wsUrl, { token, origin: listed.url })).close();
    for (const origin of [
      'https://evil.example',
      'https://app.example.com.evil.example',
      'http://app.example.com',
    ]) {
      assert.equal((await refused(listed.wsUrl, { token, origin })).status, 403, origin);
    }
  });

  it('allows any Origin with "*" (and deflate when SKYPUSH_WS_DEFLATE is on)', async () => {
    const sock = await connect(any.wsUrl, { token, origin: 'https://evil.example' });
    assert.match(sock.ws.extensions, /permessage-deflate/);
    await sock.close();
  });

  it('checks Origin before credentials: a foreign page learns nothing about a token', async () => {
    const r = await refused(t.wsUrl, { token: 'garbage', origin: 'https://evil.example' });
    assert.equal(r.status, 403);
  });
});

describe('connect: caps before the upgrade', () => {
  let t: TestApp;
  let users: Array<{ id: number; token: string }>;
  before(async () => {
    t = await startApp({ env: { SKYPUSH_MAX_CONNECTIONS: '4', SKYPUSH_MAX_CONNECTIONS_PER_USER: '2' } });
    users = await createUsers(t, 3001, 3);
  });
  after(async () => t.close());

  it('answers 429 with Retry-After over the per-user cap and 503 with Retry-After over the node cap', async () => {
    const [a, b, c] = users as [(typeof users)[0], (typeof users)[0], (typeof users)[0]];
    // Concurrent attempts race for the slots: exactly the cap gets through.
    const attempts = await Promise.allSettled(
      Array.from({ length: 6 }, () => connect(t.wsUrl, { token: a.token })),
    );
    const open = attempts.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    assert.equal(open.length, 2);
    const userFull = await refused(t.wsUrl, { token: a.token });
    assert.equal(userFull.status, 429);
    assert.equal(userFull.body.code, 42902);
    assert.ok(Number(userFull.headers['retry-after']) > 0);

    open.push(await connect(t.wsUrl, { token: b.token }), await connect(t.wsUrl, { token: b.token }));
    const nodeFull = await refused(t.wsUrl, { token: c.token });
    assert.equal(nodeFull.status, 503);
    assert.equal(nodeFull.body.code, 50303);
    assert.ok(Number(nodeFull.headers['retry-after']) > 0);
    assert.equal(t.app.hub.size, 4);

    // A closed connection frees its slot; refused attempts never held one.
    await open[0]?.close();
    await waitUntil(() => t.app.hub.size === 3);
    const again = await connect(t.wsUrl, { token: c.token });
    await Promise.all([...open.slice(1), again].map((s) => s.close()));
  });
});

for (const dialect of DIALECTS)
  describe(`${dialect}: connect: CONNECTED is always the first frame (seed defect 4)`, () => {
    let t: TestApp;
    let users: Array<{ id: number; token: string }>;
    before(async () => {
      t = await startApp({ dialect, env: { SKYPUSH_MAX_CONNECTIONS_PER_USER: '100' } });
      users = await createUsers(t, 4001, 10);
    });
    after(async () => t.close());

    it('on 200 rapid connects while messages are being sent to the same users', async () => {
      const ids = users.map((u) => u.id);
      let sending = true;
      const sent: Array<{ id: number; startedAt: number }> = [];
      // Three senders at once, so events are being dispatched while connections are being set up.
      const loop = async () => {
        while (sending) {
          const startedAt = performance.now();
          sent.push({ id: await sendTo(t, ids), startedAt });
        }
      };
      const sender = Promise.all([loop(), loop(), loop()]);
      const socks = await Promise.all(
        Array.from({ length: 200 }, async (_, i) => {
          const sock = await connect(t.wsUrl, {
            token: (users[i % users.length] as { token: string }).token,
          });
          return { sock, openedAt: performance.now() };
        }),
      );
      // Let a few more sends land after the last socket opened, then stop.
      const more = sent.length + 6;
      await waitUntil(() => sent.length >= more, 10_000);
      sending = false;
      await sender;

      for (const { sock, openedAt } of socks) {
        const mustSee = sent.filter((s) => s.startedAt > openedAt).map((s) => s.id);
        assert.ok(mustSee.length > 0);
        const last = mustSee.at(-1) as number;
        await sock.waitFor((f) => f.type === 'NEW_MESSAGE' && f.data['messageId'] === last, 10_000);
        const types = sock.frames.map((f) => f.type);
        assert.equal(types[0], 'CONNECTED', `frames: ${types.slice(0, 5).join(',')}`);
        assert.equal(types.filter((x) => x === 'CONNECTED').length, 1);
        assert.equal(types[1], 'UNREAD_COUNT');
        const got = sock.frames.filter((f) => f.type === 'NEW_MESSAGE').map((f) => f.data['messageId']);
        assert.equal(new Set(got).size, got.length, 'a message arrived twice');
        for (const id of mustSee) assert.ok(got.includes(id), `message ${id} sent after open never arrived`);
      }
      await Promise.all(socks.map(({ sock }) => sock.close()));
    });

    it('uses the seed envelope with unix-second timestamps, and CONNECTED carries the connection facts', async () => {
      const u = users[0] as { id: number; token: string };
      const sock = await connect(t.wsUrl, { token: u.token });
      const id = await sendTo(t, [u.id]);
      await sock.waitFor((f) => f.type === 'NEW_MESSAGE' && f.data['messageId'] === id);
      const nowSec = Date.now() / 1000;
      for (const f of sock.frames) {
        assert.deepEqual(
          Object.keys(f).filter((k) => k !== 'cursor'),
          ['type', 'data', 'timestamp'],
        );
        assert.ok(
          Number.isInteger(f.timestamp) && Math.abs(f.timestamp - nowSec) < 60,
          `${f.type} timestamp`,
        );
      }
      const connected = sock.frames[0] as Frame;
      assert.equal(connected.data['userID'], u.id);
      assert.equal(typeof connected.data['connectionId'], 'string');
      assert.equal(connected.data['message'], 'WebSocket connected successfully');
      assert.equal(typeof connected.data['cursor'], 'string');
      assert.equal(connected.data['heartbeatIntervalMs'], t.config.realtime.heartbeatIntervalMs);
      const msg = sock.frames.find((f) => f.type === 'NEW_MESSAGE') as Frame;
      assert.equal(typeof msg.cursor, 'string');
      for (const k of [
        'messageId',
        'title',
        'content',
        'messageType',
        'priority',
        'senderName',
        'createTime',
      ]) {
        assert.ok(k in msg.data, `NEW_MESSAGE lacks ${k}`);
      }
      await sock.close();
    });
  });
