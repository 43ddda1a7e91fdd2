/**
 * Generators for the WebSocket endpoint: raw handshakes (paths, query strings with since/token/ticket,
 * Upgrade/Connection variants incl. h2c, versions, keys, sub-protocol lists, origins) and raw frame
 * sequences after a valid handshake (any opcode, RSV bits, fragments, mask or none, lying lengths,
 * invalid UTF-8, JSON of random shape, depth and size), sent at different moments of the connection.
 */
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { FrameType, InboundType } from '../../src/protocol.ts';
import { WS_PATH } from '../../src/realtime/upgrade.ts';
import type { Tokens } from './harness.ts';
import { mostly } from './http-gen.ts';
import { encodeFrame, type FrameSpec } from './raw.ts';

/** A credential, resolved at run time: a fresh ticket is fetched over REST for `ticket`. */
export type Cred = 'none' | 'user' | 'admin' | 'forged' | 'expired' | 'garbage' | 'ticket' | 'used-ticket';
export type Since = 'none' | 'valid' | 'future' | 'foreign' | 'garbage' | 'empty' | 'huge';

export interface HandshakeCase {
  method: string;
  path: string;
  query: Array<[string, string | Cred]>;
  since: Since;
  host: string | null;
  headers: Array<[string, string]>;
  /** Where the credential goes (besides any in `query`). */
  credIn: 'subprotocol' | 'header' | 'query' | 'ticket' | 'nowhere';
  cred: Cred;
  version: string;
}

export interface Resolved {
  tokens: Tokens;
  cursor: string;
  ticket: () => Promise<string>;
}

const key = () => randomBytes(16).toString('base64');

export const handshakeArb: fc.Arbitrary<HandshakeCase> = fc.record({
  method: mostly('GET', ['POST', 'HEAD', 'OPTIONS', 'get']),
  path: mostly(
    WS_PATH,
    [
      `${WS_PATH}/`,
      `/${WS_PATH}`,
      WS_PATH.toUpperCase(),
      WS_PATH.replace('ws', '%77s'),
      `http://127.0.0.1${WS_PATH}`,
      `ws://a:99999${WS_PATH}`,
      '//a:99999/',
      '//[::1/',
      'http://[::1',
      '*',
      '/',
      '/healthz',
      `${WS_PATH}%00`,
      `${WS_PATH}#x`,
      `${WS_PATH}/../messages`,
    ],
    40,
  ),
  query: fc.oneof(
    { weight: 2, arbitrary: fc.constant<Array<[string, string]>>([]) },
    {
      weight: 1,
      arbitrary: fc.array<[string, string]>(
        fc.tuple(
          fc.constantFrom<string>('token', 'ticket', 'since', 'TOKEN', '%74oken', 'x', ''),
          fc.oneof<fc.Arbitrary<string>[]>(
            fc.constantFrom<Cred>('user', 'admin', 'forged', 'expired', 'garbage', 'ticket', 'used-ticket'),
            fc.constantFrom('', '%', '%ZZ', '%E0%A4%A', 'a'.repeat(9000), '000000000000.1', '.'),
          ),
        ),
        { minLength: 1, maxLength: 2 },
      ),
    },
  ),
  since: fc.constantFrom<Since>('none', 'none', 'valid', 'future', 'foreign', 'garbage', 'empty', 'huge'),
  host: mostly<string | null>('127.0.0.1', [null, 'a:99999', '[::1', '']),
  headers: fc
    .record({
      upgrade: mostly<string | null>('websocket', ['WebSocket', 'h2c', 'websocket, h2c', 'foo', null]),
      connection: mostly<string | null>('Upgrade', [
        'keep-alive, Upgrade',
        'upgrade',
        'close',
        'Upgrade, HTTP2-Settings',
        null,
      ]),
      version: mostly<string | null>('13', ['8', '', '13, 8', 'abc', null]),
      key: mostly<string | null>('good', ['short', 'garbage', 'two', null]),
      origin: fc.constantFrom(
        null,
        null,
        'http://127.0.0.1',
        'http://evil.example',
        'null',
        '%%',
        'http://[::1',
      ),
      extensions: fc.constantFrom(
        null,
        null,
        'permessage-deflate; client_max_window_bits',
        'permessage-deflate; server_max_window_bits=7',
        'x; ;;',
        'permessage-deflate, permessage-deflate',
      ),
      protocolExtra: fc.constantFrom(null, null, ', ,', 'a,b,c', 'skypush.v1', `${'p,'.repeat(3000)}p`),
    })
    .map((h) => {
      const out: Array<[string, string]> = [];
      if (h.upgrade !== null) out.push(['Upgrade', h.upgrade]);
      if (h.connection !== null) out.push(['Connection', h.connection]);
      if (h.version !== null) out.push(['Sec-WebSocket-Version', h.version]);
      if (h.key === 'good' || h.key === 'two') out.push(['Sec-WebSocket-Key', key()]);
      if (h.key === 'two') out.push(['Sec-WebSocket-Key', key()]);
      if (h.key === 'short') out.push(['Sec-WebSocket-Key', 'c2hvcnQ=']);
      if (h.key === 'garbage') out.push(['Sec-WebSocket-Key', '!!not base64!!']);
      if (h.origin !== null) out.push(['Origin', h.origin]);
      if (h.extensions !== null) out.push(['Sec-WebSocket-Extensions', h.extensions]);
      if (h.protocolExtra !== null) out.push(['Sec-WebSocket-Protocol', h.protocolExtra]);
      return out;
    }),
  credIn: fc.constantFrom('subprotocol', 'subprotocol', 'header', 'query', 'ticket', 'nowhere'),
  cred: fc.constantFrom<Cred>('user', 'user', 'admin', 'forged', 'expired', 'garbage', 'none'),
  version: fc.constantFrom('HTTP/1.1', 'HTTP/1.1', 'HTTP/1.1', 'HTTP/1.0', 'HTTP/2.0'),
});

async function credValue(c: Cred | string, r: Resolved): Promise<string> {
  if (c === 'user' || c === 'admin' || c === 'forged' || c === 'expired') return r.tokens[c];
  if (c === 'garbage') return 'a.b.c';
  if (c === 'none') return '';
  if (c === 'ticket') return r.ticket();
  if (c === 'used-ticket') return 'dXNlZC10aWNrZXQtdGhhdC1kb2VzLW5vdC1leGlzdA';
  return c;
}

function sinceValue(s: Since, cursor: string): string | undefined {
  const epoch = cursor.split('.')[0] ?? '';
  const values: Record<Since, string | undefined> = {
    none: undefined,
    valid: cursor,
    future: `${epoch}.999999999999999`,
    foreign: '000000000000.1',
    garbage: '%E0%A4%A',
    empty: '',
    huge: `${epoch}.${'9'.repeat(400)}`,
  };
  return values[s];
}

/** The handshake's bytes (tokens and tickets resolved now). */
export async function renderHandshake(h: HandshakeCase, r: Resolved): Promise<Buffer> {
  const q: string[] = [];
  for (const [k, v] of h.query) q.push(`${k}=${await credValue(v, r)}`);
  const since = sinceValue(h.since, r.cursor);
  if (since !== undefined) q.push(`since=${since}`);
  const cred = await credValue(h.cred, r);
  if (h.credIn === 'query') q.push(`token=${cred}`);
  if (h.credIn === 'ticket') q.push(`ticket=${await credValue('ticket', r)}`);
  const headers = [...(h.host !== null ? [['Host', h.host]] : []), ...h.headers];
  if (h.credIn === 'header') headers.push(['Authorization', `Bearer ${cred}`]);
  if (h.credIn === 'subprotocol') headers.push(['Sec-WebSocket-Protocol', `skypush.v1, ${cred}`]);
  const target = q.length ? `${h.path}?${q.join('&')}` : h.path;
  const head = [`${h.method} ${target} ${h.version}`, ...headers.map(([k, v]) => `${k}: ${v}`)];
  return Buffer.from(`${head.join('\r\n')}\r\n\r\n`, 'latin1');
}

/** A valid handshake for `token` (what the frame fuzzer opens before it misbehaves). */
export function validHandshake(token: string, since?: string): Buffer {
  const q = since ? `?since=${since}` : '';
  return Buffer.from(
    `GET ${WS_PATH}${q} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${key()}\r\nSec-WebSocket-Protocol: skypush.v1, ${token}\r\n\r\n`,
  );
}

// ---- frames -----------------------------------------------------------------------------------------

const TYPES = [...Object.values(InboundType), ...Object.values(FrameType)];

/** JSON text of random shape; `type` usually one the server knows. */
const jsonText: fc.Arbitrary<string> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc
      .record(
        {
          type: fc.oneof(
            fc.constantFrom(...TYPES),
            fc.string({ maxLength: 60 }),
            fc.jsonValue({ maxDepth: 1 }),
          ),
          data: fc.jsonValue({ maxDepth: 4 }),
          timestamp: fc.jsonValue({ maxDepth: 0 }),
        },
        { requiredKeys: [] },
      )
      .map((o) => JSON.stringify(o)),
  },
  { weight: 2, arbitrary: fc.jsonValue().map((v) => JSON.stringify(v) ?? 'null') },
  {
    weight: 3,
    arbitrary: fc
      .record({
        type: fc.constantFrom(...TYPES),
        depth: fc.integer({ min: 1, max: 20_000 }),
        open: fc.constantFrom('[', '{"a":'),
      })
      .map(({ type, depth, open }) => {
        const close = open === '[' ? ']' : '}';
        return `{"type":"${type}","data":${open.repeat(depth)}0${close.repeat(depth)}}`;
      }),
  },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.constantFrom(...TYPES), fc.integer({ min: 9_000, max: 70_000 }))
      .map(([type, n]) => `{"type":"${type}","data":"${'x'.repeat(n)}"}`),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      '{"type":"HEARTBEAT","data":"\\ud800"}',
      '{"type":"\\udfff"}',
      '{"__proto__":{"type":1}}',
    ),
  },
  {
    weight: 1,
    arbitrary: fc.tuple(fc.jsonValue(), fc.nat()).map(([v, n]) => {
      const j = JSON.stringify(v) ?? '';
      return j.slice(0, n % (j.length + 1));
    }),
  },
);

const payloadArb: fc.Arbitrary<Buffer> = fc.oneof(
  { weight: 8, arbitrary: jsonText.map((t) => Buffer.from(t)) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)) },
  // Invalid UTF-8: a lone continuation byte, an overlong form, a CESU surrogate, a cut sequence.
  {
    weight: 1,
    arbitrary: fc
      .constantFrom('\x80', '\xc0\xaf', '\xed\xa0\x80', '{"type":"\xe2\x82"}')
      .map((s) => Buffer.from(s, 'latin1')),
  },
  { weight: 1, arbitrary: fc.constant(Buffer.alloc(0)) },
);

const closePayload: fc.Arbitrary<Buffer> = fc
  .tuple(
    fc.constantFrom(0, 999, 1000, 1004, 1005, 1006, 1011, 1015, 2999, 3000, 4999, 5000, 65535),
    fc.constantFrom('', 'bye', '\xff', 'r'.repeat(200)),
  )
  .map(([code, reason]) => {
    const b = Buffer.alloc(2);
    b.writeUInt16BE(code);
    return Buffer.concat([b, Buffer.from(reason, 'latin1')]);
  });

export const frameArb: fc.Arbitrary<FrameSpec> = fc
  .record({
    opcode: fc.oneof(
      { weight: 30, arbitrary: fc.constant(1) },
      { weight: 3, arbitrary: fc.constantFrom(0, 2, 8, 9, 10) },
      { weight: 1, arbitrary: fc.integer({ min: 0, max: 15 }) },
    ),
    fin: fc.oneof({ weight: 20, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
    rsv: fc.oneof(
      { weight: 40, arbitrary: fc.constant(0) },
      { weight: 1, arbitrary: fc.integer({ min: 1, max: 7 }) },
    ),
    mask: fc.oneof(
      { weight: 40, arbitrary: fc.constant(true) },
      { weight: 1, arbitrary: fc.constant(false) },
    ),
    payload: payloadArb,
    close: closePayload,
    lie: fc.oneof(
      { weight: 40, arbitrary: fc.constant(undefined) },
      {
        weight: 1,
        arbitrary: fc.constantFrom(0, 1, 125, 126, 65_535, 65_536, 2 ** 32, Number.MAX_SAFE_INTEGER),
      },
    ),
  })
  .map((f) => ({
    fin: f.fin,
    rsv: f.rsv,
    opcode: f.opcode,
    mask: f.mask,
    payload: f.opcode === 8 ? f.close : f.payload,
    ...(f.lie !== undefined && { declaredLength: f.lie }),
  }));

/** When the frames go out: with the handshake, right after the 101, after CONNECTED, or after our close. */
export type Moment = 'with-handshake' | 'before-connected' | 'after-connected' | 'after-close';

export interface FrameCase {
  moment: Moment;
  frames: FrameSpec[];
  cred: 'user' | 'admin';
  resume: boolean;
}

export const frameCaseArb: fc.Arbitrary<FrameCase> = fc.record({
  moment: fc.constantFrom<Moment>(
    'with-handshake',
    'before-connected',
    'after-connected',
    'after-connected',
    'after-close',
  ),
  frames: fc.array(frameArb, { minLength: 1, maxLength: 8 }),
  cred: fc.constantFrom('user', 'admin'),
  resume: fc.boolean(),
});

export const renderFrames = (frames: FrameSpec[]): Buffer => Buffer.concat(frames.map(encodeFrame));
