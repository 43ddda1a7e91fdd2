/**
 * Generators of raw HTTP/1.x requests over the app's own routes: odd methods and versions, request
 * targets (filled templates, `//host:port/` and absolute forms, %-escapes, over-long lines, raw high
 * bytes), headers (Host variants, duplicates, odd casing, Content-Length/Transfer-Encoding combinations,
 * huge and non-ASCII values, Upgrade offers), credentials and bodies (JSON of the schemas' names with
 * wrong types, truncated, deeply nested, lone surrogates, invalid UTF-8, over the body limit).
 */
import fc from 'fast-check';
import type { Tokens } from './harness.ts';
import type { Route, Surface } from './surface.ts';

export type Auth = 'none' | 'user' | 'admin' | 'forged' | 'expired' | 'garbage' | 'basic' | 'both';
export type Framing = 'cl' | 'none' | 'chunked' | 'cl+te' | 'bad-cl' | 'dup-cl' | 'short' | 'long' | 'odd-te';

/** One request, symbolic where the value is only known at run time (tokens). */
export interface HttpCase {
  method: string;
  target: string;
  version: string;
  host: string | null;
  auth: Auth;
  headers: Array<[string, string]>;
  body: string;
  /** The body's bytes are `body` in latin1 (raw bytes) rather than UTF-8. */
  rawBody: boolean;
  framing: Framing;
  badCl: string;
  eol: '\r\n' | '\n';
  /** A second request pipelined behind this one. */
  pipelined: boolean;
}

/** Percent-encodes the UTF-8 bytes of `s` (a lone surrogate becomes EF BF BD, as Buffer encodes it). */
const pct = (s: string): string =>
  [...Buffer.from(s)]
    .map((b) =>
      /[A-Za-z0-9_.~-]/.test(String.fromCharCode(b))
        ? String.fromCharCode(b)
        : `%${b.toString(16).padStart(2, '0').toUpperCase()}`,
    )
    .join('');

/**
 * `usual` most of the time, one of `odd` otherwise: each request breaks at most a few rules, so most of
 * them get past the HTTP parser and reach routing, validation and the handlers.
 */
export function mostly<T>(usual: T, odd: T[], oddPercent = 10): fc.Arbitrary<T> {
  return fc.oneof(
    { arbitrary: fc.constant(usual), weight: 100 - oddPercent },
    { arbitrary: fc.constantFrom(...odd), weight: oddPercent },
  );
}

/** Lone surrogates and other code units that JSON allows escaped but Unicode does not. */
const surrogate = fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c));
const oddText = fc.oneof(
  fc.string({ maxLength: 20 }),
  fc.string({ unit: 'binary', maxLength: 20 }),
  fc.tuple(fc.string({ maxLength: 5 }), surrogate, fc.string({ maxLength: 5 })).map((p) => p.join('')),
  fc.constantFrom(
    '',
    ' ',
    '\u0000',
    '\\',
    '//evil.example',
    'javascript:alert(1)',
    '\u202e',
    '🙂',
    'a'.repeat(300),
  ),
);
/** Long enough to pass a field's maxLength or the 16 KiB header limit. */
const longText = fc.integer({ min: 1, max: 70_000 }).map((n) => 'x'.repeat(n));
const idValue = fc.oneof(
  fc.integer({ min: -2, max: 60 }),
  fc.constantFrom(0, -1, 2 ** 31, 2 ** 53, 1e21, 1.5, Number.MAX_SAFE_INTEGER, 999_999_999_999_999),
);
/** A path segment where a template has `:param` or `*`. */
const segment = fc.oneof(
  idValue.map(String),
  fc.constantFrom(
    'abc',
    '',
    '%00',
    '%ZZ',
    '%',
    '..',
    '%2e%2e',
    '%2F',
    '1e3',
    '0x10',
    '-0',
    ' 1',
    '１',
    '1;x',
  ),
  fc.integer({ min: 1, max: 5000 }).map((n) => '9'.repeat(n)),
  fc.string({ unit: 'grapheme-ascii', maxLength: 12 }).map(pct),
);

function valueArb(s: Surface): fc.Arbitrary<unknown> {
  const leaf = fc.oneof(
    { arbitrary: fc.constantFrom(...s.enums), weight: 3 },
    { arbitrary: idValue, weight: 3 },
    { arbitrary: oddText, weight: 3 },
    { arbitrary: longText, weight: 1 },
    { arbitrary: fc.constantFrom(null, true, false, {}, [], '1', -0), weight: 2 },
    { arbitrary: fc.array(idValue, { maxLength: 5 }), weight: 2 },
    { arbitrary: fc.constant('2999-01-01T00:00:00Z'), weight: 1 },
  );
  return fc.oneof(
    { arbitrary: leaf, weight: 6 },
    { arbitrary: fc.jsonValue({ maxDepth: 3 }), weight: 1 },
    {
      arbitrary: fc.array(fc.dictionary(fc.constantFrom(...s.bodyKeys), leaf, { maxKeys: 4 }), {
        maxLength: 3,
      }),
      weight: 1,
    },
  );
}

/** JSON-ish bodies, from almost right to plainly wrong. */
export function bodyArb(s: Surface): fc.Arbitrary<{ body: string; rawBody: boolean }> {
  const utf8 = (a: fc.Arbitrary<string>) => a.map((body) => ({ body, rawBody: false }));
  const object = fc.dictionary(fc.constantFrom(...s.bodyKeys), valueArb(s), { maxKeys: 8 });
  const nest = fc.record({
    depth: fc.integer({ min: 1, max: 20_000 }),
    open: fc.constantFrom('[', '{"a":', '{"data":['),
  });
  return fc.oneof(
    { arbitrary: utf8(object.map((o) => JSON.stringify(o))), weight: 8 },
    { arbitrary: utf8(fc.constant('')), weight: 1 },
    { arbitrary: utf8(fc.jsonValue().map((v) => JSON.stringify(v) ?? 'null')), weight: 2 },
    {
      arbitrary: utf8(
        fc.tuple(object, fc.nat()).map(([o, n]) => {
          const j = JSON.stringify(o);
          return j.slice(0, n % (j.length + 1));
        }),
      ),
      weight: 2,
    },
    {
      arbitrary: utf8(
        nest.map(({ depth, open }) => {
          const close = open === '[' ? ']' : open === '{"a":' ? '}' : ']}';
          return `{"title":${open.repeat(depth)}1${close.repeat(depth)}}`;
        }),
      ),
      weight: 2,
    },
    // Raw bytes: invalid UTF-8, a CESU-encoded lone surrogate inside a JSON string, NULs.
    {
      arbitrary: fc
        .oneof(
          fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b).toString('latin1')),
          fc.constantFrom('{"title":"\xed\xa0\x80","content":"c"}', '{"title":"\xff\xfe"}', '{"a":1}\x00'),
        )
        .map((body) => ({ body, rawBody: true })),
      weight: 2,
    },
    {
      arbitrary: utf8(
        fc.integer({ min: 1_048_000, max: 1_100_000 }).map((n) => `{"title":"${'x'.repeat(n)}"}`),
      ),
      weight: 1,
    },
  );
}

function targetArb(routes: Route[], s: Surface): fc.Arbitrary<{ method: string; target: string }> {
  const route = fc.constantFrom(...routes);
  const query = fc.array(
    fc.tuple(
      fc.oneof(fc.constantFrom(...s.queryKeys), oddText.map(pct)),
      fc.oneof(segment, oddText.map(pct)),
    ),
    { maxLength: 4 },
  );
  const filled = fc
    .tuple(route, fc.array(segment, { minLength: 2, maxLength: 2 }), query)
    .map(([r, params, q]) => {
      let i = 0;
      const path = r.path.replace(/:[A-Za-z]+|\*/g, () => params[i++ % params.length] as string);
      const qs = q.map(([k, v]) => `${k}=${v}`).join('&');
      return { method: r.method, path: qs ? `${path}?${qs}` : path };
    });
  const mutate = mostly<(p: string) => string>(
    (p) => p,
    [
      (p: string) => `/${p}`,
      (p: string) => `//a:99999${p}`,
      (p: string) => `//${p}`,
      (p: string) => `http://127.0.0.1${p}`,
      (p: string) => `http://a:99999${p}`,
      (p: string) => `https://[::1${p}`,
      (p: string) => `${p}/`,
      (p: string) => `${p}#frag`,
      (p: string) => p.replace(/[a-z]/, (c) => `%${c.charCodeAt(0).toString(16)}`),
      (p: string) => p.replace(/\//g, '%2F'),
      (p: string) => p.replace(/\/([^/]*)$/, '/%E0%A4%A$1'),
      (p: string) => `${p}\xff\xfe`,
      (p: string) => p.toUpperCase(),
      (p: string) => `${p}?${'a'.repeat(20_000)}`,
      (p: string) => `${p}${'/x'.repeat(40_000)}`,
      () => '*',
      () => '',
    ],
    30,
  );
  const method = fc.oneof(
    { arbitrary: fc.constant(undefined), weight: 30 },
    {
      arbitrary: fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS', 'TRACE'),
      weight: 2,
    },
    { arbitrary: fc.constantFrom('CONNECT', 'PRI', 'get', 'FOO', 'G\xc9T', ''), weight: 1 },
  );
  return fc
    .tuple(filled, mutate, method)
    .map(([f, m, override]) => ({ method: override ?? f.method, target: m(f.path) }));
}

const headerName = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.constantFrom(
      'X-Odd',
      'content-type',
      'CONTENT-TYPE',
      'Origin',
      'Expect',
      'Accept',
      'x-forwarded-for',
      'Cookie',
    ),
  },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 12 }) },
);
const headerValue = fc.oneof(
  { arbitrary: fc.string({ unit: 'grapheme-ascii', maxLength: 30 }), weight: 12 },
  {
    arbitrary: fc.constantFrom('100-continue', 'null', 'http://evil.example', '1.2.3.4, 5.6.7.8', 'gzip'),
    weight: 2,
  },
  {
    arbitrary: fc.uint8Array({ minLength: 1, maxLength: 30 }).map((b) => Buffer.from(b).toString('latin1')),
    weight: 1,
  },
  { arbitrary: fc.integer({ min: 8_000, max: 70_000 }).map((n) => 'h'.repeat(n)), weight: 1 },
);

export function httpCaseArb(s: Surface): fc.Arbitrary<HttpCase> {
  const contentType = fc.constantFrom(
    ['content-type', 'application/json'],
    ['content-type', 'application/json'],
    ['Content-Type', 'application/json; charset=utf-8'],
    ['content-type', 'APPLICATION/JSON'],
    ['content-type', 'text/plain'],
    ['content-type', 'multipart/form-data; boundary=x'],
    ['content-type', 'application/x-www-form-urlencoded'],
    ['content-type', ''],
  ) as fc.Arbitrary<[string, string]>;
  const upgrade = fc.constantFrom(
    [],
    [],
    [],
    [
      ['Connection', 'Upgrade, HTTP2-Settings'],
      ['Upgrade', 'h2c'],
      ['HTTP2-Settings', 'AAMAAABkAAQAoAAAAAIAAAAA'],
    ],
    [
      ['connection', 'upgrade'],
      ['upgrade', 'websocket'],
    ],
    [['Upgrade', 'h2c']],
  ) as fc.Arbitrary<Array<[string, string]>>;
  return fc
    .record({
      mt: targetArb(s.routes, s),
      version: mostly('HTTP/1.1', ['HTTP/1.0', 'HTTP/2.0', 'HTTP/1.10', 'http/1.1', 'HTTP/1.1 ']),
      host: mostly<string | null>(
        '127.0.0.1',
        ['localhost:9090', null, '', 'a:99999', '[::1', 'é.example', 'x'.repeat(300)],
        15,
      ),
      auth: fc.constantFrom<Auth>(
        'none',
        'user',
        'admin',
        'admin',
        'forged',
        'expired',
        'garbage',
        'basic',
        'both',
      ),
      ct: fc.option(contentType, { freq: 4 }),
      up: upgrade,
      extra: fc.oneof(
        { weight: 3, arbitrary: fc.constant([]) },
        { weight: 1, arbitrary: fc.array(fc.tuple(headerName, headerValue), { minLength: 1, maxLength: 3 }) },
      ),
      body: bodyArb(s),
      framing: mostly<Framing>(
        'cl',
        ['none', 'chunked', 'cl+te', 'bad-cl', 'dup-cl', 'short', 'long', 'odd-te'],
        25,
      ),
      badCl: fc.constantFrom('abc', '-1', '1e3', '0x10', '99999999999999999999', '', ' 5', '5, 6', '+5'),
      eol: mostly<'\r\n' | '\n'>('\r\n', ['\n'], 5),
      pipelined: mostly(false, [true], 15),
    })
    .map((r) => ({
      method: r.mt.method,
      target: r.mt.target,
      version: r.version,
      host: r.host,
      auth: r.auth,
      headers: [...(r.ct ? [r.ct] : []), ...r.up, ...r.extra],
      body: r.body.body,
      rawBody: r.body.rawBody,
      framing: r.framing,
      badCl: r.badCl,
      eol: r.eol,
      pipelined: r.pipelined,
    }));
}

const PIPELINED = 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n';

/** The case's bytes. */
export function renderHttp(c: HttpCase, tokens: Tokens): Buffer {
  const body = Buffer.from(c.body, c.rawBody ? 'latin1' : 'utf8');
  const h: Array<[string, string]> = [];
  if (c.host !== null) h.push(['Host', c.host]);
  const bearer = (t: string) => ['Authorization', `Bearer ${t}`] as [string, string];
  if (c.auth === 'user') h.push(bearer(tokens.user));
  if (c.auth === 'admin') h.push(bearer(tokens.admin));
  if (c.auth === 'forged') h.push(bearer(tokens.forged));
  if (c.auth === 'expired') h.push(bearer(tokens.expired));
  if (c.auth === 'garbage') h.push(['authorization', 'Bearer a.b.c']);
  if (c.auth === 'basic') h.push(['Authorization', 'Basic YWRtaW46YWRtaW4=']);
  if (c.auth === 'both') h.push(bearer(tokens.user), bearer(tokens.admin));
  h.push(...c.headers);
  let payload = body;
  const len = String(body.length);
  if (c.framing === 'cl') h.push(['Content-Length', len]);
  if (c.framing === 'bad-cl') h.push(['Content-Length', c.badCl]);
  if (c.framing === 'dup-cl') h.push(['Content-Length', len], ['content-length', String(body.length + 1)]);
  if (c.framing === 'short') h.push(['Content-Length', String(body.length + 10)]);
  if (c.framing === 'long') h.push(['Content-Length', String(Math.max(0, body.length - 3))]);
  if (c.framing === 'odd-te')
    h.push(['Transfer-Encoding', 'chunked, identity'], ['Transfer-Encoding', ' chunked']);
  if (c.framing === 'chunked' || c.framing === 'cl+te') {
    h.push(['Transfer-Encoding', 'chunked']);
    if (c.framing === 'cl+te') h.push(['Content-Length', len]);
    payload = Buffer.concat([
      Buffer.from(`${body.length.toString(16)}\r\n`),
      body,
      Buffer.from('\r\n0\r\n\r\n'),
    ]);
  }
  const head = [`${c.method} ${c.target} ${c.version}`, ...h.map(([k, v]) => `${k}: ${v}`)].join(c.eol);
  return Buffer.concat([
    Buffer.from(`${head}${c.eol}${c.eol}`, 'latin1'),
    payload,
    ...(c.pipelined ? [Buffer.from(PIPELINED)] : []),
  ]);
}
