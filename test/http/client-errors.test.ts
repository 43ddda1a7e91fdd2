/**
 * Issue #11 item 7: errors Node raises before a request exists (a bad Content-Length, Content-Length
 * with chunked encoding, headers too large or too slow, anything else the parser refuses) are answered in
 * the `{code,message,data}` envelope with the right status and `Connection: close`, over raw sockets
 * against a listening server, and the server goes on serving the next client.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startApp, type TestApp } from '../helpers/app.ts';

interface RawResponse {
  statusLine: string;
  headers: string;
  body: { code: number; message: string; data: unknown };
}

/** Writes `chunks` to a fresh connection and reads until the server closes it. */
function raw(port: number, chunks: string[], timeoutMs = 10_000): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let text = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`the server did not close the connection; got ${JSON.stringify(text)}`));
    }, timeoutMs);
    socket.on('connect', () => {
      for (const c of chunks) socket.write(c);
    });
    socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      // The last response on the connection is the client error's (an earlier one may precede it).
      const start = text.lastIndexOf('HTTP/1.1 ');
      const head = text.slice(start, text.indexOf('\r\n\r\n', start));
      const [statusLine = '', ...rest] = head.split('\r\n');
      try {
        resolve({
          statusLine,
          headers: rest.join('\n'),
          body: JSON.parse(text.slice(start + head.length + 4)),
        });
      } catch {
        reject(new Error(`not an envelope: ${JSON.stringify(text)}`));
      }
    });
  });
}

describe('client-level HTTP errors', () => {
  let t: TestApp;
  let port: number;
  before(async () => {
    t = await startApp();
    port = Number(new URL(t.url).port);
  });
  after(async () => t.close());

  const assertEnvelope = (r: RawResponse, status: number, code: number) => {
    assert.match(r.statusLine, new RegExp(`^HTTP/1\\.1 ${status} `));
    assert.match(r.headers, /^connection: close$/im);
    assert.match(r.headers, /^content-type: application\/json/im);
    assert.equal(r.body.code, code);
    assert.equal(typeof r.body.message, 'string');
    assert.equal(r.body.data, null);
  };

  const stillServes = async () => {
    const r = await t.request<{ status: string }>('GET', '/healthz');
    assert.equal(r.status, 200);
    assert.equal(r.body.data.status, 'ok');
  };

  it('answers a non-numeric Content-Length with 400 in the envelope', async () => {
    const r = await raw(port, ['POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\n\r\n']);
    assertEnvelope(r, 400, 400);
    assert.equal(r.body.message, 'invalid Content-Length header');
    await stillServes();
  });

  it('answers Content-Length together with chunked Transfer-Encoding with 400', async () => {
    const r = await raw(port, [
      'POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n' +
        'Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    ]);
    assertEnvelope(r, 400, 400);
    await stillServes();
  });

  it('answers headers over the size limit with 431', async () => {
    const r = await raw(port, [`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`]);
    assertEnvelope(r, 431, 431);
    await stillServes();
  });

  it('answers headers that arrive too slowly with 408', async () => {
    // The server's own timer, shortened for the test: Node reads headersTimeout at every check.
    const server = t.app.http.server;
    const previous = server.headersTimeout;
    server.headersTimeout = 1500;
    try {
      const r = await raw(port, ['GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: 1\r\n']);
      assertEnvelope(r, 408, 408);
    } finally {
      server.headersTimeout = previous;
    }
    await stillServes();
  });

  for (const [name, request] of [
    ['an unparsable request line', 'HELLO THERE\r\n\r\n'],
    ['an unknown HTTP version', 'GET /healthz HTTP/7.1\r\nHost: x\r\n\r\n'],
    ['a header name with a space', 'GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n'],
    ['a bad chunk size', 'POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n'],
    ['a control character in a header value', 'GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\u0001b\r\n\r\n'],
  ] as const) {
    it(`answers ${name} with 400 in the envelope`, async () => {
      const r = await raw(port, [request]);
      assertEnvelope(r, 400, 400);
      assert.equal(r.body.message.length > 0, true);
      await stillServes();
    });
  }

  it('answers a malformed second request on a kept-alive connection after the first response', async () => {
    const r = await raw(port, [
      'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n',
      'GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n',
    ]);
    assertEnvelope(r, 400, 400);
    await stillServes();
  });
});
