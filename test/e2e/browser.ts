/**
 * Real Chromium for the end-to-end tests, and the web pages built fresh for the run. Every page opened
 * through a browser from launchChromium is watched: an uncaught error or a console.error in it fails the
 * test that was running (see ErrorNet), unless that test allowed it by name.
 */
import { existsSync, mkdtempSync } from 'node:fs';
import { after, afterEach, before } from 'node:test';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { buildWebPages } from '../../scripts/build-web.ts';
import { createWebPages } from '../../src/web/pages.ts';

export const CHROMIUM = process.env['SKYPUSH_CHROMIUM'] ?? '/usr/bin/chromium';
export const SCREENSHOTS = new URL('../../docs/screenshots/', import.meta.url);

/**
 * What went wrong in the pages of one browser. Tests call `check()` after each test (afterEach) and once
 * more before closing the browser; an error a test provokes on purpose is named with `allow`/`expect`,
 * which last until the next check.
 */
export class ErrorNet {
  readonly #seen: string[] = [];
  readonly #pages = new Set<Page>();
  #allowed: RegExp[] = [];
  #expected: RegExp[] = [];

  watch(page: Page): void {
    this.#pages.add(page);
    page.on('close', () => this.#pages.delete(page));
    page.on('pageerror', (e) => this.#seen.push(`pageerror at ${page.url()}: ${e.stack ?? e.message}`));
    page.on('crash', () => this.#seen.push(`page crashed: ${page.url()}`));
    page.on('console', (m) => {
      if (m.type() !== 'error') return;
      const at = m.location();
      this.#seen.push(`console.error at ${page.url()}: ${m.text()} (${at.url}:${at.lineNumber})`);
    });
  }

  /** Errors matching `pattern` are not a failure until the next check. */
  allow(pattern: RegExp): void {
    this.#allowed.push(pattern);
  }

  /** Like allow, and the check fails if no error matches `pattern`: the test proves the error happened. */
  expect(pattern: RegExp): void {
    this.#expected.push(pattern);
  }

  /** Waits until every open page has delivered what it logged so far, then returns it and forgets it. */
  async take(): Promise<string[]> {
    // Console events travel on the same channel as evaluate's answer, so one round trip flushes them.
    await Promise.all(
      [...this.#pages].map((p) =>
        Promise.race([p.evaluate(() => 0).catch(() => 0), new Promise((r) => setTimeout(r, 2000))]),
      ),
    );
    return this.#seen.splice(0);
  }

  /** Throws, listing everything seen, if an error was not allowed or an expected one did not happen. */
  async check(): Promise<void> {
    const seen = await this.take();
    const allowed = [...this.#allowed, ...this.#expected];
    const missing = this.#expected.filter((re) => !seen.some((s) => re.test(s)));
    const unexpected = seen.filter((s) => !allowed.some((re) => re.test(s)));
    this.#allowed = [];
    this.#expected = [];
    if (unexpected.length === 0 && missing.length === 0) return;
    throw new Error(
      [
        ...unexpected.map((s) => `unexpected: ${s}`),
        ...missing.map((re) => `expected an error matching ${re}, saw none`),
        ...(seen.length > unexpected.length ? ['all seen:', ...seen] : []),
      ].join('\n'),
    );
  }
}

const nets = new WeakMap<Browser, ErrorNet>();

/** The error net of a browser from launchChromium. */
export function errorNet(browser: Browser): ErrorNet {
  const net = nets.get(browser);
  if (!net) throw new Error('not a browser from launchChromium');
  return net;
}

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
  const net = new ErrorNet();
  nets.set(browser, net);
  // Every context (browser.newPage makes one too) watches its pages, and fails in seconds, not
  // playwright's default 30 s, when something never shows up.
  const newContext = browser.newContext.bind(browser);
  browser.newContext = async (...args) => {
    const ctx = await newContext(...args);
    ctx.setDefaultTimeout(10_000);
    ctx.on('page', (p) => net.watch(p));
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

/** A browser test suite's shared parts, set once its `before` has run. */
export interface BrowserSuite<S> {
  browser: Browser;
  net: ErrorNet;
  server: S;
}

/**
 * Registers a suite's browser and server: Chromium launched and the server started (serving freshly
 * built pages) before the tests; every page's errors checked after each test and once more at the end;
 * both closed after. Call it first inside describe(), so the suite's own hooks run after these.
 */
export function browserSuite<S extends { close(): Promise<void> }>(
  start: (pages: Awaited<ReturnType<typeof freshWebPages>>) => Promise<S>,
): BrowserSuite<S> {
  const suite: Partial<BrowserSuite<S>> = {};
  before(async () => {
    // Launch first, but await it last: if Chromium is missing the server is still closed in after().
    const launching = launchChromium();
    launching.catch(() => {});
    suite.server = await freshWebPages().then(start);
    suite.browser = await launching;
    suite.net = errorNet(suite.browser);
  });
  // Any uncaught error or console.error in a page fails the test it happened in.
  afterEach(async () => {
    await suite.net?.check();
  });
  after(async () => {
    try {
      await suite.net?.check();
    } finally {
      await suite.browser?.close();
      await suite.server?.close();
    }
  });
  return suite as BrowserSuite<S>;
}
