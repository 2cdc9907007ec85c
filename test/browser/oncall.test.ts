import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ADMIN_TOKEN,
  type BrowserSetup,
  formWith,
  inboxItem,
  liveQuiet,
  logIn,
  poll,
  type Server,
  startWithAdmin,
  submitWithReason,
  VIEWER_TOKEN,
} from './helpers.ts';

/**
 * Issue 22, the inbox as on-call uses it, in real Chromium against a real `chokepoint serve`:
 * every item shows the request (first user message and input); a suspended run is decided from
 * its own page (and the decision is audited); a viewer is told why there are no buttons; reason
 * fields show their whole placeholder; the spend page fits 1,280 px wide and its height does not
 * grow with the period. Screenshots land in /tmp/oncall-*.png for review.
 */

interface Run {
  id: string;
  state: string;
}
interface Approval {
  id: string;
  run: string;
  state: string;
  decision: { action: string; actor: string; reason: string } | null;
}

let setup: BrowserSetup | undefined;
let server: Server;
let browser: Browser;
let admin: BrowserContext;

const pendingOf = async (runId: string) =>
  (await server.api<{ approvals: Approval[] }>('GET', `/api/approvals?state=pending&run=${runId}`)).body
    .approvals;
const runOf = async (id: string) => (await server.api<{ run: Run }>('GET', `/api/runs/${id}`)).body.run;

async function payout(payee: string, amount_usd: number): Promise<Run> {
  const res = await server.api<{ run: Run }>('POST', '/api/runs', {
    workflow: 'payout',
    input: { payee, amount_usd },
    wait: 10,
  });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  expect(res.body.run.state).toBe('suspended');
  return res.body.run;
}

const shot = (page: Page, name: string) =>
  page.screenshot({ path: `/tmp/oncall-${name}.png`, fullPage: true, animations: 'disabled' });

/** Visible inputs whose placeholder does not fit (with room for Chromium's datalist arrow). */
function cutPlaceholders(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const ctx = document.createElement('canvas').getContext('2d')!;
    const cut: string[] = [];
    for (const el of document.querySelectorAll<HTMLInputElement>('input[placeholder]')) {
      if (!el.offsetParent) continue;
      const cs = getComputedStyle(el);
      ctx.font = `${cs.fontStyle} ${cs.fontWeight} ${cs.fontSize} ${cs.fontFamily}`;
      const need = ctx.measureText(el.placeholder).width + (el.list ? 20 : 0);
      const room = el.clientWidth - Number.parseFloat(cs.paddingLeft) - Number.parseFloat(cs.paddingRight);
      if (need > room) cut.push(`${el.name} "${el.placeholder}": needs ${Math.ceil(need)}px, has ${room}px`);
    }
    return cut;
  });
}

describe('the inbox as on-call uses it (real Chromium)', { timeout: 90_000 }, () => {
  beforeAll(async () => {
    setup = await startWithAdmin();
    ({ server, browser, admin } = setup);
  }, 60_000);

  afterAll(async () => {
    await setup?.close();
  });

  it('every item shows the first user message and the input, in view, plus the recent messages', async () => {
    const run = await payout('Request Ltd', 12);
    const page = await admin.newPage();
    try {
      await page.goto(`${server.url}/`);
      const item = inboxItem(page, run.id);
      await item.waitFor();
      const asked = item.locator('[data-first-message]');
      const input = item.locator('[data-input]');
      expect(await asked.isVisible()).toBe(true);
      expect(await input.isVisible()).toBe(true);
      expect(await asked.textContent()).toMatch(/^Pay \$12\.00 to Request Ltd\./);
      expect(await input.textContent()).toBe('{"payee":"Request Ltd","amount_usd":12}');
      await expect(item.locator('details.recent summary').textContent()).resolves.toMatch(
        /^Last \d+ messages?$/,
      );
      await item.locator('summary', { hasText: 'Extend, deny or kill' }).click();
      expect(await cutPlaceholders(page)).toEqual([]);
      await shot(page, 'inbox');
    } finally {
      await page.close();
    }
  });

  it('a suspended run is decided from its own page; the answer lands back there and the audit log has it', async () => {
    const run = await payout('Run Page Co', 7);
    const [pending] = await pendingOf(run.id);
    const page = await admin.newPage();
    try {
      await page.goto(`${server.url}/runs/${run.id}`);
      await page.locator('html[data-live="ready"]').waitFor({ state: 'attached' });
      await liveQuiet(page);
      const card = page.locator('section.actions-card');
      expect(await card.locator('[data-first-message]').isVisible()).toBe(true);
      expect(await cutPlaceholders(page)).toEqual([]);
      await shot(page, 'run-pending');

      const flash = await submitWithReason(
        page,
        formWith(card, 'Approve'),
        'Approve',
        'checked with the requester',
      );
      expect(flash).toEqual({ ok: true, text: `${pending!.id} approved` });
      expect(new URL(page.url()).pathname).toBe(`/runs/${run.id}`);

      const done = await poll(
        () => runOf(run.id),
        (r) => r.state === 'done' || r.state === 'failed',
      );
      expect(done.state).toBe('done');
      const [decided] = (
        await server.api<{ approvals: Approval[] }>('GET', `/api/approvals?state=all&run=${run.id}`)
      ).body.approvals;
      expect(decided).toMatchObject({
        state: 'approved',
        decision: { action: 'approve', actor: 'admin', reason: 'checked with the requester' },
      });
      await page.goto(`${server.url}/runs/${run.id}`);
      const audit = page.getByRole('table', { name: 'Audit entries for this run, oldest first' });
      const row = audit.getByRole('row').filter({ hasText: 'approval.approve' });
      await expect(row.textContent()).resolves.toMatch(/admin[\s\S]*checked with the requester/);
      expect(await page.locator('section.actions-card').count()).toBe(0);
    } finally {
      await page.close();
    }
  });

  it('a run is denied from its page through "Extend or deny"', async () => {
    const run = await payout('Deny Here Inc', 3);
    const page = await admin.newPage();
    try {
      await page.goto(`${server.url}/runs/${run.id}`);
      await page.locator('html[data-live="ready"]').waitFor({ state: 'attached' });
      await liveQuiet(page);
      const card = page.locator('section.actions-card');
      await card.locator('summary', { hasText: 'Extend or deny' }).click();
      const flash = await submitWithReason(page, formWith(card, 'Deny'), 'Deny', 'not within policy');
      expect(flash.ok, flash.text).toBe(true);
      expect(new URL(page.url()).pathname).toBe(`/runs/${run.id}`);
      const [a] = (
        await server.api<{ approvals: Approval[] }>('GET', `/api/approvals?state=all&run=${run.id}`)
      ).body.approvals;
      expect(a).toMatchObject({ state: 'denied', decision: { action: 'deny', reason: 'not within policy' } });
    } finally {
      await page.close();
    }
  });

  it('a viewer is told, where the buttons would be, why there are none', async () => {
    const run = await payout('Viewer Hint Co', 5);
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    try {
      const page = await logIn(context, server.url, VIEWER_TOKEN);
      await inboxItem(page, run.id).waitFor();
      const hint = page.locator('[data-viewer-hint]');
      expect(await hint.isVisible()).toBe(true);
      await expect(hint.textContent()).resolves.toMatch(/viewer role[\s\S]*deciding needs the operator role/);
      expect(await page.getByRole('button', { name: 'Approve', exact: true }).count()).toBe(0);
      // The request is there for a viewer too.
      expect(await inboxItem(page, run.id).locator('[data-input]').isVisible()).toBe(true);
      await shot(page, 'inbox-viewer');

      await page.goto(`${server.url}/runs/${run.id}`);
      expect(await page.locator('[data-viewer-hint]').isVisible()).toBe(true);
      expect(await page.getByRole('button', { name: /^(Approve|Kill)/ }).count()).toBe(0);
    } finally {
      await context.close();
    }
  });

  it('every page with reason fields shows their whole placeholder (the runs list, budgets, kill switches, keys)', async () => {
    // A suspended run (a kill form in the runs list) and a kill switch on (a Lift form).
    await payout('Placeholder Ltd', 1);
    expect(
      (await server.api('POST', '/api/kill-switches', { scope: 'team:nobody', reason: 'placeholder test' }))
        .status,
    ).toBe(201);
    const page = await admin.newPage();
    try {
      for (const path of ['/runs?state=suspended', '/budgets/global', '/kill-switches', '/keys']) {
        await page.goto(`${server.url}${path}`);
        await page.locator('input[name="reason"]').first().waitFor();
        expect(await cutPlaceholders(page), path).toEqual([]);
      }
    } finally {
      await server.api('POST', '/api/kill-switches/team:nobody/lift', { reason: 'placeholder test done' });
      await page.close();
    }
  });

  it('the spend page fits 1,280 px wide, and its height does not grow with the period', async () => {
    // A payout approved: model calls and a (free) tool call under a workflow.
    const run = await payout('Spend Page Ltd', 2);
    const [pending] = await pendingOf(run.id);
    expect(
      (await server.api('POST', `/api/approvals/${pending!.id}/approve`, { reason: 'spend page test' }))
        .status,
    ).toBe(200);
    await poll(
      () => runOf(run.id),
      (r) => r.state === 'done',
    );
    // Spend across teams, seats and two models.
    for (const [team, seat, model] of [
      ['payments', 'ana', 'claude-haiku-4-5'],
      ['payments', 'ben', 'claude-sonnet-4-6'],
      ['search', 'cy', 'claude-haiku-4-5'],
      ['support', 'di', 'claude-sonnet-4-6'],
      ['growth', 'ed', 'claude-haiku-4-5'],
      ['ops', 'fay', 'claude-haiku-4-5'],
      ['data', 'gus', 'claude-sonnet-4-6'],
    ] as const) {
      const key = await server.api<{ key: string }>('POST', '/api/keys', {
        team,
        env: 'prod',
        seat,
        reason: 'spend page test',
      });
      expect(key.status).toBe(201);
      const res = await fetch(`${server.url}/v1/messages`, {
        method: 'POST',
        headers: {
          'x-api-key': key.body.key,
          'anthropic-version': '2023-06-01',
          'content-type': 'application/json',
        },
        body: JSON.stringify({
          model,
          max_tokens: 50,
          messages: [{ role: 'user', content: `Hello from ${seat}` }],
        }),
      });
      expect(res.status).toBe(200);
    }
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    try {
      const page = await context.newPage();
      await page.goto(`${server.url}/login`);
      await page.getByLabel('Operator token').fill(ADMIN_TOKEN);
      await page.getByRole('button', { name: 'Log in' }).click();
      await page.waitForURL(`${server.url}/`);

      const measure = async (days: number) => {
        await page.goto(`${server.url}/spend?days=${days}`);
        for (const id of ['team', 'workflow', 'model', 'provider'])
          await page.locator(`[data-chart="${id}"] canvas`).waitFor({ state: 'visible' });
        return page.evaluate(() => {
          const clipped = [...document.querySelectorAll('main *')]
            // Screen-reader-only text is clipped on purpose.
            .filter((el) => !el.closest('.sr'))
            .filter(
              (el) => el.scrollWidth > el.clientWidth + 1 && getComputedStyle(el).overflowX !== 'visible',
            )
            .map((el) => `${el.tagName.toLowerCase()}.${el.className}`);
          return {
            width: document.documentElement.scrollWidth,
            height: document.documentElement.scrollHeight,
            clipped,
          };
        });
      };
      const month = await measure(30);
      await shot(page, 'spend');
      const quarter = await measure(90);
      const week = await measure(7);
      console.log(
        `spend page at 1280 wide: 7d ${week.height}px, 30d ${month.height}px, 90d ${quarter.height}px tall`,
      );
      for (const m of [week, month, quarter]) {
        expect(m.width).toBeLessThanOrEqual(1280);
        expect(m.clipped).toEqual([]);
        expect(m.height).toBeLessThan(1_900);
      }
      // The period changes the bars, not the page's height.
      expect(Math.abs(quarter.height - week.height)).toBeLessThan(40);

      // Tools are listed apart from models; the models' numbers hold no tool and no "—".
      const tools = page.locator('table[data-table="top-tools"]');
      await expect(tools.textContent()).resolves.toContain('send_payout');
      await expect(page.locator('table[data-table="top-models"]').textContent()).resolves.not.toContain(
        'send_payout',
      );
      await expect(page.locator('table[data-table="model"]').textContent()).resolves.not.toContain('—');
    } finally {
      await context.close();
    }
  });
});
