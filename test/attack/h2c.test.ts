/**
 * Issue #11 item 7: a request that offers an upgrade other than WebSocket (`Upgrade: h2c`, as
 * `curl --http2 http://…` sends) is an ordinary HTTP request: Fastify serves it, body and keep-alive
 * included. Sent over raw sockets, through node:http and through curl. (fetch refuses to send an
 * Upgrade header at all.)
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { startApp, type TestApp } from '../helpers/app.ts';
import { rawHttp } from './raw.ts';

const OFFER =
  'Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n';

describe('requests offering a non-WebSocket upgrade are served as plain HTTP', () => {
  let t: TestApp;
  let userId: number;
  before(async () => {
    t = await startApp();
    userId = (await t.createUser('h2c-target')).id;
  });
  after(async () => t.close());

  const host = () => `Host: ${new URL(t.url).host}\r\n`;
  const sendBody = () =>
    JSON.stringify({ title: 'over h2c', content: 'body', targetType: 'user', targetIds: [userId] });
  const auth = () => `Authorization: Bearer ${t.adminToken}\r\n`;

  it('answers GET /healthz with 200, and the connection stays usable (keep-alive)', async () => {
    const get = `GET /healthz HTTP/1.1\r\n${host()}${OFFER}\r\n`;
    const [a, b] = await rawHttp(t.url, [get, get], 2);
    for (const res of [a, b]) {
      assert.equal(res?.status, 200);
      assert.equal((JSON.parse(res.body) as { code: number }).code, 0);
      assert.equal(res.headers['upgrade'], undefined, 'no 101, no upgrade');
    }
  });

  it('serves a POST with a JSON body sent in pieces (Content-Length)', async () => {
    const body = sendBody();
    const head =
      `POST /api/v1/messages/send HTTP/1.1\r\n${host()}${auth()}${OFFER}` +
      `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n`;
    const [res] = await rawHttp(t.url, [head + body.slice(0, 10), body.slice(10, 30), body.slice(30)]);
    assert.equal(res?.status, 200, res?.body);
    assert.equal(typeof (JSON.parse(res.body) as { data: { messageId: unknown } }).data.messageId, 'number');
  });

  it('serves a POST with a chunked body', async () => {
    const body = sendBody();
    const chunk = (s: string) => `${Buffer.byteLength(s).toString(16)}\r\n${s}\r\n`;
    const head =
      `POST /api/v1/messages/send HTTP/1.1\r\n${host()}${auth()}Connection: upgrade\r\nUpgrade: h2c\r\n` +
      'Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n';
    const [res] = await rawHttp(t.url, [head + chunk(body.slice(0, 7)), chunk(body.slice(7)), '0\r\n\r\n']);
    assert.equal(res?.status, 200, res?.body);
  });

  it('answers pipelined requests in order when the offer comes behind another request', async () => {
    const plain = `GET /api/v1/messages/unread-count HTTP/1.1\r\n${host()}${auth()}\r\n`;
    const offer = `GET /healthz HTTP/1.1\r\n${host()}Connection: upgrade\r\nUpgrade: foo/2\r\n\r\n`;
    const [first, second] = await rawHttp(t.url, [plain + offer], 2);
    assert.equal(first?.status, 200);
    assert.ok('count' in (JSON.parse(first.body) as { data: object }).data, first.body);
    assert.equal(second?.status, 200);
    assert.equal((JSON.parse(second.body) as { data: { status: string } }).data.status, 'ok');
  });

  it('still answers a WebSocket upgrade to a path without an endpoint with 404 and the envelope', async () => {
    const [res] = await rawHttp(t.url, [
      `GET /healthz HTTP/1.1\r\n${host()}Connection: Upgrade\r\nUpgrade: websocket\r\n` +
        'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
    ]);
    assert.equal(res?.status, 404);
    assert.equal((JSON.parse(res.body) as { code: number }).code, 404);
  });

  it('works for node:http clients that offer h2c', async () => {
    const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request(`${t.url}/healthz`, { headers: { connection: 'Upgrade', upgrade: 'h2c' } });
      req.on('response', (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('upgrade', () => reject(new Error('the server upgraded')));
      req.on('error', reject);
      req.end();
    });
    assert.equal(status, 200);
    assert.equal((JSON.parse(body) as { code: number }).code, 0);
  });

  it('works for curl --http2 on http://', async () => {
    const { stdout } = await promisify(execFile)('curl', [
      '--silent',
      '--show-error',
      '--http2',
      '--max-time',
      '10',
      '--write-out',
      '\n%{http_code} %{http_version}',
      `${t.url}/healthz`,
    ]);
    const [body, status] = stdout.split('\n');
    assert.equal(status, '200 1.1');
    assert.equal((JSON.parse(body ?? '') as { code: number }).code, 0);
  });
});
