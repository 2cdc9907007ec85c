import Anthropic from '@anthropic-ai/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, type Backend, type Harness, startHarness } from '../../helpers/harness.ts';

/**
 * The money pages (budgets, kill switches, spend, keys) on a real server over real HTTP: a
 * logged-in session reads them as HTML and changes state with their forms, and the effect is
 * checked where it matters, on /v1/messages calls made with the Anthropic SDK.
 */

const VIEWER_TOKEN = 'cpo_viewer-token-0123456789';
const OPERATOR_TOKEN = 'cpo_oncall-token-0123456789';
const CONFIG = {
  // The shipped workflows name model classes.
  routing: { classes: { cheap: ['claude-haiku-4-5'], standard: ['claude-sonnet-4-6'] } },
  auth: {
    operators: [
      { name: 'vera', role: 'viewer', token: VIEWER_TOKEN },
      { name: 'oncall', role: 'operator', token: OPERATOR_TOKEN },
    ],
  },
};

interface Page {
  status: number;
  html: string;
  headers: Headers;
}

/** A browser session: the cp_session cookie, forms posted as a browser posts them. */
class Session {
  private cookie = '';
  csrf = '';
  constructor(private readonly base: string) {}

  async login(token: string): Promise<this> {
    const res = await fetch(`${this.base}/login`, {
      method: 'POST',
      body: new URLSearchParams({ token, next: '/budgets' }),
      redirect: 'manual',
    });
    expect(res.status).toBe(303);
    const set = res.headers.getSetCookie().find((c) => c.startsWith('cp_session='));
    expect(set).toBeDefined();
    this.cookie = set!.split(';')[0]!;
    const page = await this.get('/budgets');
    this.csrf = csrfOf(page.html);
    return this;
  }

  async get(path: string): Promise<Page> {
    const res = await fetch(`${this.base}${path}`, { headers: { cookie: this.cookie }, redirect: 'manual' });
    return { status: res.status, html: await res.text(), headers: res.headers };
  }

  /** POSTs a form; the CSRF token is added unless `csrf: false`. */
  async post(path: string, form: Record<string, string>, opts: { csrf?: false } = {}): Promise<Page> {
    const body = new URLSearchParams(opts.csrf === false ? form : { ...form, _csrf: this.csrf });
    const res = await fetch(`${this.base}${path}`, {
      method: 'POST',
      headers: { cookie: this.cookie },
      body,
      redirect: 'manual',
    });
    return { status: res.status, html: await res.text(), headers: res.headers };
  }
}

function csrfOf(html: string): string {
  const m = /name="_csrf" value="([^"]+)"/.exec(html);
  if (!m) throw new Error('no _csrf field on the page');
  return m[1]!;
}

const postForms = (html: string) =>
  [...html.matchAll(/<form method="post" action="([^"]+)"/g)].map((m) => m[1]);
const decode = (s: string) =>
  s
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
/** The flash message a redirect carries (`?ok=` / `?error=`). */
function flashOf(p: Page): { ok?: string; error?: string } {
  const loc = new URL(p.headers.get('location') ?? '/', 'http://x');
  return { ok: loc.searchParams.get('ok') ?? undefined, error: loc.searchParams.get('error') ?? undefined };
}

const ask = (client: Anthropic) =>
  client.messages.create({
    model: 'claude-haiku-4-5',
    max_tokens: 16,
    messages: [{ role: 'user', content: 'Hello' }],
  });

async function refusal(p: Promise<unknown>): Promise<InstanceType<typeof Anthropic.APIError>> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(Anthropic.APIError);
    return err as InstanceType<typeof Anthropic.APIError>;
  }
  throw new Error('expected the call to be refused');
}

const codeOf = (err: InstanceType<typeof Anthropic.APIError>) =>
  (err.error as { chokepoint?: { code?: string } } | undefined)?.chokepoint?.code;

describe.each(['embedded', 'redis'] as Backend[])('money pages (%s backend)', (backend) => {
  let h: Harness;
  let admin: Session;
  let alice: Anthropic;

  beforeAll(async () => {
    h = await startHarness({ backend, config: CONFIG, workflows: true });
    admin = await new Session(h.url).login(ADMIN_TOKEN);
    alice = (await h.client({ team: 'payments', env: 'prod', seat: 'alice' })).client;
    const bob = (await h.client({ team: 'search', env: 'prod', seat: 'bob', workflow: 'triage' })).client;
    await ask(alice);
    await ask(alice);
    await ask(bob);
  });
  afterAll(async () => {
    await h?.close();
  });

  it('lists real budgets with their use, state and the default ceilings, filtered by kind', async () => {
    const all = await admin.get('/budgets');
    expect(all.status).toBe(200);
    for (const scope of ['global', 'team:payments', 'team:search', 'seat:alice', 'workflow:triage']) {
      expect(all.html).toContain(`data-scope="${scope}"`);
    }
    expect(all.html).toContain(`href="/budgets/team%3Apayments"`);
    expect(all.html).toMatch(/class="bar"/);
    expect(all.html).toContain('<span class="state active">active</span>');
    const defaults = (
      await h.api<{ defaults: Record<string, { ceiling_usd: string }> }>('GET', '/api/budgets')
    ).body.defaults;
    expect(all.html).toContain('Default ceilings');
    expect(all.html).toContain(`$${defaults.team!.ceiling_usd}`);

    const teams = await admin.get('/budgets?kind=team');
    expect(teams.html).toContain('data-scope="team:payments"');
    expect(teams.html).not.toContain('data-scope="seat:alice"');
    expect(teams.html).toContain('<option value="team" selected="">team</option>');
  });

  it('shows one budget with its spend; an admin raises the ceiling with a reason and it is in the audit trail', async () => {
    const api = await h.api<{ budget: { spent_usd: string; ceiling_usd: string } }>(
      'GET',
      '/api/budgets/team:payments',
    );
    const before = api.body.budget.ceiling_usd;
    const detail = await admin.get('/budgets/team%3Apayments');
    expect(detail.status).toBe(200);
    expect(detail.html).toContain('Budget team:payments');
    expect(detail.html).toContain(`$${api.body.budget.spent_usd}`);
    expect(Number(api.body.budget.spent_usd)).toBeGreaterThan(0);
    expect(postForms(detail.html)).toEqual(
      expect.arrayContaining(['/budgets/team%3Apayments/ceiling', '/budgets/team%3Apayments/freeze']),
    );

    const raised = await admin.post('/budgets/team%3Apayments/ceiling', {
      amount: '123.45',
      reason: 'end of quarter',
    });
    expect(raised.status).toBe(303);
    expect(raised.headers.get('location')).toMatch(/^\/budgets\/team%3Apayments\?ok=/);
    expect(flashOf(raised).ok).toContain('$123.45');
    const after = await h.api<{ budget: { ceiling_usd: string } }>('GET', '/api/budgets/team:payments');
    expect(after.body.budget.ceiling_usd).toBe('123.45');

    const shown = await admin.get(raised.headers.get('location')!);
    expect(shown.html).toContain('class="flash ok"');
    const audit = /<table aria-labelledby="audit"[\s\S]*?<\/table>/.exec(shown.html)?.[0] ?? '';
    expect(audit).toContain('budget.ceiling');
    expect(audit).toContain('end of quarter');
    expect(audit).toContain('<td>admin</td>');
    expect(decode(audit)).toContain(`ceiling $${before} → ceiling $123.45`);

    // Without a reason the API refuses, and the page says why.
    const noReason = await admin.post('/budgets/team%3Apayments/ceiling', { amount: '200' });
    expect(noReason.status).toBe(303);
    expect(flashOf(noReason).error).toMatch(/reason/);
  });

  it('freezing a budget refuses the next call; unfreezing lets calls through', async () => {
    const frozen = await admin.post('/budgets/seat%3Aalice/freeze', { reason: 'investigating' });
    expect(flashOf(frozen).ok).toBe('seat:alice frozen');
    const err = await refusal(ask(alice));
    expect(codeOf(err)).toBe('budget_exhausted');
    const page = await admin.get('/budgets/seat%3Aalice');
    expect(page.html).toContain('<span class="state frozen">frozen</span>');
    expect(postForms(page.html)).toContain('/budgets/seat%3Aalice/unfreeze');
    expect(page.html).toContain('budget.freeze');

    const thawed = await admin.post('/budgets/seat%3Aalice/unfreeze', { reason: 'resolved' });
    expect(flashOf(thawed).ok).toBe('seat:alice unfrozen');
    await ask(alice);
  });

  it('the big red GLOBAL switch refuses the next /v1/messages call; lifting it lets calls through', async () => {
    const before = await admin.get('/kill-switches');
    expect(before.status).toBe(200);
    expect(before.html).toContain('class="big-red"');
    expect(before.html).toContain('data-confirm="Refuse every model call on every replica?"');
    expect(before.html).toContain('No kill switch is on.');

    const on = await admin.post('/kill-switches', { scope: 'global', reason: 'runaway spend' });
    expect(on.status).toBe(303);
    expect(on.headers.get('location')).toMatch(/^\/kill-switches\?ok=/);
    try {
      const err = await refusal(ask(alice));
      expect(err.status).toBe(403);
      expect(codeOf(err)).toBe('killed');

      const page = await admin.get('/kill-switches');
      expect(page.html).toContain('GLOBAL kill switch is ON');
      expect(page.html).not.toContain('class="big-red"');
      expect(page.html).toContain('class="banner killed"');
      const row = /<tr data-scope="global">[\s\S]*?<\/tr>/.exec(page.html)?.[0] ?? '';
      expect(row).toContain('<td>admin</td>');
      expect(row).toContain('runaway spend');
      expect(row).toContain('action="/kill-switches/global/lift"');
    } finally {
      const lifted = await admin.post('/kill-switches/global/lift', { reason: 'resolved' });
      expect(lifted.status).toBe(303);
      expect(flashOf(lifted).ok).toBe('Kill switch on global lifted');
    }
    await ask(alice);
    expect((await admin.get('/kill-switches')).html).toContain('No kill switch is on.');
  });

  it('kills one scope by kind and key, and lifts it', async () => {
    const on = await admin.post('/kill-switches', {
      kind: 'team',
      key: 'payments',
      reason: 'security incident',
    });
    expect(flashOf(on).ok).toContain('team:payments');
    try {
      expect(codeOf(await refusal(ask(alice)))).toBe('killed');
      const page = await admin.get('/kill-switches');
      expect(page.html).toContain('<tr data-scope="team:payments">');
      expect(postForms(page.html)).toContain('/kill-switches/team%3Apayments/lift');
      const bad = await admin.post('/kill-switches', { kind: 'team', key: 'no spaces', reason: 'x' });
      expect(flashOf(bad).error).toMatch(/bad scope key/);
    } finally {
      await admin.post('/kill-switches/team%3Apayments/lift', { reason: 'fix deployed' });
    }
    await ask(alice);
  });

  it('the spend page has the chart data and the same numbers in tables, top spenders, cache and alarms', async () => {
    // One call through the Vertex face, so the provider chart has a second provider.
    const { key } = await h.client({ team: 'payments', env: 'prod', seat: 'alice-gcp' });
    const vertex = await fetch(
      `${h.url}/vertex/projects/acme/locations/global/publishers/anthropic/models/claude-haiku-4-5:rawPredict`,
      {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          anthropic_version: 'vertex-2023-10-16',
          max_tokens: 16,
          messages: [{ role: 'user', content: 'Hello' }],
        }),
      },
    );
    expect(vertex.status).toBe(200);
    const page = await admin.get('/spend?days=7');
    expect(page.status).toBe(200);
    const json = /<script type="application\/json" id="spend-data">([\s\S]*?)<\/script>/.exec(page.html)?.[1];
    expect(json).toBeDefined();
    const data = JSON.parse(json!) as {
      days: string[];
      charts: { id: string; series: { key: string; label: string; values: number[] }[] }[];
    };
    expect(data.days).toHaveLength(7);
    expect(data.days[6]).toBe(new Date().toISOString().slice(0, 10));
    const chart = (id: string) => data.charts.find((c) => c.id === id)!;
    const today = (id: string, key: string) => chart(id).series.find((s) => s.key === key)?.values[6] ?? 0;
    expect(today('team', 'payments')).toBeGreaterThan(0);
    expect(today('team', 'search')).toBeGreaterThan(0);
    expect(today('workflow', 'triage')).toBeGreaterThan(0);
    expect(chart('workflow').series.find((s) => s.key === '(none)')?.label).toBe('(no workflow)');
    expect(today('model', 'claude-haiku-4-5')).toBeGreaterThan(0);
    // By provider: the ledger's provider names, the same numbers as `/api/spend?by=provider`.
    const providers = await h.api<{ rows: { key: string; cost_micros: number }[] }>(
      'GET',
      '/api/spend?by=provider',
    );
    for (const provider of ['anthropic', 'vertex']) {
      const api = providers.body.rows.find((r) => r.key === provider)?.cost_micros ?? 0;
      expect(api).toBeGreaterThan(0);
      expect(today('provider', provider)).toBe(api);
    }

    // The chart numbers agree with the API's totals.
    const teams = await h.api<{ rows: { key: string; cost_micros: number }[] }>('GET', '/api/spend?by=team');
    const payments = teams.body.rows.find((r) => r.key === 'payments')!.cost_micros;
    expect(
      chart('team')
        .series.find((s) => s.key === 'payments')!
        .values.reduce((a, b) => a + b),
    ).toBe(payments);

    expect(page.html).toContain('<script src="/assets/chart.js"></script>');
    // The chart script is an asset (the CSP allows no inline script).
    expect(page.html).toContain('<script src="/assets/spend.js"></script>');
    expect(page.html).not.toMatch(/<script>/);
    expect(await (await fetch(`${h.url}/assets/spend.js`)).text()).toContain('window.Chart');
    // Each chart has its numbers: one row per series over the period, no row per day (no "—").
    const numbers = (id: string) =>
      new RegExp(`<table class="spend" data-table="${id}">[\\s\\S]*?</table>`).exec(page.html)?.[0] ?? '';
    for (const id of ['team', 'workflow', 'model', 'provider']) {
      expect(page.html).toContain(`<canvas id="chart-${id}" role="img"`);
      const table = numbers(id);
      expect(table).toContain('<tr data-series=');
      expect(table).not.toContain('<th scope="col">Day</th>');
      expect(table).not.toContain('—');
    }
    expect(numbers('team')).toContain('<tr data-series="payments">');
    expect(numbers('provider')).toContain('<tr data-series="anthropic">');
    expect(numbers('provider')).toContain('<tr data-series="vertex">');
    expect(page.html).toContain('<h3 id="h-provider">Spend per day by provider</h3>');
    // Tools are not models: neither the model chart nor the provider chart lists them.
    expect(chart('model').series.some((s) => s.key.startsWith('tool:'))).toBe(false);
    expect(chart('provider').series.some((s) => s.key === '(tool)')).toBe(false);

    const top = (id: string) =>
      new RegExp(`<table class="top" data-table="${id}">[\\s\\S]*?</table>`).exec(page.html)?.[0] ?? '';
    expect(top('top-seats')).toContain('href="/budgets/seat%3Aalice"');
    expect(top('top-seats')).toContain('href="/budgets/seat%3Abob"');
    expect(top('top-workflows')).toContain('href="/budgets/workflow%3Atriage"');
    expect(top('top-models')).toContain('<tr data-key="claude-haiku-4-5">');
    expect(top('top-models')).not.toContain('tool:');
    for (const id of ['top-seats', 'top-workflows', 'top-models'])
      expect(top(id).match(/<tr data-key=/g)?.length ?? 0).toBeLessThanOrEqual(5);

    // A cache row for each workflow with calls; the hosted ones without any named in one line.
    expect(page.html).toContain('<tr data-workflow="triage">');
    const idle = /data-idle[^>]*>([\s\S]*?)<\/p>/.exec(page.html)?.[1] ?? '';
    for (const wf of ['refund', 'research'])
      expect(page.html.includes(`<tr data-workflow="${wf}">`) || idle.includes(wf), wf).toBe(true);
    expect(page.html).toContain('stable prefix allowed the cache to read');
    expect(page.html).toMatch(/data-expected[^>]*>[^<]*(\d+%|—)/);
    expect(page.html).toContain('Budgets over 80% of their ceiling');
    expect(page.html).toContain('<h2 id="alarms">');

    const served = await fetch(`${h.url}/assets/chart.js`);
    expect(served.status).toBe(200);
    expect(await served.text()).toContain('Chart');
  });

  it('the spend period is whole days, 1 to 90 (30 by default)', async () => {
    const days = async (q: string) => {
      const html = (await admin.get(`/spend${q}`)).html;
      const json = /id="spend-data">([\s\S]*?)<\/script>/.exec(html)![1]!;
      return (JSON.parse(json) as { days: string[] }).days.length;
    };
    const t0 = Date.now();
    expect(await days('?days=365')).toBe(90);
    const ms = Date.now() - t0;
    expect(ms).toBeLessThan(5000);
    expect(await days('')).toBe(30);
    expect(await days('?days=nope')).toBe(30);
    expect(await days('?days=1')).toBe(1);
  });

  it('lists budgets over 80% of their ceiling among the alarms', async () => {
    await admin.post('/budgets/seat%3Abob/ceiling', { amount: '0.000001', reason: 'incident: cap spend' });
    const page = await admin.get('/spend?days=1');
    const near = /<section aria-labelledby="near-ceiling">[\s\S]*?<\/section>/.exec(page.html)?.[0] ?? '';
    expect(near).toContain('data-scope="seat:bob"');
    expect(near).not.toContain('data-scope="global"');
  });

  it('creates a key shown once (never in a URL, not cached) that works as an API key, and revokes it', async () => {
    const list = await admin.get('/keys');
    expect(list.status).toBe(200);
    expect(list.html).toContain('href="/keys"');
    expect(postForms(list.html)).toContain('/keys');

    const created = await admin.post('/keys', {
      team: 'web',
      env: 'dev',
      seat: 'carol',
      label: 'carol laptop',
      sessionTimeBox: '30m',
      reason: 'new starter',
    });
    expect(created.status).toBe(200);
    expect(created.headers.get('location')).toBeNull();
    expect(created.headers.get('cache-control')).toBe('no-store');
    expect(created.html).toContain('shown once');
    const key = /value="(cp_[A-Za-z0-9_-]+)"/.exec(created.html)?.[1];
    expect(key).toBeDefined();
    expect(created.html.split(key!)).toHaveLength(2); // exactly once on the page
    const id = /Key (key_[A-Za-z0-9_-]+) created/.exec(created.html)?.[1];
    expect(id).toBeDefined();
    const row = new RegExp(`<tr data-key="${id}">[\\s\\S]*?</tr>`).exec(created.html)?.[0] ?? '';
    expect(row).toContain('web/dev/carol');
    expect(row).toContain('carol laptop');
    expect(row).toContain('30m');

    const carol = new Anthropic({ baseURL: h.url, apiKey: key!, maxRetries: 0 });
    const answer = await ask(carol);
    expect(answer.content.length).toBeGreaterThan(0);

    const again = await admin.get('/keys');
    expect(again.html).not.toContain(key!);
    expect(again.html).not.toContain('shown once');

    const revoked = await admin.post(`/keys/${id}/revoke`, { reason: 'leaked' });
    expect(revoked.status).toBe(303);
    expect(flashOf(revoked).ok).toContain(`${id} revoked`);
    const err = await refusal(ask(carol));
    expect(err.status).toBe(401);
    const after = await admin.get('/keys');
    const revokedRow = new RegExp(`<tr data-key="${id}" class="revoked">[\\s\\S]*?</tr>`).exec(
      after.html,
    )?.[0];
    expect(revokedRow).toContain('<span class="state revoked">revoked</span>');
    expect(revokedRow).not.toContain('<form');

    // A bad key spec: the form comes back with the error and what was typed, and no key.
    const bad = await admin.post('/keys', { team: 'has space', env: 'dev', seat: 'dave' });
    expect(bad.status).toBe(400);
    expect(bad.html).toContain('class="flash error"');
    expect(bad.html).toContain('value="has space"');
    expect(bad.html).not.toMatch(/value="cp_/);
  });

  it('refuses a POST without the CSRF token (403) and changes nothing', async () => {
    const noToken = await admin.post(
      '/kill-switches',
      { scope: 'global', reason: 'forged' },
      { csrf: false },
    );
    expect(noToken.status).toBe(403);
    const wrong = await admin.post(
      '/budgets/team%3Apayments/ceiling',
      { amount: '1', reason: 'forged', _csrf: 'not-the-token' },
      { csrf: false },
    );
    expect(wrong.status).toBe(403);
    expect((await admin.post('/keys', { team: 'x', env: 'y', seat: 'z' }, { csrf: false })).status).toBe(403);
    expect(
      (await h.api<{ kill_switches: unknown[] }>('GET', '/api/kill-switches')).body.kill_switches,
    ).toEqual([]);
    const b = await h.api<{ budget: { ceiling_usd: string } }>('GET', '/api/budgets/team:payments');
    expect(b.body.budget.ceiling_usd).toBe('123.45');
  });

  it('a viewer sees the pages without forms, gets 403 on forged POSTs even with a valid CSRF token, and on /keys', async () => {
    const vera = await new Session(h.url).login(VIEWER_TOKEN);
    for (const path of ['/budgets', '/budgets/team%3Apayments', '/kill-switches', '/spend']) {
      const p = await vera.get(path);
      expect(p.status).toBe(200);
      expect(postForms(p.html)).toEqual(['/logout']);
      expect(p.html).not.toContain('href="/keys"');
    }
    const ks = await vera.get('/kill-switches');
    expect(ks.html).not.toContain('big-red');
    expect(ks.html).toContain('needs the operator role');

    const forged: [string, Record<string, string>][] = [
      ['/kill-switches', { scope: 'global', reason: 'forged' }],
      ['/kill-switches/global/lift', { reason: 'forged' }],
      ['/budgets/team%3Apayments/ceiling', { amount: '999', reason: 'forged' }],
      ['/budgets/team%3Apayments/freeze', { reason: 'forged' }],
      ['/keys', { team: 'x', env: 'y', seat: 'z' }],
    ];
    for (const [path, form] of forged) {
      const r = await vera.post(path, form);
      expect(r.status, path).toBe(403);
      expect(r.html).toContain('forbidden');
    }
    expect(
      (await h.api<{ kill_switches: unknown[] }>('GET', '/api/kill-switches')).body.kill_switches,
    ).toEqual([]);
    const b = await h.api<{ budget: { ceiling_usd: string; state: string } }>(
      'GET',
      '/api/budgets/team:payments',
    );
    expect(b.body.budget).toMatchObject({ ceiling_usd: '123.45', state: 'active' });

    const keys = await vera.get('/keys');
    expect(keys.status).toBe(403);
    expect(keys.html).toContain('Not allowed');
  });

  it('an operator may flip kill switches but not change budgets or see keys', async () => {
    const oncall = await new Session(h.url).login(OPERATOR_TOKEN);
    const ks = await oncall.get('/kill-switches');
    expect(ks.html).toContain('class="big-red"');
    const detail = await oncall.get('/budgets/team%3Apayments');
    expect(postForms(detail.html)).toEqual(['/logout']);
    expect((await oncall.post('/budgets/team%3Apayments/ceiling', { amount: '1', reason: 'x' })).status).toBe(
      403,
    );
    expect((await oncall.get('/keys')).status).toBe(403);

    const on = await oncall.post('/kill-switches', { kind: 'seat', key: 'bob', reason: 'runaway spend' });
    expect(flashOf(on).ok).toContain('seat:bob');
    const page = await oncall.get('/kill-switches');
    expect(/<tr data-scope="seat:bob">[\s\S]*?<\/tr>/.exec(page.html)?.[0]).toContain('<td>oncall</td>');
    const lifted = await oncall.post('/kill-switches/seat%3Abob/lift', { reason: 'false alarm' });
    expect(flashOf(lifted).ok).toBe('Kill switch on seat:bob lifted');
  });

  it('redirects to the login page without a session and refuses a POST with 401', async () => {
    const res = await fetch(`${h.url}/spend`, { redirect: 'manual' });
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/login?next=%2Fspend');
    const post = await fetch(`${h.url}/kill-switches`, {
      method: 'POST',
      body: new URLSearchParams({ scope: 'global', reason: 'x' }),
      redirect: 'manual',
    });
    expect(post.status).toBe(401);
  });
});
