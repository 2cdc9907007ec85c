import { afterEach, describe, expect, it } from 'vitest';
import { type Harness, startHarness } from '../helpers/harness.ts';

/**
 * The approvals service with the runs queue, beyond single decisions (those are in
 * test/faces/api/approvals-api.test.ts): per-workflow concurrency, and a worker that stops
 * gracefully handing its run to another one on Redis without a call made twice.
 */

const WORKFLOWS = new URL('./fixtures/workflows', import.meta.url).pathname;
const g = globalThis as { slowActive?: number; slowMax?: number };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface RunBody {
  run: { id: string; state: string; steps: number; output?: unknown };
  journal: { kind: string }[];
}

describe('approvals service and the runs queue', () => {
  const open: Harness[] = [];
  afterEach(async () => {
    for (const h of open.splice(0)) await h.close().catch(() => {});
  });

  it.each(['embedded', 'redis'] as const)(
    'runs at most workers.perWorkflow runs of a workflow at once (%s)',
    async (backend) => {
      const h = await startHarness({
        backend,
        workflows: WORKFLOWS,
        config: { workers: { concurrency: 8, perWorkflow: { slow: 2 } } },
      });
      open.push(h);
      g.slowMax = 0;
      const task = { task: 'Wait [[emulator:tool_use wait={"ms":300}]]' };
      const ids: string[] = [];
      for (let i = 0; i < 6; i++) {
        const r = await h.api<RunBody>('POST', '/api/runs', { workflow: 'slow', input: task });
        expect(r.status).toBe(201);
        ids.push(r.body.run.id);
      }
      for (const id of ids) {
        const r = await h.api<RunBody>('GET', `/api/runs/${id}?wait=30`);
        expect(r.body.run.state).toBe('done');
      }
      expect(g.slowMax).toBe(2);
    },
    60_000,
  );

  it('a worker stopping gracefully hands its run to another worker (Redis); nothing is called twice', async () => {
    const prefix = `{cpt-handoff-${process.pid}-${Date.now() % 100000}}`;
    const config = { workflows: { lease: '1s' } };
    const a = await startHarness({ backend: 'redis', prefix, workflows: WORKFLOWS, config });
    open.push(a);
    const started = await a.api<RunBody>('POST', '/api/runs', { workflow: 'long', input: { n: 40 } });
    const id = started.body.run.id;
    // Let it get going on the only worker there is, then bring up a second one and stop the first.
    for (let i = 0; i < 100; i++) {
      if ((await a.api<RunBody>('GET', `/api/runs/${id}`)).body.run.steps >= 6) break;
      await sleep(50);
    }
    const b = await startHarness({ backend: 'redis', prefix, workflows: WORKFLOWS, config });
    open.push(b);
    await a.rt.approvals!.close();
    await a.rt.runs!.close();
    const mid = (await b.api<RunBody>('GET', `/api/runs/${id}`)).body.run;
    expect(mid.state).toBe('running');
    expect(mid.steps).toBeLessThan(80);
    const done = (await b.api<RunBody>('GET', `/api/runs/${id}?wait=60`)).body;
    expect(done.run).toMatchObject({ state: 'done', steps: 80, output: { iterations: 40 } });
    // Every model call billed once: one ok ledger entry per journaled model call, no others.
    const ledger = (
      await b.api<{ entries: { kind: string; outcome: string }[] }>('GET', `/api/ledger?run=${id}&limit=1000`)
    ).body.entries;
    const models = ledger.filter((e) => e.kind === 'model');
    expect(models.filter((e) => e.outcome === 'ok')).toHaveLength(40);
    expect(models.filter((e) => e.outcome !== 'ok')).toEqual([]);
    expect(done.journal.filter((j) => j.kind === 'model')).toHaveLength(40);
  }, 90_000);
});
