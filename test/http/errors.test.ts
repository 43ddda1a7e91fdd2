import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { Errors } from '../../src/errors.ts';
import { DIALECTS, startApp, type TestApp } from '../helpers/app.ts';
import { rowCounts } from '../helpers/store.ts';

const CODES = new Map<number, { status: number; name: string }>(
  Object.entries(Errors).map(([name, e]) => [e.code, { status: e.status, name }]),
);

interface RawResponse {
  status: number;
  contentType: string;
  text: string;
}

/** The error envelope and nothing else: catalogue code matching the status, a message, data, no stack. */
function assertErrorEnvelope(r: RawResponse, status: number, code?: number): { code: number; data: unknown } {
  assert.equal(r.status, status, r.text);
  assert.match(r.contentType, /^application\/json/);
  const body = JSON.parse(r.text) as Record<string, unknown>;
  assert.deepEqual(Object.keys(body).sort(), ['code', 'data', 'message'], r.text);
  assert.equal(typeof body['code'], 'number');
  assert.equal(typeof body['message'], 'string');
  assert.ok((body['message'] as string).length > 0);
  const c = body['code'] as number;
  const entry = CODES.get(c);
  assert.ok(entry, `code ${c} is not in the catalogue`);
  assert.equal(entry.status, status, `code ${c} (${entry.name}) belongs to status ${entry.status}`);
  if (code !== undefined) assert.equal(c, code, r.text);
  assert.doesNotMatch(r.text, /\bat .+\.(ts|js):\d+|"stack"|"statusCode"|FST_/, 'no stack or Fastify shape');
  return { code: c, data: body['data'] };
}

for (const dialect of DIALECTS) {
  describe(`${dialect}: bad input`, () => {
    let t: TestApp;
    let user: { id: number; token: string };
    before(async () => {
      t = await startApp({
        dialect,
        env: { SKYPUSH_BODY_LIMIT: '65536', SKYPUSH_MAX_TARGETS: '3' },
      });
      user = await t.createUser('sender', { id: 500 });
      await t.createUser('receiver', { id: 501 });
    });
    after(async () => t.close());

    /** A raw request: the body is sent exactly as given. */
    const raw = async (
      method: string,
      path: string,
      o: { token?: string; body?: string; contentType?: string } = {},
    ): Promise<RawResponse> => {
      const headers: Record<string, string> = {};
      if (o.token) headers['authorization'] = `Bearer ${o.token}`;
      if (o.contentType) headers['content-type'] = o.contentType;
      const res = await fetch(t.url + path, {
        method,
        headers,
        ...(o.body !== undefined && { body: o.body }),
      });
      return {
        status: res.status,
        contentType: res.headers.get('content-type') ?? '',
        text: await res.text(),
      };
    };
    const send = (body: unknown, contentType = 'application/json') =>
      raw('POST', '/api/v1/messages/send', {
        token: user.token,
        body: typeof body === 'string' ? body : JSON.stringify(body),
        contentType,
      });
    const valid = { title: 't', content: 'c', targetType: 'user', targetIds: [501] };

    /** Runs `fn` and asserts no table changed. */
    const nothingStored = async (fn: () => Promise<void>) => {
      const before = await rowCounts(t.app.store.db);
      await fn();
      assert.deepEqual(await rowCounts(t.app.store.db), before);
    };

    it('answers broken JSON with 400 40002', async () => {
      await nothingStored(async () => {
        assertErrorEnvelope(await send('{"title": "t", "content": '), 400, 40002);
        assertErrorEnvelope(await send('[1, 2'), 400, 40002);
      });
    });

    it('answers an empty JSON body with 400 40002', async () => {
      await nothingStored(async () => {
        assertErrorEnvelope(await send(''), 400, 40002);
      });
    });

    it('names the missing field in a 400 40001', async () => {
      await nothingStored(async () => {
        for (const field of ['title', 'content', 'targetType']) {
          const body: Record<string, unknown> = { ...valid };
          delete body[field];
          const e = assertErrorEnvelope(await send(body), 400, 40001);
          assert.deepEqual(e.data, { in: 'body', field: `/${field}` });
        }
      });
    });

    it('names the field with the wrong type in a 400 40001, without coercing', async () => {
      await nothingStored(async () => {
        const cases: Array<[Record<string, unknown>, string]> = [
          [{ ...valid, title: 123 }, '/title'],
          [{ ...valid, priority: 'high' }, '/priority'],
          [{ ...valid, priority: '3' }, '/priority'],
          [{ ...valid, targetIds: ['501'] }, '/targetIds/0'],
          [{ ...valid, targetIds: 501 }, '/targetIds'],
          [{ ...valid, targetType: 'group' }, '/targetType'],
          [{ ...valid, linkUrl: 'javascript:alert(1)' }, '/linkUrl'],
          [{ ...valid, expiresAt: 'tomorrow' }, '/expiresAt'],
          [{ ...valid, sneaky: true }, '/sneaky'],
        ];
        for (const [body, field] of cases) {
          const e = assertErrorEnvelope(await send(body), 400, 40001);
          assert.deepEqual(e.data, { in: 'body', field }, JSON.stringify(body));
        }
        const notObject = assertErrorEnvelope(await send('"just a string"'), 400, 40001);
        assert.deepEqual(notObject.data, { in: 'body', field: '/' });
      });
    });

    it('names unknown target ids in a 400 40003 to an admin only', async () => {
      await nothingStored(async () => {
        const r = await raw('POST', '/api/v1/messages/send', {
          token: t.adminToken,
          body: JSON.stringify({ ...valid, targetIds: [501, 9001, 9002] }),
          contentType: 'application/json',
        });
        const e = assertErrorEnvelope(r, 400, 40003);
        assert.deepEqual(e.data, { unknownIds: [9001, 9002] });
        assert.match(JSON.parse(r.text).message, /9001, 9002/);
        const generic = assertErrorEnvelope(
          await send({ ...valid, targetIds: [501, 9001, 9002] }),
          400,
          40003,
        );
        assert.equal(generic.data, null);
      });
    });

    it('answers more targets than the configured cap with 400 40006', async () => {
      await t.createUser('r2', { id: 502 });
      await t.createUser('r3', { id: 503 });
      await t.createUser('r4', { id: 504 });
      await nothingStored(async () => {
        assertErrorEnvelope(await send({ ...valid, targetIds: [501, 502, 503, 504] }), 400, 40006);
      });
    });

    it('answers targetType "user" without targets with 400', async () => {
      await nothingStored(async () => {
        assertErrorEnvelope(await send({ ...valid, targetIds: [] }), 400, 40001);
        const { targetIds: _omit, ...noTargets } = valid;
        assertErrorEnvelope(await send(noTargets), 400, 40001);
      });
    });

    it('answers a body over the limit with 413', async () => {
      await nothingStored(async () => {
        assertErrorEnvelope(await send({ ...valid, content: 'x'.repeat(70_000) }), 413, 413);
      });
    });

    it('answers text/plain and form bodies with 415', async () => {
      await nothingStored(async () => {
        assertErrorEnvelope(await send(JSON.stringify(valid), 'text/plain'), 415, 415);
        assertErrorEnvelope(await send('title=t&content=c', 'application/x-www-form-urlencoded'), 415, 415);
      });
    });

    it('rejects __proto__ and constructor.prototype payloads with 400 and pollutes nothing', async () => {
      await nothingStored(async () => {
        // Fastify's JSON parser refuses these keys; the answer is a malformed-body 400.
        const proto = `{"title":"t","content":"c","targetType":"user","targetIds":[501],"__proto__":{"polluted":"yes"}}`;
        assertErrorEnvelope(await send(proto), 400, 40002);
        const ctor = `{"title":"t","content":"c","targetType":"user","targetIds":[501],"constructor":{"prototype":{"polluted":"yes"}}}`;
        assertErrorEnvelope(await send(ctor), 400, 40002);
        const nested = `{"users":[{"id":9,"username":"p","__proto__":{"role":"admin"}}]}`;
        assertErrorEnvelope(
          await raw('POST', '/api/v1/users/bulk', {
            token: t.adminToken,
            body: nested,
            contentType: 'application/json',
          }),
          400,
        );
      });
      assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
    });

    it('answers a huge password with 400 before hashing it, at login, user creation and change', async () => {
      await nothingStored(async () => {
        const huge = 'p'.repeat(60_000); // under this app's 64 KiB body limit
        assertErrorEnvelope(
          await raw('POST', '/api/v1/auth/login', {
            body: JSON.stringify({ username: 'sender', password: 'q'.repeat(1025) }),
            contentType: 'application/json',
          }),
          400,
          40005,
        );
        for (const [method, path] of [
          ['POST', '/api/v1/users'],
          ['PATCH', '/api/v1/users/500'],
        ] as const) {
          const body = method === 'POST' ? { username: 'huge', password: huge } : { password: huge };
          assertErrorEnvelope(
            await raw(method, path, {
              token: t.adminToken,
              body: JSON.stringify(body),
              contentType: 'application/json',
            }),
            400,
          );
        }
      });
      const sender = await t.request<{ hasPassword: boolean }>('GET', '/api/v1/users/500', {
        token: t.adminToken,
      });
      assert.equal(sender.body.data.hasPassword, false, 'the user was not changed');
    });

    it('answers a malformed path id with 400 and an unknown route with the 404 envelope', async () => {
      assertErrorEnvelope(await raw('GET', '/api/v1/messages/abc', { token: user.token }), 400, 40001);
      assertErrorEnvelope(await raw('GET', '/api/v1/messages/0', { token: user.token }), 400, 40001);
      assertErrorEnvelope(await raw('GET', '/api/v1/nothing-here?token=secret'), 404, 404);
      assertErrorEnvelope(await raw('DELETE', '/api/v1/auth/login'), 404, 404);
    });

    it('answers a malformed URL and an over-long path parameter with the 400 envelope', async () => {
      assertErrorEnvelope(await raw('GET', '/api/v1/messages/%E0%A4%A', { token: user.token }), 400, 400);
      assertErrorEnvelope(
        await raw('GET', `/api/v1/messages/${'9'.repeat(300)}`, { token: user.token }),
        400,
      );
    });

    it('answers an unknown query parameter with 400 naming it', async () => {
      const e = assertErrorEnvelope(
        await raw('GET', '/api/v1/messages?page=2', { token: user.token }),
        400,
        40001,
      );
      assert.deepEqual(e.data, { in: 'querystring', field: '/page' });
    });

    it('answers an oversized broadcast payload with 400 and publishes nothing', async () => {
      await nothingStored(async () => {
        const r = await raw('POST', '/api/v1/ws/broadcast', {
          token: t.adminToken,
          body: JSON.stringify({ data: { title: 'big', content: 'x'.repeat(20_000) } }),
          contentType: 'application/json',
        });
        assertErrorEnvelope(r, 400, 40001);
      });
    });

    it('uses the envelope for 401, 403, 404, 409 and 429 as well', async () => {
      assertErrorEnvelope(await raw('GET', '/api/v1/auth/me'), 401, 401);
      assertErrorEnvelope(await raw('GET', '/api/v1/users', { token: user.token }), 403, 40301);
      assertErrorEnvelope(await raw('GET', '/api/v1/messages/424242', { token: user.token }), 404, 404);
      assertErrorEnvelope(
        await raw('POST', '/api/v1/users', {
          token: t.adminToken,
          body: JSON.stringify({ username: 'sender' }),
          contentType: 'application/json',
        }),
        409,
        40901,
      );
      let last: RawResponse | undefined;
      for (let i = 0; i <= t.config.auth.loginMaxFailures; i++) {
        last = await raw('POST', '/api/v1/auth/login', {
          body: JSON.stringify({ username: 'receiver', password: 'wrong-password' }),
          contentType: 'application/json',
        });
      }
      assert.ok(last);
      assertErrorEnvelope(last, 429, 42901);
    });
  });
}

describe('routes without a body accept an empty one sent as JSON', () => {
  let t: TestApp;
  before(async () => {
    t = await startApp();
  });
  after(async () => t.close());

  it('PUT …/read, PUT read-all and DELETE work with Content-Type: application/json and no body', async () => {
    const u = await t.createUser('empty-body');
    const ids: number[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await t.request<{ messageId: number }>('POST', '/api/v1/messages/send', {
        token: t.adminToken,
        body: { title: 't', content: 'c', targetType: 'user', targetIds: [u.id] },
      });
      ids.push(r.body.data.messageId);
    }
    const bare = (method: string, path: string) =>
      fetch(t.url + path, {
        method,
        headers: { authorization: `Bearer ${u.token}`, 'content-type': 'application/json' },
      });
    const [a, b] = ids as [number, number];
    assert.equal((await bare('PUT', `/api/v1/messages/${a}/read`)).status, 200);
    assert.equal((await bare('DELETE', `/api/v1/messages/${b}`)).status, 200);
    const unread = await t.request<{ count: number }>('GET', '/api/v1/messages/unread-count', {
      token: u.token,
    });
    assert.equal(unread.body.data.count, 1, 'one read, one deleted: the calls took effect');
    assert.equal((await t.request('GET', `/api/v1/messages/${b}`, { token: u.token })).status, 404);
    assert.equal((await bare('PUT', '/api/v1/messages/read-all')).status, 200);
    const after = await t.request<{ count: number }>('GET', '/api/v1/messages/unread-count', {
      token: u.token,
    });
    assert.equal(after.body.data.count, 0);
    // A route that takes a body still refuses an empty one.
    const send = await fetch(t.url + '/api/v1/messages/send', {
      method: 'POST',
      headers: { authorization: `Bearer ${t.adminToken}`, 'content-type': 'application/json' },
    });
    assert.equal(send.status, 400);
    assert.equal(((await send.json()) as { code: number }).code, 40002);
  });
});

describe('the error catalogue', () => {
  const entries = Object.entries(Errors);

  it('never reuses a code', () => {
    const codes = entries.map(([, e]) => e.code);
    assert.equal(new Set(codes).size, codes.length);
  });

  it('gives generic errors their status as code and specific ones status × 100 + n', () => {
    for (const [name, e] of entries) {
      assert.ok(e.status >= 400 && e.status <= 599, name);
      if (e.code < 1000) assert.equal(e.code, e.status, name);
      else assert.equal(Math.floor(e.code / 100), e.status, name);
      assert.ok(e.message.length > 0, name);
    }
  });

  it('is listed in full in docs/API.md, with the right status and name', () => {
    const doc = readFileSync(new URL('../../docs/API.md', import.meta.url), 'utf8');
    const rows = new Map<number, string>();
    for (const line of doc.split('\n')) {
      const m = /^\|\s*`?(\d{3,5})`?\s*\|\s*(\d{3})\s*\|\s*`?([A-Z_]+)`?\s*\|/.exec(line);
      if (m) rows.set(Number(m[1]), `${m[2]} ${m[3]}`);
    }
    for (const [name, e] of entries) {
      assert.equal(rows.get(e.code), `${e.status} ${name}`, `docs/API.md row for ${e.code} ${name}`);
    }
    for (const code of rows.keys()) assert.ok(CODES.has(code), `docs/API.md lists unknown code ${code}`);
  });
});
