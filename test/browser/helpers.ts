import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Browser, type BrowserContext, chromium, type Locator, type Page } from 'playwright-core';
import { type Served, serveProcess } from '../helpers/serve.ts';

/**
 * Helpers for the browser tests: Debian's Chromium (never a downloaded browser) driven by
 * playwright-core, against a real `chokepoint serve` child process on the in-process emulator.
 */

export const CHROMIUM = '/usr/bin/chromium';

export const ADMIN_TOKEN = 'cpo_browser-admin-token-0123456789';
export const VIEWER_TOKEN = 'cpo_browser-viewer-token-0123456789';

export const WORKFLOWS = new URL('./fixtures/workflows', import.meta.url).pathname;
export const SCREENSHOTS = new URL('../../docs/screenshots/', import.meta.url).pathname;

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--no-first-run',
      '--disable-sync',
      '--disable-quic',
    ],
  });
}

/** A `serve` process and Chromium, with an admin browser context already logged in. */
export interface BrowserSetup {
  server: Server;
  browser: Browser;
  admin: BrowserContext;
  close(): Promise<void>;
}

/** Starts the server and Chromium at once; if either fails, stops the other before throwing. */
export async function startWithAdmin(): Promise<BrowserSetup> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `no Chromium at ${CHROMIUM}: apt-get install chromium (.ci/run does it), never a download`,
    );
  }
  const [s, b] = await Promise.allSettled([startServer(), launchChromium()]);
  const close = async () => {
    if (b.status === 'fulfilled') await b.value.close();
    if (s.status === 'fulfilled') await s.value.stop();
  };
  if (s.status === 'rejected' || b.status === 'rejected') {
    await close();
    throw s.status === 'rejected' ? s.reason : (b as PromiseRejectedResult).reason;
  }
  const admin = await b.value.newContext({ viewport: { width: 1280, height: 900 } });
  await (await logIn(admin, s.value.url, ADMIN_TOKEN)).close();
  return { server: s.value, browser: b.value, admin, close };
}

export interface ApiAnswer<T> {
  status: number;
  body: T;
}

export interface Server {
  url: string;
  served: Served;
  /** Operator API call over HTTP with a Bearer token (the admin's unless told). */
  api<T = Record<string, unknown>>(
    method: string,
    path: string,
    body?: unknown,
    token?: string,
  ): Promise<ApiAnswer<T>>;
  stop(): Promise<void>;
}

/** Starts `chokepoint serve` with the browser fixtures, an admin token and a viewer. */
export async function startServer(): Promise<Server> {
  const dir = mkdtempSync(join(tmpdir(), 'cp-browser-'));
  const dataDir = join(dir, 'data');
  mkdirSync(dataDir);
  const config = join(dir, 'config.yaml');
  writeFileSync(
    config,
    [
      'auth:',
      '  operators:',
      `    - { name: vera, role: viewer, token: ${VIEWER_TOKEN} }`,
      'routing:',
      '  classes:',
      '    cheap: [claude-haiku-4-5]',
      '    standard: [claude-sonnet-4-6]',
      '',
    ].join('\n'),
  );
  const served = await serveProcess({
    CHOKEPOINT_ADMIN_TOKEN: ADMIN_TOKEN,
    CHOKEPOINT_DATA_DIR: dataDir,
    CHOKEPOINT_CONFIG: config,
    CHOKEPOINT_WORKFLOWS_DIR: WORKFLOWS,
    CHOKEPOINT_SESSION_SECRET: '',
    // The in-process emulator, whatever the environment says.
    ANTHROPIC_API_KEY: '',
    ANTHROPIC_BASE_URL: '',
  });
  const url = served.url;
  return {
    url,
    served,
    async api<T>(method: string, path: string, body?: unknown, token = ADMIN_TOKEN) {
      const res = await fetch(`${url}${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      return { status: res.status, body: (text ? JSON.parse(text) : {}) as T };
    },
    async stop() {
      await served.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Logs a fresh context in through the login form; answers the page left on the inbox. */
export async function logIn(context: BrowserContext, url: string, token: string): Promise<Page> {
  const page = await context.newPage();
  await page.goto(`${url}/login`);
  await page.getByLabel('Operator token').fill(token);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.waitForURL(`${url}/`);
  return page;
}

/** The form holding the button of that name (each decision is its own form). */
export function formWith(scope: Page | Locator, button: string): Locator {
  const page = 'goto' in scope ? scope : scope.page();
  return scope.locator('form').filter({ has: page.getByRole('button', { name: button, exact: true }) });
}

/** The inbox card (an <article>) of a run's pending item. */
export function inboxItem(page: Page, runId: string): Locator {
  return page.getByRole('article').filter({ has: page.locator(`a[href="/runs/${runId}"]`) });
}

/**
 * Waits until the live region has not been swapped for `quietMs`: a refresh in flight while a
 * field is being filled would replace the field (and what was typed).
 */
export async function liveQuiet(page: Page, quietMs = 400): Promise<void> {
  await page.evaluate(
    (ms) =>
      new Promise<void>((resolve) => {
        const live = document.querySelector('[data-live]');
        let timer = setTimeout(resolve, ms);
        live?.addEventListener('live:updated', () => {
          clearTimeout(timer);
          timer = setTimeout(resolve, ms);
        });
      }),
    quietMs,
  );
}

/**
 * Fills the reason of a decision form and submits it; the page POSTs, is redirected back and
 * shows the outcome as a flash. Answers the flash text (`ok` or `error` from the redirect URL).
 */
export async function submitWithReason(
  page: Page,
  form: Locator,
  button: string,
  reason: string,
): Promise<{ ok: boolean; text: string }> {
  const field = form.getByLabel('Reason');
  await field.fill(reason);
  // The POST answers 303 back to the page: wait for that new document (the URL may already
  // carry an older flash, so waiting for the URL alone is not enough).
  const navigated = page.waitForEvent('framenavigated', (f) => f === page.mainFrame());
  await form.getByRole('button', { name: button, exact: true }).click();
  await navigated;
  await page.waitForLoadState('domcontentloaded');
  const u = new URL(page.url());
  if (!u.searchParams.has('ok') && !u.searchParams.has('error'))
    throw new Error(`${button}: the form did not land back on a page with a flash, but on ${page.url()}`);
  return {
    ok: u.searchParams.has('ok'),
    text: u.searchParams.get('ok') ?? u.searchParams.get('error') ?? '',
  };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `get` until `done` holds of its answer (or the time is up: answers the last one). */
export async function poll<T>(get: () => Promise<T>, done: (v: T) => boolean, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  let v = await get();
  while (!done(v) && Date.now() < deadline) {
    await sleep(100);
    v = await get();
  }
  return v;
}
