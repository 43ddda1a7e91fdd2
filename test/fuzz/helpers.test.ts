/**
 * The fuzz suite's own tools, checked against known bytes: if the frame encoder, the response parser or
 * the route list were wrong, the fuzzers would send or judge something else than they claim.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as ws from 'ws';
import { closeCodeOf, decodeFrames, encodeFrame, parseResponses, showBytes } from './raw.ts';
import { parseRouteTree, readSurface } from './surface.ts';

interface WsReceiver {
  on(event: 'message', listener: (data: Buffer) => void): void;
  on(event: 'error', listener: (err: Error & { code?: string }) => void): void;
  write(chunk: Buffer, cb: (err?: Error & { code?: string }) => void): void;
}
// ws exports its frame parser at run time; @types/ws does not declare it.
const Receiver = (ws as unknown as { Receiver: new (o: object) => WsReceiver }).Receiver;

/** What ws's own parser makes of `bytes` (as a server reads them). */
function wsReads(bytes: Buffer): Promise<{ messages: string[]; error?: string }> {
  return new Promise((resolve) => {
    const messages: string[] = [];
    const r = new Receiver({ isServer: true, maxPayload: 1 << 20 });
    r.on('message', (data) => messages.push(data.toString()));
    r.on('error', (err) => resolve({ messages, error: err.code ?? err.message }));
    r.write(bytes, (err) => resolve({ messages, ...(err && { error: err.code ?? err.message }) }));
  });
}

describe('fuzz helpers', () => {
  it('encodes masked text frames, fragments and lengths of every size as ws reads them', async () => {
    for (const size of [0, 125, 126, 65_535, 65_536]) {
      const text = 'é'.repeat(size / 2) + 'x'.repeat(size % 2);
      const r = await wsReads(
        encodeFrame({ fin: true, rsv: 0, opcode: 1, mask: true, payload: Buffer.from(text) }),
      );
      assert.deepEqual(r, { messages: [text] }, `size ${size}`);
    }
    const first = encodeFrame({ fin: false, rsv: 0, opcode: 1, mask: true, payload: Buffer.from('ab') });
    const rest = encodeFrame({ fin: true, rsv: 0, opcode: 0, mask: true, payload: Buffer.from('cd') });
    assert.deepEqual(await wsReads(Buffer.concat([first, rest])), { messages: ['abcd'] });
  });

  it('can lie: no mask, reserved bits and opcodes, and a declared length over the limit are refused by ws', async () => {
    const p = Buffer.from('{}');
    const refusals = await Promise.all([
      wsReads(encodeFrame({ fin: true, rsv: 0, opcode: 1, mask: false, payload: p })),
      wsReads(encodeFrame({ fin: true, rsv: 2, opcode: 1, mask: true, payload: p })),
      wsReads(encodeFrame({ fin: true, rsv: 0, opcode: 3, mask: true, payload: p })),
      wsReads(encodeFrame({ fin: true, rsv: 0, opcode: 1, mask: true, payload: p, declaredLength: 2 ** 32 })),
    ]);
    assert.deepEqual(
      refusals.map((r) => r.error),
      [
        'WS_ERR_EXPECTED_MASK',
        'WS_ERR_UNEXPECTED_RSV_2_3',
        'WS_ERR_INVALID_OPCODE',
        'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH',
      ],
    );
  });

  it('splits pipelined responses (Content-Length, chunked, HEAD, 100 Continue) and reads close frames', () => {
    const bytes = Buffer.from(
      'HTTP/1.1 100 Continue\r\n\r\n' +
        'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello' +
        'HTTP/1.1 500 Internal Server Error\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n' +
        'HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\n{}',
    );
    const r = parseResponses(bytes);
    assert.deepEqual(
      r.map((x) => [x.status, x.body.toString()]),
      [
        [100, ''],
        [200, 'hello'],
        [500, 'abc'],
        [404, '{}'],
      ],
    );
    const head = parseResponses(
      Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nHTTP/1.1 503 x\r\n\r\n'),
      true,
    );
    assert.deepEqual(
      head.map((x) => x.status),
      [200, 503],
    );
    const close = Buffer.from([0x88, 0x02, 0x03, 0xf3]);
    assert.equal(closeCodeOf(decodeFrames(close)), 1011);
  });

  it('reads every route the app registers, hidden ones and path parameters included', async () => {
    assert.deepEqual(
      parseRouteTree('└── / (GET)\n    ├── a (POST)\n    │   └── /:id (GET, PATCH)\n    └── b'),
      [
        { method: 'GET', path: '/' },
        { method: 'POST', path: '/a' },
        { method: 'GET', path: '/a/:id' },
        { method: 'PATCH', path: '/a/:id' },
      ],
    );
    const s = await readSurface();
    const names = s.routes.map((r) => `${r.method} ${r.path}`);
    for (const r of [
      'GET /healthz',
      'PATCH /api/v1/users/:id',
      'POST /api/v1/messages/send',
      'GET /assets/:file',
    ])
      assert.ok(names.includes(r), `${r} is fuzzed`);
    assert.ok(s.bodyKeys.includes('targetIds') && s.enums.includes('admin'));
  });

  it('shows long inputs folded', () => {
    assert.equal(showBytes(Buffer.from(`${'['.repeat(5000)}1`)), '"⟨\\"[\\"×5000⟩1" (5001 bytes)');
  });
});
