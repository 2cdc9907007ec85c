import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, type Harness, startHarness } from '../../helpers/harness.ts';

/**
 * The runs pages on a real server over real HTTP (the shipped workflows on the emulator), as a
 * browser without JavaScript sees them: log in with a token, read pages with the session cookie,
 * post forms with the CSRF token and follow the redirects.
 */

const VIEWER_TOKEN = 'cpo_viewer-token-0123456789abcdef';
const CONFIG = {
  routing: { classes: { cheap: ['claude-haiku-4-5'], standard: ['claude-sonnet-4-6'] } },
  auth: { operators: [{ name: 'vera', role: 'viewer', token: VIEWER_TOKEN }] },
};

interface Run {
  id: string;
  workflow: string;
  state: string;
  reason?: string;
  steps: number;
  spent_micros: number;
}
interface Ledger {
  id: string;
  kind: string;
  name: string;
  outcome: string;
  code?: string;
  tokens: { input: number; output: number };
}
interface Audit {
  action: string;
  actor: string;
  reason: string;
}

/** A logged-in browser: the session cookie and form posts that do not follow redirects. */
interface Browser {
  get(path: string): Promise<{ status: number; html: string; location: string | null }>;
  post(
    path: string,
    form: Record<string, string>,
  ): Promise<{ status: number; html: string; location: string | null }>;
}

/** Text as the page shows it (the entities hono/jsx escapes, undone). */
const text = (html: string) =>
  html
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');

const csrfOf = (html: string) => {
  const m = /name="_csrf" value="([^"]+)"/.exec(html);
  if (!m) throw new Error('no CSRF token on the page');
  return m[1]!;
};

/** The words of a piece of page, without its tags. */
const words = (html: string) => text(html.replace(/<[^>]+>/g, ''));

/** The `<tr ...>` of a table row whose opening tag contains `marker`, up to its `</tr>`. */
function rowOf(html: string, marker: string): string {
  const at = html.indexOf(marker);
  if (at < 0) throw new Error(`no row ${marker}`);
  const start = html.lastIndexOf('<tr', at);
  return html.slice(start, html.indexOf('</tr>', at) + 5);
}

/** The run ids of the list's rows, in page order. */
const listed = (html: string) => [...html.matchAll(/<tr id="run-([^"]+)"/g)].map((m) => m[1]!);

describe('runs pages', () => {
  let h: Harness;
  let admin: Browser;
  let viewer: Browser;
  const runs: Record<'triage' | 'payments' | 'refund' | 'research', Run> = {} as never;
  const LONG_TICKET = `Order A-1001 is late. <b>bold</b> ${'The parcel has not moved for a week. '.repeat(40)}`;

  async function login(token: string): Promise<Browser> {
    const res = await fetch(`${h.url}/login`, {
      method: 'POST',
      body: new URLSearchParams({ token, next: '/runs' }),
      redirect: 'manual',
    });
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/runs');
    const cookie = res.headers
      .getSetCookie()
      .find((c) => c.startsWith('cp_session='))
      ?.split(';')[0];
    expect(cookie).toBeTruthy();
    const send = async (path: string, init: RequestInit = {}) => {
      const r = await fetch(`${h.url}${path}`, {
        ...init,
        headers: { cookie: cookie!, ...(init.headers as Record<string, string>) },
        redirect: 'manual',
      });
      return { status: r.status, html: await r.text(), location: r.headers.get('location') };
    };
    return {
      get: (path) => send(path),
      post: (path, form) => send(path, { method: 'POST', body: new URLSearchParams(form) }),
    };
  }

  const start = async (workflow: string, input: Record<string, unknown>, extra = {}) => {
    const res = await h.api<{ run: Run }>('POST', '/api/runs', { workflow, input, wait: 20, ...extra });
    expect(res.status).toBe(201);
    return res.body.run;
  };
  const getRun = async (id: string) => (await h.api<{ run: Run }>('GET', `/api/runs/${id}`)).body.run;
  const audit = async (id: string) =>
    (await h.api<{ entries: Audit[] }>('GET', `/api/audit?target=run:${id}`)).body.entries;
  const refund = () => start('refund', { order_id: 'A-1001', reason: 'arrived damaged' });

  beforeAll(async () => {
    h = await startHarness({ workflows: true, config: CONFIG });
    // Oldest first: the list shows them the other way round.
    runs.triage = await start('triage', { ticket: LONG_TICKET, customer: 'Ann' });
    runs.payments = await start('triage', { ticket: 'Order A-1002 is lost' }, { team: 'payments' });
    runs.refund = await refund();
    runs.research = await start('research', { question: 'why is the sky blue' });
    expect(runs.triage.state).toBe('done');
    expect(runs.payments.state).toBe('done');
    expect(runs.refund).toMatchObject({ state: 'suspended', reason: 'approval_required' });
    expect(runs.research).toMatchObject({ state: 'suspended', reason: 'spend_box' });
    admin = await login(ADMIN_TOKEN);
    viewer = await login(VIEWER_TOKEN);
  });
  afterAll(async () => {
    await h?.close();
  });

  it('needs a session: a page redirects to the login, a form post is refused', async () => {
    const page = await fetch(`${h.url}/runs?state=done`, { redirect: 'manual' });
    expect(page.status).toBe(303);
    expect(page.headers.get('location')).toBe(`/login?next=${encodeURIComponent('/runs?state=done')}`);
    const post = await fetch(`${h.url}/runs/${runs.refund.id}/kill`, {
      method: 'POST',
      body: new URLSearchParams({ reason: 'x' }),
      redirect: 'manual',
    });
    expect(post.status).toBe(401);
  });

  it('lists the runs newest first with state, workflow@version, who started them, spend, steps and times', async () => {
    const { status, html } = await admin.get('/runs');
    expect(status).toBe(200);
    expect(html).toContain('<title>Runs · Chokepoint</title>');
    expect(html).toContain('data-live="runs"');
    expect(html).toMatch(/<a href="\/runs" aria-current="page">Runs<\/a>/);
    expect(listed(html)).toEqual([runs.research.id, runs.refund.id, runs.payments.id, runs.triage.id]);

    const refundRow = rowOf(html, `id="run-${runs.refund.id}"`);
    expect(refundRow).toContain(`href="/runs/${runs.refund.id}"`);
    expect(refundRow).toContain('<span class="state suspended">suspended</span>');
    expect(refundRow).toContain('approval gate');
    expect(refundRow).toContain('refund@1');
    expect(words(refundRow)).toContain('admin (default/default)');
    expect(text(refundRow)).toContain(`$${(runs.refund.spent_micros / 1e6).toFixed(6)} of $0.25`);
    expect(refundRow).toMatch(/3 \/ 8/);
    expect(refundRow).toMatch(/<time datetime="[^"]+Z" title="[^"]+ UTC">\d+s ago<\/time>/);

    const paymentsRow = rowOf(html, `id="run-${runs.payments.id}"`);
    expect(paymentsRow).toContain('<span class="state done">done</span>');
    expect(words(paymentsRow)).toContain('admin (payments/default)');
    expect(rowOf(html, `id="run-${runs.research.id}"`)).toContain('spend box');
    // Columns a phone hides are marked; every column has a header.
    expect(html).toContain('<th scope="col" class="opt">Started by</th>');
    expect(html.match(/<th scope="col"/g)?.length).toBe(9);
  });

  it('gives operators a kill form (reason, confirmation, CSRF) on running and suspended runs only', async () => {
    const { html } = await admin.get('/runs');
    const refundRow = rowOf(html, `id="run-${runs.refund.id}"`);
    expect(refundRow).toContain(`action="/runs/${runs.refund.id}/kill"`);
    expect(refundRow).toMatch(/data-confirm="Kill run [^"]+\(refund\)\? It stops at once/);
    expect(refundRow).toContain(`name="_csrf" value="${csrfOf(html)}"`);
    expect(refundRow).toMatch(/<input name="reason" required=""/);
    expect(refundRow).toContain(`<span>Reason to kill ${runs.refund.id}</span>`);
    expect(refundRow).toContain('>Kill<span class="sr"> run ');
    expect(rowOf(html, `id="run-${runs.research.id}"`)).toContain('/kill"');
    expect(rowOf(html, `id="run-${runs.triage.id}"`)).not.toContain('/kill"');
    expect(rowOf(html, `id="run-${runs.payments.id}"`)).not.toContain('<form');
  });

  it('filters by workflow, state and team with a GET form that keeps its values', async () => {
    const suspended = await admin.get('/runs?state=suspended');
    expect(listed(suspended.html)).toEqual([runs.research.id, runs.refund.id]);
    expect(suspended.html).toMatch(/<option value="suspended" selected="">suspended<\/option>/);
    expect(suspended.html).toContain('<a href="/runs">Clear filters</a>');

    const triage = await admin.get('/runs?workflow=triage');
    expect(listed(triage.html)).toEqual([runs.payments.id, runs.triage.id]);
    expect(triage.html).toMatch(/<option value="triage" selected="">triage<\/option>/);
    // The workflow choices are the hosted workflows.
    for (const w of ['refund', 'research', 'triage']) expect(triage.html).toContain(`<option value="${w}"`);

    const team = await admin.get('/runs?team=payments');
    expect(listed(team.html)).toEqual([runs.payments.id]);
    expect(team.html).toContain('<input name="team" value="payments"');

    const none = await admin.get('/runs?workflow=refund&state=done');
    expect(listed(none.html)).toEqual([]);
    expect(none.html).toContain('No runs match these filters.');

    // A state that does not exist is ignored rather than an error page.
    const bogus = await admin.get('/runs?state=bogus');
    expect(bogus.status).toBe(200);
    expect(listed(bogus.html).length).toBeGreaterThanOrEqual(4);
  });

  it("pages with the API's cursor, keeping the filters", async () => {
    const first = await admin.get('/runs?workflow=triage&limit=1');
    expect(listed(first.html)).toEqual([runs.payments.id]);
    const next = /<a href="([^"]+)" rel="next">Older runs →<\/a>/.exec(first.html);
    expect(next).toBeTruthy();
    const href = text(next![1]!);
    expect(href).toMatch(/^\/runs\?workflow=triage&limit=1&cursor=./);
    const second = await admin.get(href);
    expect(listed(second.html)).toEqual([runs.triage.id]);
    expect(second.html).toContain(`<a href="${'/runs?workflow=triage&amp;limit=1'}">Newest runs</a>`);
  });

  it('shows a run: header, limits as bars, the timeline merged with the ledger, the conversation, suspensions and audit', async () => {
    const id = runs.refund.id;
    const { status, html } = await admin.get(`/runs/${id}`);
    expect(status).toBe(200);
    const page = text(html);
    expect(html).toContain(`<title>Run ${id} · Chokepoint</title>`);
    expect(html).toContain(`data-live="run:${id}"`);
    expect(html).toContain('<span class="state suspended">suspended</span>');
    expect(html).toContain('<strong class="why">approval gate</strong>');
    expect(html).toContain(`<a href="/runs?workflow=refund">refund@1</a>`);
    expect(page).toContain('started by <strong>admin</strong> (team default, env default)');

    // Limits: spend, time (from clockStart) and steps, each a bar with its numbers.
    const spend = `$${(runs.refund.spent_micros / 1e6).toFixed(6)} of $0.25`;
    expect(page).toContain(spend);
    expect(page).toMatch(/<th scope="row">Time<\/th>[\s\S]*?class="bar"[\s\S]*?\d+s of 5m/);
    expect(page).toMatch(/<th scope="row">Steps<\/th>[\s\S]*?class="bar"[\s\S]*?3 of 8/);
    expect(page).toContain('the clock keeps running while the run waits');

    // Timeline: one row per step, each with its ledger entry's numbers.
    const ledger = (await h.api<{ entries: Ledger[] }>('GET', `/api/ledger?run=${id}&limit=1000`)).body
      .entries;
    expect(ledger).toHaveLength(3);
    const steps = [1, 2, 3].map((n) => rowOf(html, `id="step-${n}"`));
    expect(steps.map((r) => /<td>([^<]+)<\/td>\s*<td class="opt num">/.exec(r)?.[1])).toEqual([
      'claude-haiku-4-5',
      'lookup_order',
      'claude-haiku-4-5',
    ]);
    for (const e of ledger) {
      const row = rowOf(html, `data-ledger="${e.id}"`);
      expect(row).toContain(`<td class="opt">${e.kind}</td>`);
      expect(row).toContain(`<td class="opt num">${e.tokens.input.toLocaleString('en-US')}</td>`);
      expect(row).toContain(`<span class="outcome ok">ok</span>`);
      if (e.kind === 'model') expect(row).toMatch(/<td class="opt num">0%<\/td>/);
      expect(row).toMatch(/<td class="opt num">\d+ ms<\/td>/);
    }
    expect(page).toMatch(/Total \(3 calls\)/);
    for (const col of [
      'Input',
      'Cache write',
      'Cache read',
      'Output',
      'Cost',
      'Cache hit',
      'Latency',
      'Outcome',
    ])
      expect(html).toMatch(new RegExp(`<th scope="col"[^>]*>${col}</th>`));

    // The conversation: the input, the model's tool calls and the tool's answer.
    expect(page).toContain('"order_id": "A-1001"');
    // The emulated model takes its tool inputs from the conversation: the order the user named,
    // the total the lookup found.
    expect(page).toContain('→ lookup_order({"order_id":"A-1001"})');
    expect(page).toContain('{"total_usd":120,"status":"delivered damaged"}');
    expect(page).toContain('→ issue_refund({"order_id":"A-1001","amount_usd":120})');
    expect(html).toContain('id="msg-3"');

    // The suspension, with a link to it in the inbox, the kill form, and the audit log.
    const item = rowOf(html, `data-approval="${id}.1"`);
    expect(item).toContain(`<a href="/#item-${id}.1">${id}.1</a>`);
    expect(text(item)).toContain('gate: wants to call issue_refund');
    expect(item).toContain('<span class="state pending">pending</span>');
    expect(html).toContain('Act on this run');
    // Decided right here: the four decisions' forms, back to this page, with the request shown.
    for (const action of ['approve', 'extend', 'deny'])
      expect(html).toContain(`action="/approvals/${id}.1/${action}"`);
    const at = html.indexOf(`data-decide="${id}.1"`);
    const decide = html.slice(at, html.indexOf('</section>', at));
    expect(decide).toContain('Refund request for order A-1001: arrived damaged');
    expect(html).toContain(`action="/runs/${id}/kill"`);
    expect(html).toContain(`name="back" value="/runs/${id}"`);
    const started = rowOf(html, 'data-audit="run.start"');
    expect(started).toContain('started refund@1');
    expect(started).toContain('<td>admin</td>');
  });

  it('shows refused attempts (not in the journal) in the timeline and why the run stopped', async () => {
    const id = runs.research.id;
    const { html } = await admin.get(`/runs/${id}`);
    const run = await getRun(id);
    const ledger = (await h.api<{ entries: Ledger[] }>('GET', `/api/ledger?run=${id}&limit=1000`)).body
      .entries;
    const refused = ledger.filter((e) => e.outcome === 'refused');
    expect(refused).toHaveLength(1);
    const row = rowOf(html, `data-ledger="${refused[0]!.id}"`);
    expect(row).toContain('class="attempt"');
    expect(row).toContain('<span class="outcome refused">refused (budget_exhausted)</span>');
    expect(row).toMatch(/<td class="num">—<\/td>/); // no step number
    expect(html.match(/<tr id="step-\d+"/g)).toHaveLength(run.steps);
    expect(html.match(/data-ledger="/g)).toHaveLength(ledger.length);
    expect(html).toContain('<strong class="why">spend box</strong>');
    expect(text(html)).toMatch(/<dt>next call up to<\/dt><dd>\$0\.\d+<\/dd>/);
    expect(text(html)).toMatch(/<dt>spend box<\/dt><dd>\$0\.10<\/dd>/);
  });

  it('shows the output, escapes what the run said, and cuts long values behind a <details>', async () => {
    const { html } = await admin.get(`/runs/${runs.triage.id}`);
    expect(html).toContain('<span class="state done">done</span>');
    expect(html).toContain('<h2 id="h-result">Output</h2>');
    expect(text(html)).toContain('"answer": "Emulated reply: Ticket from Ann: Order A-1001 is late.');
    expect(html).not.toContain('<b>bold</b>');
    expect(html).toContain('&lt;b&gt;bold&lt;/b&gt;');
    expect(html).toMatch(/<details><summary>Show all \([\d,]+ characters\)<\/summary><pre>/);
    // A finished run has nothing to act on.
    expect(html).not.toContain('Act on this run');
    expect(html).not.toContain('/kill"');
    expect(html).toContain('This run has not waited for a human.');
  });

  it('a run that does not exist is a 404 page', async () => {
    const res = await admin.get('/runs/run_nope');
    expect(res.status).toBe(404);
    expect(res.html).toContain('<h1>Not found</h1>');
    expect(res.html).toContain('no run run_nope');
  });

  it('kills a run from the list through the API: redirect back with a flash, the audit entry, the run page updated', async () => {
    const run = await refund();
    expect(run.state).toBe('suspended');
    const list = await admin.get('/runs?state=suspended');
    expect(list.html).toContain(`action="/runs/${run.id}/kill"`);
    const res = await admin.post(`/runs/${run.id}/kill`, {
      _csrf: csrfOf(list.html),
      reason: 'no longer needed',
      back: '/runs?state=suspended',
    });
    expect(res.status).toBe(303);
    expect(res.location).toBe(`/runs?state=suspended&ok=${encodeURIComponent(`${run.id} killed`)}`);
    expect(await getRun(run.id)).toMatchObject({ state: 'killed', reason: 'killed' });
    expect(await audit(run.id)).toContainEqual(
      expect.objectContaining({ action: 'run.kill', actor: 'admin', reason: 'no longer needed' }),
    );

    const back = await admin.get(res.location!);
    expect(back.html).toContain(`<p class="flash ok" role="status">${run.id} killed</p>`);
    expect(listed(back.html)).not.toContain(run.id);

    const page = await admin.get(`/runs/${run.id}`);
    expect(page.html).toContain('<span class="state killed">killed</span>');
    const kill = rowOf(page.html, 'data-audit="run.kill"');
    expect(kill).toContain('no longer needed');
    expect(text(kill)).toContain('suspended → killed');
    expect(rowOf(page.html, `data-approval="${run.id}.1"`)).toContain(
      '<span class="state killed">killed</span>',
    );
    expect(page.html).not.toContain('Act on this run');
  });

  it('a kill without a reason comes back with the error; a foreign back path is ignored', async () => {
    const run = await refund();
    const page = await admin.get(`/runs/${run.id}`);
    const res = await admin.post(`/runs/${run.id}/kill`, {
      _csrf: csrfOf(page.html),
      reason: ' ',
      back: '//evil.example/runs',
    });
    expect(res.status).toBe(303);
    // No Referer either: back to the run's page, with the API's message.
    expect(res.location).toBe(
      `/runs/${run.id}?error=${encodeURIComponent('reason: required: say why (it goes to the audit log)')}`,
    );
    expect((await getRun(run.id)).state).toBe('suspended');
  });

  it('a POST without the CSRF token is refused (403) and changes nothing', async () => {
    const run = runs.refund;
    const res = await admin.post(`/runs/${run.id}/kill`, { reason: 'runaway' });
    expect(res.status).toBe(403);
    expect(res.html).toContain('CSRF');
    const forged = await admin.post(`/runs/${run.id}/kill`, { reason: 'runaway', _csrf: 'forged' });
    expect(forged.status).toBe(403);
    expect((await getRun(run.id)).state).toBe('suspended');
    expect((await audit(run.id)).map((e) => e.action)).not.toContain('run.kill');
  });

  it('a viewer sees the pages without kill forms, and a forged kill with a valid CSRF token is a 403', async () => {
    const list = await viewer.get('/runs');
    expect(list.status).toBe(200);
    expect(list.html).toContain('vera <small>(viewer)</small>');
    expect(listed(list.html)).toContain(runs.refund.id);
    expect(list.html).not.toContain('/kill"');
    expect(list.html).not.toContain('>Kill<');
    expect(list.html).not.toContain('<th scope="col">Actions</th>');

    const page = await viewer.get(`/runs/${runs.refund.id}`);
    expect(page.status).toBe(200);
    expect(page.html).toContain('Timeline');
    expect(page.html).not.toContain('Act on this run');
    expect(page.html).not.toContain('/kill"');
    expect(page.html).not.toContain('/approve"');
    expect(words(page.html)).toContain('deciding needs the operator role');

    const res = await viewer.post(`/runs/${runs.refund.id}/kill`, {
      _csrf: csrfOf(page.html),
      reason: 'runaway',
    });
    expect(res.status).toBe(403);
    expect(res.html).toContain('this needs the operator role');
    expect((await getRun(runs.refund.id)).state).toBe('suspended');
    expect((await audit(runs.refund.id)).map((e) => e.action)).not.toContain('run.kill');
  });

  it('the refund example asks about the order and amount of its input; the inbox item shows the request; decided from the run page', async () => {
    const run = await start('refund', { order_id: 'A-1002', reason: 'lost in transit', amount_usd: 20 });
    expect(run).toMatchObject({ state: 'suspended', reason: 'approval_required' });
    const [item] = (
      await h.api<{ approvals: Record<string, unknown>[] }>(
        'GET',
        `/api/approvals?run=${run.id}&state=pending`,
      )
    ).body.approvals;
    expect(item).toMatchObject({
      summary: 'gate: wants to call issue_refund with {"order_id":"A-1002","amount_usd":20}',
      detail: { tool: 'issue_refund', input: { order_id: 'A-1002', amount_usd: 20 } },
      firstUserMessage: 'Refund request for order A-1002 ($20.00 asked): lost in transit',
      inputJson: '{"order_id":"A-1002","reason":"lost in transit","amount_usd":20}',
    });

    const inbox = await admin.get('/');
    const card = inbox.html.slice(inbox.html.indexOf(`id="item-${item!.id}"`));
    const shown = words(card.slice(0, card.indexOf('</article>')));
    expect(shown).toContain('Refund request for order A-1002 ($20.00 asked): lost in transit');
    expect(shown).toContain('{"order_id":"A-1002","reason":"lost in transit","amount_usd":20}');

    // Approved from the run's page: back to it, the run goes on, the decision is audited.
    const page = await admin.get(`/runs/${run.id}`);
    const res = await admin.post(`/approvals/${item!.id}/approve`, {
      _csrf: csrfOf(page.html),
      back: `/runs/${run.id}`,
      reason: 'within policy',
    });
    expect(res.status).toBe(303);
    expect(res.location).toBe(`/runs/${run.id}?ok=${encodeURIComponent(`${item!.id} approved`)}`);
    expect((await audit(run.id)).map((e) => [e.action, e.actor, e.reason])).toContainEqual([
      'approval.approve',
      'admin',
      'within policy',
    ]);
  });
});
