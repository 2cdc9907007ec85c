import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Anthropic from '@anthropic-ai/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type BullReconcileSchedule,
  SCHEDULER_ID,
} from '../../../runtime/backends/redis/reconcile-schedule.ts';
import { resolveConfig } from '../../../runtime/config/load.ts';
import { CliError, parseCommandArgs } from '../../../runtime/faces/cli/command.ts';
import { EXIT_DIVERGENT, reconcileCommand } from '../../../runtime/faces/cli/commands/reconcile.ts';
import { formatUsd } from '../../../runtime/money.ts';
import { yesterday } from '../../../runtime/reconciler/service.ts';
import { ADMIN_TOKEN, type Backend, type Harness, startHarness } from '../../helpers/harness.ts';
import { mixedWorkload, today, until, webhookReceiver } from './workload.ts';

type Row = {
  model: string;
  ledger_micros: number;
  provider_micros: number;
  diff_micros: number;
  verdict: string;
  calls: number;
};
type Recon = {
  id: string;
  day: string;
  verdict: string;
  trigger: string;
  source: { kind: string; format: string };
  rows: Row[];
  total: Row;
  alarm_id?: string;
  webhook?: { url: string; ok: boolean; status?: number };
};

async function cli(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  try {
    const { values, positionals } = parseCommandArgs(reconcileCommand, argv);
    if (values.help) return { code: 0, out: reconcileCommand.help, err: '' };
    const code = await reconcileCommand.run({ values, positionals, out: (l) => out.push(l), err: () => {} });
    return { code: code ?? 0, out: out.join('\n'), err: '' };
  } catch (e) {
    if (!(e instanceof CliError)) throw e;
    return { code: e.exitCode, out: out.join('\n'), err: e.message };
  }
}

describe.each(['embedded', 'redis'] as Backend[])('reconciliation (%s backend)', (backend) => {
  let h: Harness;
  let hook: Awaited<ReturnType<typeof webhookReceiver>>;
  const dir = mkdtempSync(join(tmpdir(), 'cp-recon-'));
  const day = today();

  beforeAll(async () => {
    hook = await webhookReceiver();
    h = await startHarness({ backend, config: { reconcile: { webhookUrl: hook.url } } });
    await mixedWorkload(h);
  }, 60_000);
  afterAll(async () => {
    await h?.close();
    await hook?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const count = async () =>
    (await h.api<{ reconciliations: Recon[] }>('GET', '/api/reconciliations?limit=1000')).body.reconciliations
      .length;

  it('matches the emulator billing record to the µ$ after a mixed workload (cost report fetched from the Admin API)', async () => {
    const res = await h.api<Recon>('POST', '/api/reconciliations', { day });
    expect(res.status).toBe(201);
    const r = res.body;
    expect(r.source).toEqual({ kind: 'fetched', format: 'anthropic-cost' });
    expect(r.verdict).toBe('ok');
    expect(r.total.diff_micros).toBe(0);
    expect(r.total.provider_micros).toBe(h.rt.emulator!.billing.total());
    expect(r.rows.map((x) => [x.model, x.verdict])).toEqual(r.rows.map((x) => [x.model, 'match']));
    expect(r.rows.map((x) => x.model).sort()).toEqual([
      'claude-haiku-4-5-20251001',
      'claude-opus-4-6',
      'claude-sonnet-4-6',
    ]);
    expect(r.alarm_id).toBeUndefined();
    expect(hook.bodies).toHaveLength(0);
    const listed = await h.api<{ reconciliations: Recon[] }>('GET', `/api/reconciliations?day=${day}`);
    expect(listed.body.reconciliations[0]!.id).toBe(r.id);
    const one = await h.api<Recon>('GET', `/api/reconciliations/${r.id}`);
    expect(one.body.total.provider_micros).toBe(r.total.provider_micros);
  });

  it('agrees with the usage report (tokens priced here) and a CSV of the same bill', async () => {
    const usage = await h.api<Recon>('POST', '/api/reconciliations', { day, format: 'anthropic-usage' });
    expect(usage.status).toBe(201);
    expect(usage.body.verdict).toBe('ok');
    // Priced per model and day instead of per call: at most 1 µ$ of rounding per call.
    expect(Math.abs(usage.body.total.diff_micros)).toBeLessThanOrEqual(usage.body.total.calls);
    for (const row of usage.body.rows) expect(row.verdict).not.toBe('divergent');

    const byModel = new Map<string, number>();
    for (const e of h.rt.emulator!.billing.list())
      byModel.set(e.model, (byModel.get(e.model) ?? 0) + e.costMicros);
    const csv = ['date,model,cost_usd', ...[...byModel].map(([m, c]) => `${day},${m},${formatUsd(c)}`)].join(
      '\n',
    );
    const viaCsv = await h.api<Recon>('POST', '/api/reconciliations', { day, report: csv });
    expect(viaCsv.body.source).toEqual({ kind: 'report', format: 'csv' });
    expect(viaCsv.body.verdict).toBe('ok');
    expect(viaCsv.body.total.diff_micros).toBe(0);
  });

  it('refuses a malformed report with the line or field named, and stores nothing', async () => {
    const before = await count();
    const alarms = (await h.api<{ alarms: unknown[] }>('GET', '/api/alarms?kind=reconciliation&limit=1000'))
      .body.alarms.length;
    const cases: Array<[unknown, string | undefined, string]> = [
      ['{"data": [', undefined, 'report: line 1, column 11: not valid JSON'],
      [
        `date,model,cost_usd\n${day},claude-haiku-4-5,1.00\n${day},claude-haiku-4-5,one dollar`,
        'csv',
        'report: line 3: cost_usd',
      ],
      [
        {
          data: [
            { starting_at: `${day}T00:00:00Z`, results: [{ currency: 'USD', model: 'claude-haiku-4-5' }] },
          ],
        },
        'anthropic-cost',
        'report: data[0].results[0].amount: required',
      ],
      [
        {
          data: [
            { starting_at: `${day}T00:00:00Z`, results: [{ uncached_input_tokens: 5, output_tokens: 1 }] },
          ],
        },
        'anthropic-usage',
        'report: data[0].results[0].model: required to price the usage',
      ],
    ];
    for (const [report, format, message] of cases) {
      const res = await h.api<{ error: { message: string }; chokepoint: { code: string; field: string } }>(
        'POST',
        '/api/reconciliations',
        { day, report, ...(format ? { format } : {}) },
      );
      expect(res.status).toBe(400);
      expect(res.body.chokepoint).toMatchObject({ code: 'invalid_request', field: 'report' });
      expect(res.body.error.message).toContain(message);
    }
    const badDay = await h.api<{ chokepoint: { field: string } }>('POST', '/api/reconciliations', {
      day: '2026-02-30',
    });
    expect(badDay.status).toBe(400);
    expect(badDay.body.chokepoint.field).toBe('day');
    const future = await h.api<{ error: { message: string } }>('POST', '/api/reconciliations', {
      day: '2999-01-01',
    });
    expect(future.body.error.message).toBe('day: 2999-01-01 has not started yet (UTC)');
    expect(await count()).toBe(before);
    expect(
      (await h.api<{ alarms: unknown[] }>('GET', '/api/alarms?kind=reconciliation&limit=1000')).body.alarms
        .length,
    ).toBe(alarms);
  });

  it('needs the operator role to run one; a viewer may list', async () => {
    const viewer = 'cpo_viewer-token-for-reconcile-0001';
    const { sha256 } = await import('../../../runtime/auth/operators.ts');
    h.rt.operatorSetup.registry.add({ name: 'vera', role: 'viewer' }, sha256(viewer));
    expect((await h.api('GET', '/api/reconciliations', undefined, viewer)).status).toBe(200);
    const res = await h.api<{ chokepoint: { code: string } }>(
      'POST',
      '/api/reconciliations',
      { day },
      viewer,
    );
    expect(res.status).toBe(403);
  });

  it('calls that bypass the gateway are an alarm naming the model and the gap, in /api/alarms and at the webhook', async () => {
    // Straight to the provider with its own key: the ledger never sees it.
    const direct = new Anthropic({
      baseURL: h.rt.emulatorUrl!,
      apiKey: h.rt.emulatorApiKey!,
      maxRetries: 0,
    });
    const m = await direct.messages
      .stream({
        model: 'claude-opus-4-6',
        max_tokens: 64_000,
        messages: [{ role: 'user', content: 'write a lot [[emulator:output_tokens=60000]]' }],
      })
      .finalMessage();
    expect(m.usage.output_tokens).toBe(60_000);
    const bypass = h.rt.emulator!.billing.list().at(-1)!;
    expect(bypass.costMicros).toBeGreaterThanOrEqual(1_500_000); // 60,000 output tokens at $25/MTok
    const res = await h.api<Recon>('POST', '/api/reconciliations', { day });
    const r = res.body;
    expect(r.verdict).toBe('divergent');
    const row = r.rows.find((x) => x.model === 'claude-opus-4-6')!;
    expect(row.verdict).toBe('divergent');
    expect(row.ledger_micros).toBeGreaterThan(0); // the gateway's own opus calls
    expect(row.diff_micros).toBe(bypass.costMicros);
    expect(r.rows.filter((x) => x.model !== 'claude-opus-4-6').every((x) => x.verdict === 'match')).toBe(
      true,
    );
    const gap = formatUsd(row.diff_micros);

    const alarms = await h.api<{
      alarms: Array<{ id: string; kind: string; message: string; details: { models: unknown[] } }>;
    }>('GET', '/api/alarms?kind=reconciliation');
    const alarm = alarms.body.alarms[0]!;
    expect(alarm.id).toBe(r.alarm_id);
    expect(alarm.message).toContain('claude-opus-4-6');
    expect(alarm.message).toContain(`gap +${gap} USD`);
    expect(alarm.details.models).toEqual([
      expect.objectContaining({
        model: 'claude-opus-4-6',
        gap_usd: gap,
        ledger_usd: formatUsd(row.ledger_micros),
      }),
    ]);

    // Where operators look: the inbox's spend page lists it with the other alarms.
    const login = await fetch(`${h.url}/login`, {
      method: 'POST',
      body: new URLSearchParams({ token: ADMIN_TOKEN, next: '/spend' }),
      redirect: 'manual',
    });
    const cookie = login.headers
      .getSetCookie()
      .find((c) => c.startsWith('cp_session='))!
      .split(';')[0]!;
    const spend = await (await fetch(`${h.url}/spend`, { headers: { cookie } })).text();
    expect(spend).toContain('reconciliation');
    expect(spend).toContain(`gap +${gap} USD`);

    await until(() => (hook.bodies.length ? true : undefined));
    expect(hook.bodies).toHaveLength(1);
    const body = hook.bodies[0] as {
      type: string;
      alarm: { id: string; message: string };
      reconciliation: { rows: unknown[] };
    };
    expect(body.type).toBe('chokepoint.alarm');
    expect(body.alarm.id).toBe(alarm.id);
    expect(body.alarm.message).toContain('claude-opus-4-6');
    expect(body.reconciliation.rows[0]).toMatchObject({
      model: 'claude-opus-4-6',
      diff_usd: gap,
      verdict: 'divergent',
    });
    // The webhook outcome is kept, with the origin only (its path may hold a secret).
    expect(r.webhook).toEqual({ url: new URL(hook.url).origin, ok: true, status: 204 });
    expect(JSON.stringify(await h.api('GET', `/api/reconciliations/${r.id}`))).not.toContain(
      'secret-path-token',
    );
  });

  it('runs from the CLI through the API: a table, exit 4 on divergence, a malformed file names its line', async () => {
    const remote = ['--url', h.url, '--token', ADMIN_TOKEN];
    const divergent = await cli(['--day', day, ...remote]);
    expect(divergent.code).toBe(EXIT_DIVERGENT);
    expect(divergent.out).toContain(`reconciliation ${day} (UTC): DIVERGENT`);
    expect(divergent.out).toMatch(/MODEL\s+LEDGER\s+PROVIDER\s+DIFF\s+DIFF %\s+VERDICT/);
    expect(divergent.out).toMatch(
      /claude-opus-4-6\s+\$[\d.]+\s+\$[\d.]+\s+\$1\.5\d*\s+\+[\d.]+%\s+divergent/,
    );

    const file = join(dir, 'bill.csv');
    const byModel = new Map<string, number>();
    for (const e of h.rt.emulator!.billing.list())
      byModel.set(e.model, (byModel.get(e.model) ?? 0) + e.costMicros);
    // The bypass is not the gateway's: a bill of the gateway's calls only.
    const bypass = h.rt.emulator!.billing.list().at(-1)!;
    byModel.set(bypass.model, byModel.get(bypass.model)! - bypass.costMicros);
    writeFileSync(
      file,
      ['date,model,cost_usd', ...[...byModel].map(([m, c]) => `${day},${m},${formatUsd(c)}`)].join('\n'),
    );
    const ok = await cli(['--day', day, '--report', file, '--format', 'csv', ...remote]);
    expect(ok.code).toBe(0);
    expect(ok.out).toContain('OK, the ledger matches the provider within tolerance');
    expect(ok.out).toMatch(/total\s+\$[\d.]+\s+\$[\d.]+\s+\$0\.00\s+0\.0%\s+match/);

    const before = await count();
    writeFileSync(file, `date,model,cost_usd\n${day},claude-haiku-4-5,0.10\n${day},claude-haiku-4-5\n`);
    const bad = await cli(['--day', day, '--report', file, ...remote]);
    expect(bad.code).toBe(1);
    expect(bad.err).toBe('report: line 3: expected 3 fields like the header, got 2');
    expect(await count()).toBe(before);

    const ls = await cli(['ls', '--day', day, ...remote]);
    expect(ls.code).toBe(0);
    expect(ls.out).toMatch(/DAY\s+VERDICT\s+LEDGER/);
    expect(ls.out).toContain('daily job: ');

    expect((await cli(['--day', 'yesterday', ...remote])).err).toContain(
      '--day: expected a date like 2026-01-31',
    );
    expect((await cli(['--format', 'xls', ...remote])).err).toContain('--format: expected one of');
    expect((await cli(['--report', join(dir, 'missing.json'), ...remote])).err).toContain(
      '--report: cannot read',
    );
    expect((await cli(['--help'])).out).toContain('Examples:');
  });
});

describe('the daily job', () => {
  it('embedded: a timer reconciles yesterday (interval injected through reconcile.every)', async () => {
    const h = await startHarness({ config: { reconcile: { every: '150ms' } } });
    try {
      expect(h.rt.reconcile!.schedule!.kind).toBe('timer');
      const found = await until(async () => {
        const list = await h.rt.reconcile!.reconciler.list({ trigger: 'schedule' });
        return list.length ? list : undefined;
      });
      expect(found[0]).toMatchObject({ day: yesterday(Date.now()), trigger: 'schedule', verdict: 'ok' });
      const listed = await h.api<{ schedule: { kind: string; next_at: string } }>(
        'GET',
        '/api/reconciliations',
      );
      expect(listed.body.schedule.kind).toBe('timer');
      expect(Date.parse(listed.body.schedule.next_at)).toBeGreaterThan(Date.now() - 1000);
    } finally {
      await h.close();
    }
  });

  it('embedded: daily at reconcile.at (UTC); a run that cannot fetch the report is an alarm (and a webhook)', async () => {
    const hook = await webhookReceiver();
    const h = await startHarness({ config: { reconcile: { at: '03:30', webhookUrl: hook.url } } });
    try {
      const next = (await h.rt.reconcile!.schedule!.next())!;
      expect(new Date(next).toISOString().slice(11, 16)).toBe('03:30');
      expect(next - Date.now()).toBeLessThanOrEqual(86_400_000);
      // The provider refuses the report (a wrong admin key): the scheduled run raises an alarm.
      (h.rt.config.provider as { adminApiKey?: string }).adminApiKey = 'sk-ant-admin-wrong-key-000000';
      await h.rt.reconcile!.schedule!.trigger(today());
      const alarms = await h.rt.events.list({ kind: 'reconciliation' });
      expect(alarms[0]!.message).toMatch(
        /^reconciliation \d{4}-\d{2}-\d{2} could not run: the provider refused the cost report \(401\)/,
      );
      expect(JSON.stringify(alarms)).not.toContain('sk-ant-admin-wrong-key-000000');
      expect(hook.bodies).toEqual([
        {
          type: 'chokepoint.alarm',
          alarm: expect.objectContaining({ id: alarms[0]!.id, kind: 'reconciliation' }),
        },
      ]);
      expect(await h.rt.reconcile!.reconciler.list()).toEqual([]);
    } finally {
      await h.close();
      await hook.close();
    }
  });

  it('config: the Admin API key from provider.adminApiKey (env:VAR) or ANTHROPIC_ADMIN_KEY; tolerance and time checked', () => {
    const env = { MY_ADMIN: 'sk-ant-admin-from-var', ANTHROPIC_ADMIN_KEY: 'sk-ant-admin-from-env' };
    expect(resolveConfig({}, { env }).provider.adminApiKey).toBe('sk-ant-admin-from-env');
    expect(resolveConfig({ provider: { adminApiKey: 'env:MY_ADMIN' } }, { env }).provider.adminApiKey).toBe(
      'sk-ant-admin-from-var',
    );
    expect(() => resolveConfig({ provider: { adminApiKey: 'env:NOPE' } }, { env: {} })).toThrow(
      'provider.adminApiKey: NOPE is not set in the environment',
    );
    const c = resolveConfig({ reconcile: { tolerance: { relative: 0.05, absolute: '2.50' } } }, { env: {} });
    expect(c.reconcile).toMatchObject({
      tolerance: { relative: 0.05, absolute: 2_500_000 },
      at: '02:00',
      schedule: true,
    });
    expect(() => resolveConfig({ reconcile: { tolerance: { relative: 5 } } }, { env: {} })).toThrow(
      'reconcile.tolerance.relative',
    );
    expect(() => resolveConfig({ reconcile: { at: '25:00' } }, { env: {} })).toThrow(
      'reconcile.at: expected a UTC time like "02:00"',
    );
    expect(() => resolveConfig({ reconcile: { webhookUrl: 'not a url' } }, { env: {} })).toThrow(
      'reconcile.webhookUrl',
    );
  });

  it('redis: the job scheduler fires on its own (reconcile.every) and reconciles yesterday', async () => {
    const h = await startHarness({ backend: 'redis', config: { reconcile: { every: '200ms' } } });
    try {
      const schedule = h.rt.reconcile!.schedule as BullReconcileSchedule;
      expect(await schedule.queue.getJobScheduler(SCHEDULER_ID)).toMatchObject({ every: 200 });
      const found = await until(async () => {
        const list = await h.rt.reconcile!.reconciler.list({ trigger: 'schedule' });
        return list.length ? list : undefined;
      });
      expect(found[0]).toMatchObject({ day: yesterday(Date.now()), trigger: 'schedule', verdict: 'ok' });
    } finally {
      await h.close();
    }
  });

  it('redis: a BullMQ job scheduler exists (idempotent across replicas) and a manual trigger runs through the queue', async () => {
    const prefix = `{cprec${process.pid}x${Date.now() % 100000}}`;
    const a = await startHarness({ backend: 'redis', prefix });
    const b = await startHarness({ backend: 'redis', prefix });
    try {
      const schedule = a.rt.reconcile!.schedule as BullReconcileSchedule;
      expect(schedule.kind).toBe('bullmq');
      const job = await schedule.queue.getJobScheduler(SCHEDULER_ID);
      expect(job).toMatchObject({ key: SCHEDULER_ID, pattern: '0 0 2 * * *', tz: 'UTC' });
      expect(await schedule.queue.getJobSchedulersCount()).toBe(1);
      expect(job!.next).toBeGreaterThan(Date.now());

      await schedule.trigger(today());
      const found = await until(async () => {
        const list = await a.rt.reconcile!.reconciler.list({ trigger: 'schedule', day: today() });
        return list.length ? list : undefined;
      });
      expect(found).toHaveLength(1);
      expect(found[0]!.verdict).toBe('ok');
      // Replicas share the store: the other sees the same result.
      expect((await b.rt.reconcile!.reconciler.list({ trigger: 'schedule' }))[0]!.id).toBe(found[0]!.id);
    } finally {
      await b.close();
      await a.close();
    }
  });
});
