/** The server side of the web pages: routes, content types, caching, CSP, and a guard against innerHTML. */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildWebPages } from '../../scripts/build-web.ts';
import { createWebPages } from '../../src/web/pages.ts';
import { startApp, type TestApp } from '../helpers/app.ts';

describe('web pages', () => {
  let t: TestApp;
  let bare: TestApp;
  before(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'skypush-web-'));
    await buildWebPages(dir);
    t = await startApp({ plugins: [createWebPages({ dir })] });
    bare = await startApp({ plugins: [createWebPages({ dir: join(dir, 'missing') })] });
  });
  after(async () => {
    await t.close();
    await bare.close();
  });

  for (const [path, script] of [
    ['/', 'inbox'],
    ['/admin', 'admin'],
  ] as const) {
    it(`serves ${path} as HTML with a strict CSP and revalidation, and its assets with long caching`, async () => {
      const res = await fetch(t.url + path);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), 'text/html; charset=utf-8');
      assert.equal(res.headers.get('cache-control'), 'no-cache');
      assert.match(res.headers.get('content-security-policy') ?? '', /script-src 'self';/);
      const html = await res.text();
      assert.doesNotMatch(html, /(src|href)="(https?:)?\/\//, 'nothing loaded from another origin');
      const js = new RegExp(`/assets/${script}-[A-Z0-9]+\\.js`).exec(html)?.[0];
      const css = /\/assets\/styles-[A-Z0-9]+\.css/.exec(html)?.[0];
      assert.ok(js && css, 'page references its hashed script and style');
      for (const [asset, type] of [
        [js, 'text/javascript; charset=utf-8'],
        [css, 'text/css; charset=utf-8'],
      ]) {
        const a = await fetch(t.url + asset);
        assert.equal(a.status, 200);
        assert.equal(a.headers.get('content-type'), type);
        assert.equal(a.headers.get('cache-control'), 'public, max-age=31536000, immutable');
      }
    });
  }

  it('answers 404 with the envelope for unknown or malformed asset names', async () => {
    for (const name of ['nope-123.js', '..%2Fpackage.json', 'index.html', '.hidden.js']) {
      const r = await t.request('GET', `/assets/${name}`);
      assert.equal(r.status, 404, name);
      assert.equal(r.body.code, 404);
    }
  });

  it('says how to build the pages when they are missing', async () => {
    const res = await fetch(`${bare.url}/`);
    assert.equal(res.status, 200);
    assert.match(await res.text(), /npm run build/);
  });

  it('never builds DOM from strings: no innerHTML and friends in the UI or the SDK', () => {
    const roots = [new URL('../../src/web/ui/', import.meta.url), new URL('../../client/', import.meta.url)];
    for (const root of roots) {
      for (const file of readdirSync(root)) {
        const src = readFileSync(new URL(file, root), 'utf8');
        assert.doesNotMatch(
          src,
          /innerHTML|outerHTML|insertAdjacentHTML|createContextualFragment|DOMParser|srcdoc|document\.write|\beval\(/,
          file,
        );
      }
    }
  });

  it('builds every href in the pages through the link rule', () => {
    const root = new URL('../../src/web/ui/', import.meta.url);
    const files = readdirSync(root).filter((f) => f.endsWith('.ts') && f !== 'link.ts');
    const withHref = files.filter((f) => /\bhref\b/.test(readFileSync(new URL(f, root), 'utf8')));
    assert.ok(withHref.length > 0, 'the inbox renders links');
    for (const file of withHref) assert.match(readFileSync(new URL(file, root), 'utf8'), /safeLink\(/, file);
  });
});
