import type { BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BrowserSetup, inboxItem, poll, type Server, startWithAdmin } from './helpers.ts';

/**
 * Issue 17, item 11: a run that suspends between the inbox page's render and its event stream's
 * connection must still appear without a reload. The stream's request is held by the browser
 * (a Playwright route) until the run has suspended on the server, so the event it would have
 * carried is certainly missed; the page must read its list again when the stream opens.
 */

interface Approval {
  id: string;
  run: string;
}

let setup: BrowserSetup | undefined;
let server: Server;
let admin: BrowserContext;

describe('inbox live updates in a real browser', { timeout: 60_000 }, () => {
  beforeAll(async () => {
    setup = await startWithAdmin();
    ({ server, admin } = setup);
  }, 60_000);

  afterAll(async () => {
    await setup?.close();
  });

  it('a run that suspends while the page is loading appears without a reload', async () => {
    const page = await admin.newPage();
    let release!: () => void;
    const released = new Promise<void>((r) => {
      release = r;
    });
    let held = 0;
    await page.route('**/events', async (route) => {
      held++;
      await released;
      await route.continue();
    });
    await page.goto(`${server.url}/`);
    await page.evaluate(() => {
      (window as unknown as { notReloaded: boolean }).notReloaded = true;
    });
    // The page is rendered and its stream not yet connected: now the run suspends.
    await poll(
      async () => held,
      (n) => n > 0,
    );
    const res = await server.api<{ run: { id: string } }>('POST', '/api/runs', {
      workflow: 'loop',
      input: { n: 60 },
    });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    const runId = res.body.run.id;
    await poll(
      async () =>
        (await server.api<{ approvals: Approval[] }>('GET', `/api/approvals?state=pending&run=${runId}`)).body
          .approvals,
      (a) => a.length > 0,
    );
    expect(await inboxItem(page, runId).count()).toBe(0);
    release();

    await inboxItem(page, runId).waitFor({ timeout: 10_000 });
    expect(await page.evaluate(() => (window as unknown as { notReloaded?: boolean }).notReloaded)).toBe(
      true,
    );
    await server.api('POST', `/api/runs/${runId}/kill`, { reason: 'test over' });
    await page.close();
  });
});
