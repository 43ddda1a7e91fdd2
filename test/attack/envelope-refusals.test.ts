/**
 * Refusals that Node or ws would answer in their own shape (plain text or an empty body) get the
 * `{code,message,data}` envelope: a broken WebSocket handshake (checked before credentials, so a ticket
 * is not spent on it), a request without Host, an unknown Expect. Sent byte for byte over raw sockets.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startApp, type TestApp } from '../helpers/app.ts';
import { rawHttp, type RawResponse } from './raw.ts';

const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';

function envelope(res: RawResponse | undefined): { code: number; message: string } {
  assert.ok(res, 'an answer');
  assert.match(res.headers['content-type'] ?? '', /application\/json/);
  const body = JSON.parse(res.body) as { code: number; message: string; data: unknown };
  assert.equal(typeof body.code, 'number');
  assert.equal(typeof body.message, 'string');
  return body;
}

describe('refusals in the envelope', () => {
  let t: TestApp;
  let host: string;
  before(async () => {
    t = await startApp();
    host = new URL(t.url).host;
  });
  after(async () => t.close());

  const offer = (over: { method?: string; key?: string; version?: string; extra?: string; path?: string }) =>
    `${over.method ?? 'GET'} ${over.path ?? `/api/v1/ws/messages?token=${t.adminToken}`} HTTP/1.1\r\n` +
    `Host: ${host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
    `Sec-WebSocket-Key: ${over.key ?? KEY}\r\nSec-WebSocket-Version: ${over.version ?? '13'}\r\n` +
    `${over.extra ?? ''}\r\n`;

  const cases: Array<[string, Parameters<typeof offer>[0], number, RegExp]> = [
    ['a POST handshake', { method: 'POST' }, 405, /GET/],
    ['a missing key', { key: '' }, 400, /Sec-WebSocket-Key/],
    ['a short key', { key: 'c2hvcnQ=' }, 400, /Sec-WebSocket-Key/],
    ['version 12', { version: '12' }, 400, /Sec-WebSocket-Version/],
    ['a repeated sub-protocol', { extra: 'Sec-WebSocket-Protocol: p, p\r\n' }, 400, /Sec-WebSocket-Protocol/],
    ['a sub-protocol that is not a token', { extra: 'Sec-WebSocket-Protocol: a b\r\n' }, 400, /Protocol/],
  ];
  for (const [what, over, status, message] of cases) {
    it(`answers ${what} with ${status} and the envelope`, async () => {
      const [res] = await rawHttp(t.url, [offer(over)]);
      assert.equal(res?.status, status);
      const body = envelope(res);
      assert.equal(body.code, status);
      assert.match(body.message, message);
      assert.notEqual(res?.status, 101);
    });
  }

  it('checks the handshake before the ticket: a broken offer does not spend it', async () => {
    const r = await t.request<{ ticket: string }>('POST', '/api/v1/ws/ticket', { token: t.adminToken });
    const path = `/api/v1/ws/messages?ticket=${r.body.data.ticket}`;
    const [bad] = await rawHttp(t.url, [offer({ path, key: 'nope' })]);
    assert.equal(bad?.status, 400);
    const [good] = await rawHttp(t.url, [offer({ path })]);
    assert.equal(good?.status, 101, 'the ticket still works');
  });

  it('answers an HTTP/1.1 request without Host with 400 and the envelope, and keeps serving', async () => {
    const [res] = await rawHttp(t.url, ['GET /healthz HTTP/1.1\r\n\r\n']);
    assert.equal(res?.status, 400);
    assert.match(envelope(res).message, /Host/);
    const [upgrade] = await rawHttp(t.url, [offer({}).replace(`Host: ${host}\r\n`, '')]);
    assert.equal(upgrade?.status, 400);
    assert.match(envelope(upgrade).message, /Host/);
    assert.equal((await fetch(`${t.url}/healthz`)).status, 200);
  });

  it('still serves HTTP/1.0 without Host', async () => {
    const [res] = await rawHttp(t.url, ['GET /healthz HTTP/1.0\r\n\r\n']);
    assert.equal(res?.status, 200);
  });

  it('answers an unknown Expect with 417 and the envelope', async () => {
    const [res] = await rawHttp(t.url, [`GET /healthz HTTP/1.1\r\nHost: ${host}\r\nExpect: abc\r\n\r\n`]);
    assert.equal(res?.status, 417);
    assert.equal(envelope(res).code, 417);
  });

  it('still honours Expect: 100-continue', async () => {
    const body = JSON.stringify({ username: 'admin', password: 'wrong-password' });
    const [cont, res] = await rawHttp(
      t.url,
      [
        `POST /api/v1/auth/login HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\n` +
          `Content-Length: ${body.length}\r\nExpect: 100-continue\r\n\r\n`,
        body,
      ],
      2,
    );
    assert.equal(cont?.status, 100);
    assert.equal(res?.status, 401);
  });
});
