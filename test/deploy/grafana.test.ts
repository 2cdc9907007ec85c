import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, type Harness, startHarness } from '../helpers/harness.ts';
import { find, parseProm, type Sample } from '../runtime/observability/prom.ts';
import { mixedWorkload, today } from '../runtime/reconcile/workload.ts';

interface Target {
  expr: string;
  refId: string;
}
interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { x: number; y: number; w: number; h: number };
  datasource?: { type: string; uid: string };
  targets?: Target[];
  panels?: Panel[];
}

const WORKFLOWS = join(import.meta.dirname, '..', 'fixtures', 'approval-workflows');
const FILE = join(import.meta.dirname, '..', '..', 'deploy', 'grafana', 'chokepoint.json');
const dashboard = JSON.parse(readFileSync(FILE, 'utf8')) as {
  uid: string;
  panels: Panel[];
  templating: { list: Array<{ name: string; type: string }> };
};
const panels = dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
const queries = panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })));

/** The metric names of an expression (ours all start with `chokepoint_`). */
const metricsOf = (expr: string) => [...expr.matchAll(/\bchokepoint_[a-z0-9_]+/g)].map((m) => m[0]);
const HISTOGRAM_PART = /_(bucket|sum|count)$/;

describe('the Grafana dashboard (deploy/grafana/chokepoint.json)', () => {
  it('is a dashboard Grafana can import: unique ids, a grid of 24 columns, a Prometheus datasource variable', () => {
    expect(dashboard.uid).toBe('chokepoint');
    const ids = panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of panels) {
      expect(p.gridPos.x + p.gridPos.w, p.title).toBeLessThanOrEqual(24);
      if (p.type === 'row') continue;
      expect(p.datasource, p.title).toEqual({ type: 'prometheus', uid: `\${datasource}` });
      expect(p.targets?.length, p.title).toBeGreaterThan(0);
    }
    expect(dashboard.templating.list.map((v) => [v.name, v.type])).toContainEqual([
      'datasource',
      'datasource',
    ]);
    // What the issue asks to see: spend by team and model, refusals by code, the cache hit rate,
    // admission latency, reconciliation.
    const all = queries.map((q) => q.expr).join('\n');
    for (const m of [
      'sum by (team) (rate(chokepoint_cost_micros_total',
      'sum by (model) (rate(chokepoint_cost_micros_total',
      'sum by (code) (rate(chokepoint_refusals_total',
      'chokepoint_cache_hit_rate',
      'chokepoint_admission_seconds_bucket',
      'chokepoint_reconciliation_diff_micros',
    ])
      expect(all).toContain(m);
  });

  describe('against a running runtime', () => {
    let h: Harness;
    let types: Map<string, string>;
    let samples: Sample[];

    beforeAll(async () => {
      h = await startHarness({ backend: 'embedded', workflows: WORKFLOWS });
      // A run waiting for a human (runs and approvals), gateway traffic, a reconciliation.
      const run = await h.api<{ run: { state: string } }>('POST', '/api/runs', {
        workflow: 'gated',
        input: { task: 'Pay it [[emulator:tool_use pay={"order":"A1","amount_usd":5}]]' },
        wait: 20,
      });
      expect(run.body.run.state).toBe('suspended');
      await mixedWorkload(h);
      const recon = await h.api('POST', '/api/reconciliations', { day: today() });
      expect(recon.status).toBe(201);
      const res = await fetch(`${h.url}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
      const text = await res.text();
      types = new Map([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1]!, m[2]!]));
      samples = parseProm(text);
    }, 120_000);
    afterAll(() => h?.close());

    it('queries only metrics the runtime exports, histogram parts only of histograms', () => {
      const wrong: string[] = [];
      for (const { panel, expr } of queries) {
        const names = metricsOf(expr);
        if (names.length === 0) wrong.push(`${panel}: no chokepoint metric in ${expr}`);
        for (const name of names) {
          const base = name.replace(HISTOGRAM_PART, '');
          const kind = types.get(name) ?? types.get(base);
          if (!kind) wrong.push(`${panel}: ${name} is not exported`);
          else if (name !== base && kind !== 'histogram') wrong.push(`${panel}: ${name} of a ${kind}`);
          else if (name === base && kind === 'histogram')
            wrong.push(`${panel}: ${name} needs _bucket/_sum/_count`);
        }
      }
      expect(wrong).toEqual([]);
    });

    it('groups and filters by labels the series really carry', () => {
      const wrong: string[] = [];
      for (const { panel, expr } of queries) {
        const labels = [
          ...[...expr.matchAll(/\bby \(([^)]*)\)/g)].flatMap((m) => m[1]!.split(',').map((l) => l.trim())),
          ...[...expr.matchAll(/([a-z_]+)=~?"/g)].map((m) => m[1]!),
        ].filter((l) => l !== 'le');
        const series = metricsOf(expr).flatMap((n) => find(samples, n));
        // Every metric of the dashboard has series after the run, the workload and a reconciliation.
        if (series.length === 0) wrong.push(`${panel}: no series for ${metricsOf(expr).join(', ')}`);
        for (const l of labels) {
          if (series.length && !series.some((s) => l in s.labels)) wrong.push(`${panel}: no label ${l}`);
        }
      }
      expect(wrong).toEqual([]);
    });

    it("exports the latest reconciliation with the provider's bill", () => {
      const [diff] = find(samples, 'chokepoint_reconciliation_diff_micros', { provider: 'anthropic' });
      const [divergent] = find(samples, 'chokepoint_reconciliation_divergent', { provider: 'anthropic' });
      const [at] = find(samples, 'chokepoint_reconciliation_timestamp_seconds', { provider: 'anthropic' });
      // The emulator's bill matches the ledger to the µ$ (test/runtime/reconcile).
      expect(diff?.value).toBe(0);
      expect(divergent?.value).toBe(0);
      expect(Math.abs(at!.value - Date.now() / 1000)).toBeLessThan(600);
    });
  });
});
