import { performance } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256 } from '../../../runtime/auth/operators.ts';
import { ADMIN_TOKEN, type Backend, type Harness, startHarness } from '../../helpers/harness.ts';
import { mixedWorkload } from '../reconcile/workload.ts';
import { find, parseProm, total } from './prom.ts';

const WORKFLOWS = new URL('../../fixtures/approval-workflows', import.meta.url).pathname;
const VIEWER = 'cpo_metrics-viewer-token-000001';

async function scrape(h: Harness, token: string | null = ADMIN_TOKEN) {
  const res = await fetch(`${h.url}/metrics`, {
    headers: token ? { authorization: `Bearer ${token}` } : {},
  });
  const text = await res.text();
  return { status: res.status, type: res.headers.get('content-type'), text };
}

describe.each(['embedded', 'redis'] as Backend[])('/metrics (%s backend)', (backend) => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ backend, workflows: WORKFLOWS });
    h.rt.operatorSetup.registry.add({ name: 'grafana', role: 'viewer' }, sha256(VIEWER));
  }, 60_000);
  afterAll(() => h?.close());

  it('needs an operator token (a viewer is enough), as Prometheus sends it', async () => {
    expect((await scrape(h, null)).status).toBe(401);
    const wrong = await scrape(h, 'cpo_wrong-token-0000000000');
    expect(wrong.status).toBe(401);
    expect(wrong.text).toContain('/metrics needs an operator token');
    const ok = await scrape(h, VIEWER);
    expect(ok.status).toBe(200);
    expect(ok.type).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(ok.text).toContain('# TYPE chokepoint_calls_total counter');
    expect(ok.text).toContain('process_resident_memory_bytes');
  });

  it('shows the counters moving with a workload, with bounded labels', async () => {
    const before = parseProm((await scrape(h)).text);
    expect(total(before, 'chokepoint_calls_total')).toBe(0);
    const run = await h.api<{ run: { id: string; state: string } }>('POST', '/api/runs', {
      workflow: 'gated',
      input: { task: 'Pay it [[emulator:tool_use pay={"order":"A1","amount_usd":5}]]' },
      wait: 20,
    });
    expect(run.body.run.state).toBe('suspended');
    await mixedWorkload(h);

    const text = (await scrape(h)).text;
    const after = parseProm(text);
    const c = (labels: Record<string, string>) => total(after, 'chokepoint_calls_total', labels);
    // 6 answered by the gateway workload (one of them abandoned by its client) + the run's first call.
    expect(c({ outcome: 'ok' })).toBe(8);
    expect(c({ outcome: 'error' })).toBe(1);
    expect(total(after, 'chokepoint_call_errors_total', { code: 'overloaded_error' })).toBe(1);
    expect(c({ outcome: 'refused' })).toBe(3);
    const refusals = (code: string) => total(after, 'chokepoint_refusals_total', { code });
    expect([refusals('budget_exhausted'), refusals('killed'), refusals('invalid_request')]).toEqual([
      1, 1, 1,
    ]);
    expect(refusals('unauthenticated')).toBe(1); // at the gateway's door: no identity, team "unknown"
    expect(find(after, 'chokepoint_refusals_total', { code: 'unauthenticated' })[0]!.labels.team).toBe(
      'unknown',
    );

    // Cost counters are the ledger's µ$, exactly.
    const spend = await h.rt.store.spend({ by: 'model', since: 0, until: Date.now() + 1 });
    const ledger = spend.filter((r) => !r.key.startsWith('tool:')).reduce((s, r) => s + r.cost, 0);
    expect(total(after, 'chokepoint_cost_micros_total')).toBe(ledger);
    expect(
      total(after, 'chokepoint_cost_micros_total', { team: 'recon', model: 'claude-opus-4-6' }),
    ).toBeGreaterThan(0);
    // By provider too: the default provider served every call of this workload.
    expect(total(after, 'chokepoint_cost_micros_total', { provider: 'anthropic' })).toBe(ledger);
    expect(c({ outcome: 'ok', provider: 'anthropic' })).toBe(8);
    for (const cls of ['input', 'output', 'cache_read', 'cache_write_5m', 'cache_write_1h']) {
      expect(total(after, 'chokepoint_tokens_total', { class: cls }), cls).toBeGreaterThan(0);
    }
    const tokens = spend.reduce((s, r) => s + r.tokens.cacheRead, 0);
    expect(total(after, 'chokepoint_tokens_total', { class: 'cache_read' })).toBe(tokens);

    // Latency: every admitted call is in the admission and provider histograms.
    expect(total(after, 'chokepoint_admission_seconds_count')).toBe(9);
    expect(total(after, 'chokepoint_provider_response_seconds_count')).toBe(9);
    expect(total(after, 'chokepoint_call_duration_seconds_count')).toBe(12);

    // Scrape-time gauges: cache health, budgets (not seats or runs), kill switches, runs, approvals.
    expect(total(after, 'chokepoint_cache_hit_rate', { workflow: 'triage' })).toBeGreaterThan(0.3);
    expect(total(after, 'chokepoint_cache_expected_hit_rate', { workflow: 'triage' })).toBeGreaterThan(0.3);
    const util = find(after, 'chokepoint_budget_utilisation_ratio');
    expect(util.map((s) => s.labels.scope_kind).sort()).toEqual(
      expect.arrayContaining(['env', 'global', 'team', 'workflow']),
    );
    expect(util.some((s) => s.labels.scope_kind === 'seat' || s.labels.scope_kind === 'run')).toBe(false);
    expect(
      total(after, 'chokepoint_budget_utilisation_ratio', { scope_kind: 'team', scope: 'recon' }),
    ).toBeGreaterThan(0);
    expect(
      total(after, 'chokepoint_budget_spent_micros', { scope_kind: 'team', scope: 'recon' }),
    ).toBeGreaterThan(0);
    expect(total(after, 'chokepoint_kill_switches', { scope_kind: 'team' })).toBe(1);
    expect(total(after, 'chokepoint_kill_switches', { scope_kind: 'global' })).toBe(0);
    expect(total(after, 'chokepoint_runs', { state: 'suspended' })).toBe(1);
    expect(total(after, 'chokepoint_approvals', { state: 'pending' })).toBe(1);

    // No run, seat, session or key ids anywhere in the labels.
    const values = after.flatMap((s) => Object.values(s.labels));
    expect(values.filter((v) => /^(seat-|tight-|run_|r_|key_|req_)/.test(v))).toEqual([]);
    expect(text).not.toContain(run.body.run.id);
  });

  it('scrapes 1,000 budgets quickly', async () => {
    for (let i = 0; i < 1000; i++) await h.rt.store.ensureBudget(`team:t${i}`);
    const times: number[] = [];
    let text = '';
    for (let i = 0; i < 5; i++) {
      const t = performance.now();
      text = (await scrape(h)).text;
      times.push(performance.now() - t);
    }
    times.sort((a, b) => a - b);
    console.log(
      `[metrics] ${backend}: scrape with ${find(parseProm(text), 'chokepoint_budget_utilisation_ratio').length} budget series, ${text.length} bytes: median ${times[2]!.toFixed(1)} ms`,
    );
    expect(times[2]).toBeLessThan(2000);
  });
});

describe('/metrics options', () => {
  it('metrics.public serves it without a token; maxLabelValues folds the rest into _other', async () => {
    const h = await startHarness({
      config: { metrics: { public: true, maxLabelValues: 2, process: false } },
    });
    try {
      for (const team of ['a', 'b', 'c', 'd']) {
        const { client } = await h.client({ team });
        await client.messages.create({
          model: 'claude-haiku-4-5',
          max_tokens: 10,
          messages: [{ role: 'user', content: 'hi' }],
        });
      }
      const res = await scrape(h, null);
      expect(res.status).toBe(200);
      expect(res.text).not.toContain('process_resident_memory_bytes');
      const s = parseProm(res.text);
      const teams = find(s, 'chokepoint_calls_total', { outcome: 'ok' }).map((x) => [x.labels.team, x.value]);
      expect(teams.sort()).toEqual([
        ['_other', 2],
        ['a', 1],
        ['b', 1],
      ]);
    } finally {
      await h.close();
    }
  });

  it('a store that cannot be read empties its gauges (never stale ones) and counts the failure', async () => {
    const h = await startHarness();
    try {
      const { client } = await h.client({ team: 'x' });
      await client.messages.create({
        model: 'claude-haiku-4-5',
        max_tokens: 10,
        messages: [{ role: 'user', content: 'hi' }],
      });
      expect(
        find(parseProm((await scrape(h)).text), 'chokepoint_budget_utilisation_ratio').length,
      ).toBeGreaterThan(0);
      await h.rt.store.close();
      const res = await scrape(h);
      expect(res.status).toBe(200);
      const s = parseProm(res.text);
      expect(find(s, 'chokepoint_budget_utilisation_ratio')).toEqual([]);
      expect(total(s, 'chokepoint_metrics_collect_errors_total', { collector: 'budgets' })).toBeGreaterThan(
        0,
      );
      expect(total(s, 'chokepoint_calls_total', { outcome: 'ok' })).toBe(1);
    } finally {
      await h.close().catch(() => undefined);
    }
  });
});
