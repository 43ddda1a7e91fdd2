/** Real Chromium for the end-to-end tests, and the web pages built fresh for the run. */
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { buildWebPages } from '../../scripts/build-web.ts';
import { createWebPages } from '../../src/web/pages.ts';

export const CHROMIUM = process.env['SKYPUSH_CHROMIUM'] ?? '/usr/bin/chromium';
export const SCREENSHOTS = new URL('../../docs/screenshots/', import.meta.url);

/** Launches headless Chromium; fails (never skips) when it is not installed. */
export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`Chromium not found at ${CHROMIUM}: install it (apt-get install -y chromium)`);
  }
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
  // Fail in seconds, not playwright's default 30 s, when something never shows up.
  const newContext = browser.newContext.bind(browser);
  browser.newContext = async (...args) => {
    const ctx = await newContext(...args);
    ctx.setDefaultTimeout(10_000);
    return ctx;
  };
  return browser;
}

/** Builds the pages into a fresh folder and returns the plugin serving them. */
export async function freshWebPages(): Promise<ReturnType<typeof createWebPages>> {
  const dir = mkdtempSync(join(tmpdir(), 'skypush-web-'));
  await buildWebPages(dir);
  return createWebPages({ dir });
}

/** Signs in through the page's form and waits for the signed-in view. */
export async function signIn(page: Page, username: string, password: string, view: string): Promise<void> {
  await page.fill('#login-username', username);
  await page.fill('#login-password', password);
  await page.click('#login-form button[type="submit"]');
  await page.waitForSelector(`#${view}:not([hidden])`);
}
