/**
 * The inbox page in real Chromium against a real server: sign in, live delivery from the admin page to
 * another browser context, multi-tab consistency, a server restart, hostile titles, languages.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { ADMIN_PASSWORD } from '../helpers/app.ts';
import { startRestartable, type Restartable } from '../helpers/restartable.ts';
import { browserSuite, SCREENSHOTS, signIn, type ErrorNet } from './browser.ts';

const XSS = '<img src=x onerror=alert(1)>';

describe('inbox page in Chromium', () => {
  const suite = browserSuite((pages) => startRestartable({ plugins: [pages] }));
  let s: Restartable;
  let browser: Browser;
  let net: ErrorNet;
  let alice: BrowserContext;
  let admin: BrowserContext;
  let tab1: Page;
  let tab2: Page;
  let aliceId: number;
  const dialogs: string[] = [];

  const item = (page: Page, title: string) => page.locator('#list .item', { hasText: title });
  const badge = (page: Page) => page.locator('#badge');

  async function sendToAlice(title: string, content = ''): Promise<number> {
    const r = await s.current.request<{ messageId: number }>('POST', '/api/v1/messages/send', {
      token: s.adminToken,
      body: { title, content, targetType: 'user', targetIds: [aliceId] },
    });
    assert.equal(r.status, 200);
    return r.body.data.messageId;
  }

  before(async () => {
    ({ server: s, browser, net } = suite);
    aliceId = (await s.current.createUser('alice', { password: 'alice-password' })).id;
    alice = await browser.newContext({ viewport: { width: 1100, height: 720 } });
    admin = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    for (const ctx of [alice, admin])
      ctx.on('page', (p) => p.on('dialog', (d) => void dialogs.push(d.message())));
  });

  it('signs in through the form and shows the connection as connected', async () => {
    tab1 = await alice.newPage();
    await tab1.goto(`${s.url}/`);
    // The wrong password below is refused on purpose: the browser and the page both report it.
    net.expect(/Failed to load resource: .*status of 401 .*\/api\/v1\/auth\/login/);
    net.expect(/console\.error .*skypush: sign-in failed SkypushApiError: invalid username or password/);
    await tab1.fill('#login-username', 'alice');
    await tab1.fill('#login-password', 'wrong-password');
    await tab1.click('#login-form button[type="submit"]');
    await tab1.locator('#login-form [data-role="error"]:not([hidden])').waitFor();
    await signIn(tab1, 'alice', 'alice-password', 'inbox-view');
    await tab1.locator('#status[data-state="connected"]').waitFor();
    assert.equal(await badge(tab1).textContent(), '0');
    await tab1.evaluate(() => ((window as unknown as { marker: number }).marker = 42));
  });

  it('shows a message sent from /admin in another context without a reload, and the badge goes up', async () => {
    const page = await admin.newPage();
    await page.goto(`${s.url}/admin`);
    await signIn(page, 'admin', ADMIN_PASSWORD, 'admin-view');
    await page.check('#targets input[data-username="alice"]');
    await page.fill('#send-title-input', 'Quarterly report is ready');
    await page.fill('#send-content', 'Please review it before Friday.');
    await page.selectOption('#send-priority', '5');
    await page.fill('#send-link', 'https://example.com/report');
    await page.click('#send-form button[type="submit"]');
    await page.locator('#send-result.ok').waitFor();
    assert.match((await page.locator('#send-result').textContent()) ?? '', /1/);

    await item(tab1, 'Quarterly report is ready').waitFor();
    await tab1.locator('.toast', { hasText: 'Quarterly report is ready' }).waitFor();
    await tab1.waitForFunction(() => document.getElementById('badge')?.textContent === '1');
    assert.equal(
      await tab1.evaluate(() => (window as unknown as { marker?: number }).marker),
      42,
      'no reload',
    );
    const link = item(tab1, 'Quarterly report is ready').locator('a.item-link');
    assert.equal(await link.getAttribute('href'), 'https://example.com/report');
    await page.close();
  });

  it('marks read in one tab and the other tab follows', async () => {
    const id = await sendToAlice('Second notice');
    tab2 = await alice.newPage();
    await tab2.goto(`${s.url}/`);
    await tab2.locator('#status[data-state="connected"]').waitFor();
    await tab2.click('#tab-all');
    await item(tab2, 'Second notice').waitFor();
    await tab1.waitForFunction(() => document.getElementById('badge')?.textContent === '2');
    assert.equal(await item(tab2, 'Second notice').getAttribute('class'), 'item unread');

    await tab1.click(`#list .item[data-id="${id}"] .mark-read`);
    await tab2.locator(`#list .item[data-id="${id}"]:not(.unread)`).waitFor();
    await tab2.waitForFunction(() => document.getElementById('badge')?.textContent === '1');
    await tab1.locator(`#list .item[data-id="${id}"]`).waitFor({ state: 'detached' }); // left the Unread tab

    await tab2.click('#read-all');
    await tab1.waitForFunction(() => document.getElementById('badge')?.textContent === '0');
    assert.equal(await tab1.locator('#list .item').count(), 0, 'nothing left under Unread');
  });

  it('renders a hostile title and content as text', async () => {
    await sendToAlice(XSS, '<script>alert(2)</script><b>bold</b>');
    const row = item(tab2, XSS);
    await row.waitFor();
    assert.equal(await row.locator('.item-title-text').textContent(), XSS);
    assert.equal(await row.locator('.item-content').textContent(), '<script>alert(2)</script><b>bold</b>');
    await tab1.locator('.toast', { hasText: XSS }).waitFor();
    await tab1.waitForTimeout(300); // an onerror handler would have fired by now
    for (const p of [tab1, tab2]) assert.equal(await p.locator('#list img, #toasts img, #list b').count(), 0);
    assert.deepEqual(dialogs, []);
  });

  it('shows reconnecting while the server restarts, then catches up on what was sent meanwhile', async () => {
    const adminPrincipal = await s.current.app.auth.authenticate(s.adminToken);
    // While the server stops (503 to requests in flight, then no answer) and is down, both tabs fail to
    // get a ticket and to connect; the page says so in the console. Nothing else may go wrong.
    net.allow(/Failed to load resource: (net::ERR_[A-Z_]+|.*status of 503\b.*) \(.*\/api\/v1\/ws\/ticket:/);
    net.allow(/console\.error .*skypush: connection (TypeError: Failed to fetch|SkypushApiError)/);
    net.allow(/WebSocket connection to 'ws:\/\/.*\/api\/v1\/ws\/messages.*' failed/);
    await s.stop();
    await tab1.locator('#status[data-state="reconnecting"]').waitFor();
    assert.match((await tab1.locator('#status').textContent()) ?? '', /Reconnecting/);
    await s.offline((app) =>
      app.messages.send(adminPrincipal, {
        title: 'Sent while you were away',
        content: '',
        targetType: 'user',
        targetIds: [aliceId],
      }),
    );
    const refetches: string[] = [];
    tab1.on('request', (r) => {
      if (new URL(r.url()).pathname === '/api/v1/messages') refetches.push(r.url());
    });
    await s.start();
    await Promise.all(
      [tab1, tab2].map(async (p) => {
        await p.locator('.toast', { hasText: 'Caught up: 1 new message' }).waitFor({ timeout: 20_000 });
        await item(p, 'Sent while you were away').waitFor();
        await p.locator('#status[data-state="connected"]').waitFor();
      }),
    );
    assert.deepEqual(refetches, [], 'caught up by resuming from the cursor, not by reloading the inbox');
    assert.equal(
      await tab1.evaluate(() => (window as unknown as { marker?: number }).marker),
      42,
      'no reload',
    );
    await tab1.waitForFunction(() => document.getElementById('badge')?.textContent === '2');
    await sendToAlice('Back to normal', 'Live delivery resumed after the restart.');
    await item(tab1, 'Back to normal').waitFor();
    await tab1.click('#tab-all');
    await item(tab1, 'Quarterly report is ready').waitFor();
    await tab1.waitForTimeout(3100); // let the toasts fade for the screenshot
    await tab1.screenshot({ path: new URL('inbox.png', SCREENSHOTS).pathname });
  });

  it('switches language, remembers it after a reload and in other tabs', async () => {
    await tab1.selectOption('#lang', 'zh-CN');
    assert.equal(await tab1.locator('#tab-unread').textContent(), '未读');
    assert.equal(await tab1.getAttribute('html', 'lang'), 'zh-CN');
    await tab2.waitForFunction(() => document.getElementById('tab-unread')?.textContent === '未读');
    await tab1.reload();
    await tab1.locator('#status[data-state="connected"]').waitFor();
    assert.equal(await tab1.locator('#tab-unread').textContent(), '未读');
    assert.equal(await tab1.locator('#status').textContent(), '已连接');
    await tab1.selectOption('#lang', 'en');
    assert.equal(await tab1.locator('#tab-unread').textContent(), 'Unread');
  });

  it('fits a phone screen without horizontal scrolling', async () => {
    await tab1.setViewportSize({ width: 360, height: 740 });
    await tab1.click('#tab-all');
    const overflow = await tab1.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `page is ${overflow}px wider than the screen`);
  });
});
