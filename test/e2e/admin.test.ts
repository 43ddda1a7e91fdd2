/** The admin console in real Chromium: access control, sending, broadcasting, presence, user management. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import type { SkypushClient } from '../../client/index.ts';
import { ADMIN_PASSWORD, startApp, type TestApp } from '../helpers/app.ts';
import { makeClient, next } from '../sdk/sdk-helpers.ts';
import { browserSuite, SCREENSHOTS, signIn, type ErrorNet } from './browser.ts';

describe('admin console in Chromium', () => {
  const suite = browserSuite((pages) => startApp({ plugins: [pages] }));
  let t: TestApp;
  let browser: Browser;
  let net: ErrorNet;
  let page: Page;
  let alice: { id: number; token: string };
  let bob: { id: number; token: string };
  let aliceClient: SkypushClient;

  before(async () => {
    ({ server: t, browser, net } = suite);
    alice = await t.createUser('alice');
    bob = await t.createUser('bob', { password: 'bob-password' });
    aliceClient = makeClient(t.wsUrl, { getToken: () => alice.token });
  });
  after(() => aliceClient?.disconnect());

  it('refuses the console to a user who is not an admin', async () => {
    const ctx = await browser.newContext();
    const p = await ctx.newPage();
    await p.goto(`${t.url}/admin`);
    await signIn(p, 'bob', 'bob-password', 'denied-view');
    assert.equal(await p.locator('#admin-view').isHidden(), true);
    await ctx.close();
  });

  it('shows who is online and keeps the list current', async () => {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
    page = await ctx.newPage();
    await page.goto(`${t.url}/admin`);
    await signIn(page, 'admin', ADMIN_PASSWORD, 'admin-view');
    await page.locator('#online-list li.muted').waitFor();
    const connected = next(aliceClient, 'CONNECTED');
    aliceClient.connect();
    await connected;
    await page.locator(`#online-list li[data-user-id="${alice.id}"]`).waitFor({ timeout: 8000 });
    assert.match((await page.locator('#online-title').textContent()) ?? '', /\(1\)/);
    await page.locator(`#targets input[data-username="alice"] ~ .online-dot:not([hidden])`).waitFor();
    assert.equal(await page.locator(`#targets input[data-username="bob"] ~ .online-dot`).isHidden(), true);
  });

  it('broadcasts a SYSTEM_NOTIFY and sends a message to everyone', async () => {
    const notice = next(aliceClient, 'SYSTEM_NOTIFY');
    await page.fill('#bc-title', 'Maintenance tonight');
    await page.fill('#bc-content', 'From 22:00 to 23:00.');
    await page.selectOption('#bc-level', 'warning');
    await page.click('#broadcast-form button[type="submit"]');
    const [data] = await notice;
    assert.deepEqual(data, {
      title: 'Maintenance tonight',
      content: 'From 22:00 to 23:00.',
      level: 'warning',
    });
    assert.match((await page.locator('#broadcast-result.ok').textContent()) ?? '', /1/);

    const message = next(aliceClient, 'NEW_MESSAGE');
    await page.check('#send-form input[name="target"][value="all"]');
    assert.equal(
      await page.locator('#targets input').first().isDisabled(),
      true,
      'no picking when sending to all',
    );
    await page.fill('#send-title-input', 'Welcome to skypush');
    await page.fill('#send-type', 'announcement');
    await page.click('#send-form button[type="submit"]');
    const [m] = await message;
    assert.equal(m.title, 'Welcome to skypush');
    assert.equal(m.targetType, 'all');
    assert.equal(m.messageType, 'announcement');
    assert.match((await page.locator('#send-result.ok').textContent()) ?? '', /3/, 'admin, alice, bob');
    await page.check('#send-form input[name="target"][value="user"]');
  });

  it('refuses to send a link that fails the link rule, and says why', async () => {
    for (const link of ['//evil.com', '/\\evil.com']) {
      net.expect(/console\.error .*skypush: action failed Error: The link must be an http\(s\) address/);
      await page.check('#targets input[data-username="bob"]');
      await page.fill('#send-title-input', 'Bad link');
      await page.fill('#send-link', link);
      await page.click('#send-form button[type="submit"]');
      await page.locator('#send-result.error', { hasText: 'The link must be' }).waitFor();
      await net.check();
    }
    await page.uncheck('#targets input[data-username="bob"]');
    await page.fill('#send-link', '');
    const inbox = await t.request<{ items: unknown[] }>('GET', '/api/v1/messages', { token: bob.token });
    assert.equal(inbox.status, 200);
    assert.equal(inbox.body.data.items.length, 1, 'only the message to everyone: nothing was sent');
  });

  it('creates a user, changes a role and disables a user (who is disconnected)', async () => {
    await page.fill('#new-username', 'carol');
    await page.fill('#new-password', 'carol-password');
    await page.fill('#new-display', 'Carol Chen');
    await page.click('#create-user-form button[type="submit"]');
    const carol = page.locator('#users-body tr[data-user="carol"]');
    await carol.waitFor();
    assert.match((await carol.textContent()) ?? '', /Carol Chen/);

    await carol.locator('select').selectOption('admin');
    await page.locator('.toast', { hasText: 'User carol updated' }).waitFor();
    const users = await t.request<{ items: Array<{ username: string; role: string; disabled: boolean }> }>(
      'GET',
      '/api/v1/users',
      { token: t.adminToken },
    );
    assert.equal(users.body.data.items.find((u) => u.username === 'carol')?.role, 'admin');

    const gone = next(aliceClient, 'disconnect');
    await page.click('#users-body tr[data-user="alice"] button.toggle');
    await page.locator('#users-body tr[data-user="alice"] .user-status', { hasText: 'Disabled' }).waitFor();
    assert.equal((await gone)[0].code, 4003);
    await page
      .locator(`#online-list li[data-user-id="${alice.id}"]`)
      .waitFor({ state: 'detached', timeout: 8000 });
    await page.click('#users-body tr[data-user="alice"] button.toggle');
    await page.locator('#users-body tr[data-user="alice"] .user-status', { hasText: 'Active' }).waitFor();

    const reconnected = next(aliceClient, 'CONNECTED');
    aliceClient.connect();
    await reconnected;
    await page.locator(`#online-list li[data-user-id="${alice.id}"]`).waitFor({ timeout: 8000 });
    await page.check('#targets input[data-username="alice"]');
    await page.fill('#send-title-input', 'Your report was approved');
    await page.fill('#send-content', 'See the attached link.');
    await page.fill('#send-link', '/reports/42');
    await page.waitForTimeout(3100); // let the toasts fade for the screenshot
    await page.screenshot({ path: new URL('admin.png', SCREENSHOTS).pathname, fullPage: true });
  });

  it('finds any user by search when there are more than it lists, and keeps picks across searches', async () => {
    const staff = Array.from({ length: 1100 }, (_, i) => ({ id: 30_000 + i, username: `staff-${i}` }));
    const bulk = await t.request('POST', '/api/v1/users/bulk', {
      token: t.adminToken,
      body: { users: staff },
    });
    assert.equal(bulk.status, 200);
    await page.reload();
    await page.locator('#admin-view').waitFor();
    const notes = page.locator('.more-users');
    await notes.first().waitFor();
    assert.match((await notes.first().textContent()) ?? '', /first 1000/);
    assert.equal(await page.locator('#users-body tr').count(), 1000);
    assert.equal(await page.locator('#users-body tr[data-user="staff-1050"]').count(), 0, 'not listed yet');

    await page.fill('#target-search', 'staff-1050');
    await page.locator('#targets input[data-username="staff-1050"]').waitFor();
    assert.equal(await page.inputValue('#user-search'), 'staff-1050', 'both boxes share the query');
    await page.locator('#users-body tr[data-user="staff-1050"]').waitFor();
    assert.equal(await page.locator('#users-body tr').count(), 1);
    assert.equal(await notes.first().isHidden(), true);
    await page.check('#targets input[data-username="staff-1050"]');

    await page.fill('#target-search', '31051');
    await page.locator('#targets input[data-username="staff-1051"]').waitFor();
    assert.equal(await page.isChecked('#targets input[data-username="staff-1050"]'), true, 'still picked');
    await page.check('#targets input[data-username="staff-1051"]');
    await page.fill('#send-title-input', 'Shift change');
    await page.fill('#send-content', 'See the rota.');
    await page.fill('#send-link', '');
    await page.click('#send-form button[type="submit"]');
    assert.match((await page.locator('#send-result.ok').textContent()) ?? '', /2/);
    const titles = async (id: number) => {
      const token = (await t.app.tokens.issue(id, 'user')).token;
      const inbox = await t.request<{ items: Array<{ title: string }> }>('GET', '/api/v1/messages', {
        token,
      });
      return inbox.body.data.items.map((m) => m.title);
    };
    for (const id of [31_050, 31_051])
      assert.ok((await titles(id)).includes('Shift change'), `user ${id} got it`);
    assert.ok(!(await titles(31_052)).includes('Shift change'), 'nobody else did');
    await page.fill('#user-search', 'no-such-person');
    await page.locator('.more-users', { hasText: 'No user matches' }).first().waitFor();
  });
});
