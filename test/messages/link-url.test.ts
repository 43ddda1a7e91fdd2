import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isSafeLinkUrl, linkUrlProblem } from '../../src/messages/link-url.ts';

const ACCEPTED = [
  'https://example.com/',
  'https://example.com',
  'http://example.com/inbox?id=1#top',
  'https://Example.COM/Path/Case',
  'https://sub.example.com:8443/a/b?c=d&e=%20f',
  'https://[2001:db8::1]/x',
  'http://192.0.2.1/',
  'https://xn--bcher-kva.example/',
  '/',
  '/inbox/1',
  '/inbox/1?tab=unread#m-2',
  '/a%2Fb',
];

const REFUSED: Array<[string, string]> = [
  ['javascript:alert(1)', 'scheme'],
  ['JavaScript:alert(1)', 'scheme'],
  ['data:text/html,<script>alert(1)</script>', 'scheme'],
  ['vbscript:msgbox(1)', 'scheme'],
  ['file:///etc/passwd', 'scheme'],
  ['mailto:a@example.com', 'scheme'],
  ['ftp://example.com/', 'scheme'],
  ['example.com/path', 'no scheme, no slash'],
  ['inbox/1', 'relative without a slash'],
  ['//evil.example/', 'protocol-relative'],
  ['/\\evil.example/', 'backslash after the slash'],
  ['\\\\evil.example\\', 'backslashes'],
  ['https:\\\\evil.example', 'backslash after the scheme'],
  ['https://evil.example\\@good.example/', 'backslash in the authority'],
  ['https:/example.com/', 'one slash after the scheme'],
  ['https:example.com', 'no slash after the scheme'],
  ['https://', 'no host'],
  ['https:///path', 'empty host'],
  ['https://good.example@evil.example/', 'user information'],
  ['https://user:pw@example.com/', 'credentials'],
  [' https://example.com/', 'leading space'],
  ['https://example.com/ ', 'trailing space'],
  ['\thttps://example.com/', 'leading tab'],
  ['java\nscript:alert(1)', 'newline'],
  ['/inbox\r\n/1', 'CR LF'],
  ['/inbox\u0000', 'NUL'],
  ['/inbox\u007f', 'DEL'],
  ['/inbox\u0085', 'C1 next line'],
  ['/inbox\u009b', 'C1 CSI'],
  ['https://exa\u00a0mple.com/', 'no-break space'],
  ['/a\u2028b', 'line separator'],
  ['/a\u200bb', 'zero-width space'],
  ['https://exämple.com/', 'non-ASCII host'],
  ['/ünïcode', 'non-ASCII path'],
  ['/a/../b', 'dot segments'],
  ['/%2e%2e/admin', 'encoded dot segments'],
  ['https://example.com/a/./b', 'dot segment in an absolute URL'],
  ['http://0x7f.1/', 'numeric host rewritten'],
  ['http://2130706433/', 'decimal host rewritten'],
  ['https://example.com:443/', 'default port rewritten'],
  ['https://exa%6Dple.com/', 'escaped host'],
  ['https://example.com/a"b', 'quote escaped by the parser'],
  ['https://example.com/<x>', 'angle brackets escaped by the parser'],
  ['https://ex ample.com/', 'space in host'],
  ['', 'empty'],
];

describe('linkUrl rule', () => {
  for (const link of ACCEPTED) {
    it(`accepts ${JSON.stringify(link)}`, () => {
      assert.equal(linkUrlProblem(link), undefined);
      assert.equal(isSafeLinkUrl(link), true);
    });
  }
  for (const [link, why] of REFUSED) {
    it(`refuses ${JSON.stringify(link)} (${why})`, () => {
      const problem = linkUrlProblem(link);
      assert.equal(typeof problem, 'string');
      assert.equal(isSafeLinkUrl(link), false);
    });
  }
});
