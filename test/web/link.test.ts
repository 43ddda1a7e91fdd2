/** The link rule the pages apply before rendering a message's link as an <a href>. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { LINK_MAX, safeLink } from '../../src/web/ui/link.ts';

const ALLOWED: string[] = [
  '/ok',
  '/',
  '/reports/42?tab=a#b',
  '/a//b', // a double slash later in a path stays on this site
  '/%2F%2Fevil.com', // encoded slashes are path characters, not a host
  'https://ok.example/x',
  'http://ok.example',
  'HTTPS://OK.EXAMPLE/X',
  'https://ok.example:8443/a b',
  `/${'a'.repeat(LINK_MAX - 1)}`,
];

const REFUSED: Array<[string, unknown]> = [
  ['javascript scheme', 'javascript:alert(1)'],
  ['javascript in mixed case', 'JaVaScRiPt:alert(1)'],
  ['javascript after a space', ' javascript:alert(1)'],
  ['javascript after a tab', '\tjavascript:alert(1)'],
  ['javascript with a tab inside', 'java\tscript:alert(1)'],
  ['data scheme', 'data:text/html,<script>alert(1)</script>'],
  ['vbscript scheme', 'vbscript:msgbox'],
  ['file scheme', 'file:///etc/passwd'],
  ['ftp scheme', 'ftp://ok.example/'],
  ['mailto scheme', 'mailto:a@b.c'],
  ['two backslashes', '\\\\evil.com'],
  ['slash backslash', '/\\evil.com'],
  ['backslash slash', '\\/evil.com'],
  ['backslash after the scheme', 'https:\\\\evil.com'],
  ['backslash in an absolute url', 'https://ok.example\\@evil.com'],
  ['protocol-relative', '//evil.com'],
  ['three slashes', '///evil.com'],
  ['scheme without a host', 'https:///evil.com'],
  ['scheme alone', 'https://'],
  ['scheme without slashes', 'https:evil.com'],
  ['tab between the slashes', '/\t/evil.com'],
  ['newline between the slashes', '/\n/evil.com'],
  ['carriage return', '/ok\r'],
  ['NUL', '/ok\u0000'],
  ['DEL', '/ok\u007f'],
  ['C1 control', '/ok\u0085'],
  ['escape in an absolute url', 'https://ok.example/\u001b'],
  ['leading space before a path', ' /ok'],
  ['bare host', 'evil.com'],
  ['relative without a slash', 'ok/x'],
  ['dot path', './ok'],
  ['empty', ''],
  ['too long', `/${'a'.repeat(LINK_MAX)}`],
  ['null', null],
  ['undefined', undefined],
  ['a number', 42],
  ['an object', { href: '/ok' }],
];

describe('safeLink', () => {
  for (const url of ALLOWED) {
    it(`keeps ${JSON.stringify(url.length > 40 ? `${url.slice(0, 40)}…` : url)}`, () => {
      assert.equal(safeLink(url), url);
    });
  }
  for (const [name, url] of REFUSED) {
    it(`refuses ${name}: ${JSON.stringify(url)}`, () => {
      assert.equal(safeLink(url), undefined);
    });
  }

  it('never keeps an href that a browser resolves to another scheme, or a path that leaves the site', () => {
    // Strings built from the pieces that tricks are made of, resolved the way a browser resolves href.
    const piece = fc.constantFrom(
      '/',
      '\\',
      '\t',
      '\n',
      ' ',
      ':',
      '.',
      '@',
      '%2F',
      'a',
      'evil.com',
      'http',
      'https',
      'javascript',
      'JaVaScRiPt',
      '//',
    );
    const base = 'https://push.example/inbox';
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 8 }), (parts) => {
        const href = safeLink(parts.join(''));
        if (href === undefined) return;
        const resolved = new URL(href, base);
        assert.match(resolved.protocol, /^https?:$/, href);
        if (href.startsWith('/')) assert.equal(resolved.origin, 'https://push.example', href);
        else assert.notEqual(resolved.host, '', href);
      }),
      { numRuns: 2000 },
    );
  });
});
