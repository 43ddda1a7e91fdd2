/**
 * The inbox list in real Chromium, row by row: signing in with unread messages, rows rebuilt in place
 * while others stay, focus kept across a rebuild, links that fail the rule shown as text, and the error
 * net itself (an error toast, a console.error and an uncaught error all fail a test).
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { startApp, type TestApp } from '../helpers/app.ts';
import { browserSuite, signIn, type ErrorNet } from './browser.ts';

describe('inbox rows in Chromium', () => {
  const suite = browserSuite((pages) => startApp({ plugins: [pages] }));
  let t: TestApp;
  let browser: Browser;
  let net: ErrorNet;
  let ctx: BrowserContext;
  let page: Page;
  let bob: { id: number; token: string };
  const dialogs: string[] = [];

  async function send(title: string, linkUrl?: string): Promise<number> {
    const r = await t.request<{ messageId: number }>('POST', '/api/v1/messages/send', {
      token: t.adminToken,
      body: { title, content: '', targetType: 'user', targetIds: [bob.id], ...(linkUrl && { linkUrl }) },
    });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return r.body.data.messageId;
  }
  const ids = (p: Page) =>
    p.locator('#list .item').evaluateAll((els) => els.map((el) => Number(el.getAttribute('data-id'))));
  const row = (id: number) => page.locator(`#list .item[data-id="${id}"]`);

  before(async () => {
    ({ server: t, browser, net } = suite);
    bob = await t.createUser('bob', { password: 'bob-password' });
    ctx = await browser.newContext({ viewport: { width: 1100, height: 800 } });
    ctx.on('page', (p) => p.on('dialog', (d) => void dialogs.push(d.message())));
  });

  it('signs in while unread messages exist and renders them without an error', async () => {
    const sent = [await send('First unread'), await send('Second unread'), await send('Third unread')];
    page = await ctx.newPage();
    // Signing in loads the inbox twice (at once, and again when the socket connects without a cursor
    // to resume from): the second load replaces every row, which is where rendering used to throw.
    const twoLoads = new Promise<void>((resolve) => {
      let loads = 0;
      page.on('requestfinished', (r) => {
        if (new URL(r.url()).pathname === '/api/v1/messages' && ++loads === 2) resolve();
      });
    });
    await page.goto(`${t.url}/`);
    await signIn(page, 'bob', 'bob-password', 'inbox-view');
    await page.locator('#status[data-state="connected"]').waitFor();
    await twoLoads;
    await page.waitForFunction(() => document.getElementById('badge')?.textContent === '3');
    await page.waitForTimeout(200); // the second load's rows are rendered by now
    assert.deepEqual(await ids(page), sent.toReversed());
    assert.equal(await page.locator('.toast-error').count(), 0, 'no error toast');
  });

  it('rebuilds a row read elsewhere in place on the All tab and keeps the focus on it', async () => {
    await page.click('#tab-all');
    const [c, b, a] = await ids(page);
    assert.ok(a && b && c);
    await row(b).locator('.item-title-text').waitFor();
    await row(b).locator('.delete').focus();
    const r = await t.request('PUT', `/api/v1/messages/${b}/read`, { token: bob.token });
    assert.equal(r.status, 200);
    await page.locator(`#list .item[data-id="${b}"]:not(.unread)`).waitFor();
    assert.deepEqual(await ids(page), [c, b, a], 'same rows, same order');
    assert.equal(await row(b).locator('.mark-read').count(), 0);
    assert.equal(await row(a).locator('.mark-read').count(), 1, 'the others are untouched');
    const focused = await page.evaluate(() => {
      const el = document.activeElement;
      return { id: el?.closest('li')?.getAttribute('data-id'), cls: el?.className };
    });
    assert.deepEqual(focused, { id: String(b), cls: 'delete danger' }, 'focus moved to the rebuilt row');
    assert.equal(await page.locator('.toast-error').count(), 0, 'no error toast');
  });

  it('renders a stored link that fails the rule as text, never as a link', async () => {
    // Written straight into the database: the API refuses most of these, but a row can still carry
    // one (written before that check, by another tool, or by a bug). The page must not trust it.
    const bad = [
      'javascript:alert(1)',
      'JaVaScRiPt:alert(2)',
      ' javascript:alert(3)',
      '\\\\evil.com',
      '/\\evil.com',
      '//evil.com',
      '/\t/evil.com',
      'data:text/html,<script>alert(4)</script>',
    ];
    const good = ['/ok', 'https://ok.example/x', '/"><img src=x onerror=alert(5)>'];
    const stored = new Map<number, string>();
    for (const url of [...bad, ...good]) {
      const id = await send(`link ${JSON.stringify(url)}`, '/placeholder');
      await t.app.store.db.updateTable('messages').set({ link_url: url }).where('id', '=', id).execute();
      stored.set(id, url);
    }
    await page.reload();
    await page.click('#tab-all');
    for (const [id, url] of stored) {
      await row(id).waitFor();
      if (good.includes(url)) {
        assert.equal(await row(id).locator('a.item-link').getAttribute('href'), url);
        continue;
      }
      assert.equal(await row(id).locator('a, [href]').count(), 0, `${JSON.stringify(url)} is not a link`);
      assert.equal(await row(id).locator('.item-link-text').textContent(), url, 'shown as text');
    }
    await page.waitForTimeout(300); // an onerror handler would have fired by now
    assert.equal(await page.locator('#list img, #list script').count(), 0);
    assert.deepEqual(dialogs, []);
  });

  it('counts an error toast as an error: the page logs it, and the net catches it', async () => {
    await page.click('#tab-unread');
    const id = await send('Cannot be marked read');
    await row(id).waitFor();
    await page.route('**/api/v1/messages/*/read', (r) =>
      r.fulfill({ status: 500, contentType: 'application/json', body: '{"code":500,"message":"boom"}' }),
    );
    await row(id).locator('.mark-read').click();
    await page.locator('.toast-error', { hasText: 'boom' }).waitFor();
    await page.unroute('**/api/v1/messages/*/read');
    const seen = await net.take();
    assert.ok(
      seen.some((s) => /console\.error .*skypush: Action failed: boom/.test(s)),
      seen.join('\n'),
    );
    assert.ok(
      seen.some((s) => /status of 500/.test(s)),
      seen.join('\n'),
    );
  });

  it('fails a test on an uncaught error or a console.error in any page, unless the test allowed it', async () => {
    const other = await ctx.newPage();
    await other.goto(`${t.url}/admin`);
    await other.evaluate(() => {
      // eslint-disable-next-line no-console -- runs in the page, to probe the net
      console.error('probe: console');
      setTimeout(() => {
        throw new Error('probe: uncaught');
      }, 0);
      void Promise.reject(new Error('probe: unhandled rejection'));
    });
    await other.waitForTimeout(100);
    const seen = (await net.take()).join('\n');
    assert.match(seen, /console\.error at .*\/admin: probe: console/);
    assert.match(seen, /pageerror at .*\/admin: .*probe: uncaught/);
    assert.match(seen, /pageerror at .*\/admin: .*probe: unhandled rejection/);
    await other.close();

    // eslint-disable-next-line no-console -- runs in the page, to probe the net
    await page.evaluate(() => console.error('probe: not allowed'));
    await assert.rejects(net.check(), /unexpected: console\.error at .*: probe: not allowed/);
    net.expect(/probe: never logged/);
    await assert.rejects(net.check(), /expected an error matching \/probe: never logged\/, saw none/);
    // eslint-disable-next-line no-console -- runs in the page, to probe the net
    await page.evaluate(() => console.error('probe: allowed'));
    net.allow(/probe: allowed/);
    await net.check();
  });
});
