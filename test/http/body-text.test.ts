import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { checkBodyText, MAX_BODY_DEPTH } from '../../src/http/body-text.ts';
import { isAppError } from '../../src/errors.ts';
import { startApp, type TestApp } from '../helpers/app.ts';
import { rowCounts } from '../helpers/store.ts';

/** A JSON text with a lone surrogate escape, exactly as an attacker sends it (JSON.stringify would too). */
const LONE = '"\\ud800"';
const LONE_LOW = '"x\\udc00y"';

describe('checkBodyText', () => {
  const refusal = (body: unknown) => {
    try {
      checkBodyText(body);
      return undefined;
    } catch (e) {
      assert.ok(isAppError(e));
      return e.data as { in: string; field: string };
    }
  };

  it('passes well-formed text, surrogate pairs included, and names the first bad string or key', () => {
    assert.equal(refusal({ a: ['😀', { b: 'é' }], n: 1, z: null, t: true }), undefined);
    assert.deepEqual(refusal(JSON.parse(`{"a":[1,{"b":${LONE}}]}`)), { in: 'body', field: '/a/1/b' });
    assert.deepEqual(refusal(JSON.parse(`{"x/y~":${LONE_LOW}}`)), { in: 'body', field: '/x~1y~0' });
    assert.deepEqual(refusal(JSON.parse(`{"data":{${LONE}:1}}`)), { in: 'body', field: '/data' });
    assert.deepEqual(refusal(JSON.parse(LONE)), { in: 'body', field: '/' });
  });

  it('bounds nesting without recursion', () => {
    const nest = (n: number) => JSON.parse(`${'['.repeat(n)}${']'.repeat(n)}`) as unknown;
    assert.equal(refusal(nest(MAX_BODY_DEPTH)), undefined);
    assert.ok(refusal(nest(MAX_BODY_DEPTH + 1)));
    assert.ok(refusal(nest(200_000)), 'a very deep body is refused, not a stack overflow');
  });
});

describe('text that is not valid Unicode, over HTTP', () => {
  let t: TestApp;
  let user: { id: number; token: string };
  before(async () => {
    t = await startApp();
    user = await t.createUser('writer', { id: 901 });
  });
  after(async () => t.close());

  /** Posts `text` byte for byte and asserts a 400 envelope naming `field`, with no table changed. */
  async function refused(
    method: string,
    path: string,
    text: string | Uint8Array,
    field: string | undefined,
    token = t.adminToken,
    code = 40001,
  ): Promise<void> {
    const before = await rowCounts(t.app.store.db);
    const res = await fetch(t.url + path, {
      method,
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: typeof text === 'string' ? text : new Uint8Array(text),
    });
    const body = (await res.json()) as { code: number; message: string; data: unknown };
    assert.equal(res.status, 400, `${path}: ${JSON.stringify(body)}`);
    assert.equal(body.code, code, JSON.stringify(body));
    if (field !== undefined) assert.deepEqual(body.data, { in: 'body', field });
    assert.deepEqual(await rowCounts(t.app.store.db), before, path);
  }

  it('refuses a lone surrogate in a message title, content or linkUrl', async () => {
    const send = '/api/v1/messages/send';
    const rest = `"targetType":"user","targetIds":[901]`;
    await refused('POST', send, `{"title":${LONE},"content":"c",${rest}}`, '/title', user.token);
    await refused('POST', send, `{"title":"t","content":${LONE_LOW},${rest}}`, '/content', user.token);
    await refused('POST', send, `{"title":"t","content":"c","linkUrl":"/a\\udfff",${rest}}`, '/linkUrl');
  });

  it('refuses it in user names, display names, bulk upserts, broadcasts and logins', async () => {
    await refused('POST', '/api/v1/users', `{"username":"u","displayName":${LONE}}`, '/displayName');
    await refused('POST', '/api/v1/users', `{"username":${LONE}}`, '/username');
    await refused('PATCH', `/api/v1/users/${user.id}`, `{"displayName":${LONE_LOW}}`, '/displayName');
    await refused(
      'POST',
      '/api/v1/users/bulk',
      `{"users":[{"id":950,"username":"ok"},{"id":951,"username":"b","displayName":${LONE}}]}`,
      '/users/1/displayName',
    );
    await refused(
      'POST',
      '/api/v1/ws/broadcast',
      `{"data":{"title":"t","content":${LONE}}}`,
      '/data/content',
    );
    await refused('POST', '/api/v1/ws/broadcast', `{"data":{${LONE}:"v"}}`, '/data');
    await refused('POST', '/api/v1/auth/login', `{"username":${LONE},"password":"whatever1"}`, '/username');
  });

  it('refuses a body that is not UTF-8 with 400 40002', async () => {
    const bytes = Buffer.concat([
      Buffer.from('{"title":"'),
      Buffer.from([0xff, 0xfe]),
      Buffer.from('","content":"c","targetType":"user","targetIds":[901]}'),
    ]);
    await refused('POST', '/api/v1/messages/send', bytes, undefined, user.token, 40002);
    // CESU-8 / encoded surrogates (ED A0 80) are not UTF-8 either.
    const cesu = Buffer.concat([
      Buffer.from('{"username":"'),
      Buffer.from([0xed, 0xa0, 0x80]),
      Buffer.from('"}'),
    ]);
    await refused('POST', '/api/v1/users', cesu, undefined, t.adminToken, 40002);
  });

  it('refuses a deeply nested broadcast with 400, not a 500, and keeps serving', async () => {
    const deep = `{"data":{"x":${'['.repeat(100_000)}${']'.repeat(100_000)}}}`;
    await refused('POST', '/api/v1/ws/broadcast', deep, undefined);
    assert.ok(!t.logs.some((l) => l.includes('unhandled error')), 'nothing reached the 500 handler');
    assert.equal((await fetch(`${t.url}/healthz`)).status, 200);
  });

  it('keeps well-formed text, surrogate pairs included, the same through REST', async () => {
    const title = 'ok 😀 é 中';
    const r = await t.request<{ messageId: number }>('POST', '/api/v1/messages/send', {
      token: t.adminToken,
      body: { title, content: '\ud83d\ude00', targetType: 'user', targetIds: [901] },
    });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const item = await t.request<{ title: string; content: string }>(
      'GET',
      `/api/v1/messages/${r.body.data.messageId}`,
      { token: user.token },
    );
    assert.equal(item.body.data.title, title);
    assert.equal(item.body.data.content, '😀');
  });
});
