import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryRunStore } from '../../../runtime/store/runs.ts';
import { RunHost } from '../../../runtime/workflows/host.ts';
import { type Harness, startHarness } from '../../helpers/harness.ts';

const WHO = { team: 'support', env: 'prod', seat: 'alice' };

const file = (version: number, system: string, extra = '') => `
import { defineAgent, z } from 'chokepoint/workflow';
export default defineAgent({
  id: 'pinned', version: ${version}, description: 'version pinning test',
  input: z.object({ task: z.string() }), system: ${JSON.stringify(system)},
  tools: { lookup: { description: 'Looks up', input_schema: z.object({ order: z.string() }), run: () => 'ok' } },
  limits: { spend: '$0.10', time: '1m', steps: 2 }, task: (i) => i.task, ${extra}
});
`;
const GO = 'Go [[emulator:tool_use lookup={"order":"A1"}]]';

describe('RunHost: loading, reloading and version pinning', () => {
  let h: Harness;
  let dir: string;
  let host: RunHost;

  beforeAll(async () => {
    h = await startHarness({ config: { routing: { classes: { cheap: ['claude-haiku-4-5'] } } } });
    dir = mkdtempSync(join(tmpdir(), 'cp-host-'));
    writeFileSync(join(dir, 'pinned.ts'), file(1, 'You are version one.'));
    writeFileSync(join(dir, 'gold.ts'), file(1, 'x', "model: 'gold'").replace("'pinned'", "'gold'"));
    host = await RunHost.open(h.rt, { dir, runs: new MemoryRunStore(), watch: true });
  });
  afterAll(async () => {
    await host.close();
    await h.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('lists a workflow whose model is neither a class nor a priced model as invalid, naming the field', () => {
    const { workflows, invalid } = host.workflows();
    expect(workflows.map((w) => `${w.id}@${w.version}`)).toEqual(['pinned@1']);
    expect(invalid).toEqual([
      {
        file: 'gold.ts',
        problems: [
          {
            field: 'models.default',
            message: expect.stringMatching(/'gold' is neither a routing class \(cheap\)/),
          },
        ],
      },
    ]);
  });

  it('keeps a suspended run on the version it started on across a deploy, and refuses a changed prompt under an old version', async () => {
    const run = await host.wait((await host.start('pinned', { task: GO }, WHO)).id);
    expect(run).toMatchObject({ state: 'suspended', reason: 'step_cap', version: '1' });

    // Deploy version 2 in place of version 1: version 1 stays loaded for the pinned run.
    writeFileSync(join(dir, 'pinned.ts'), file(2, 'You are version two.'));
    let listed = await host.reload();
    expect(listed.workflows.map((w) => [w.id, w.version, w.latest])).toEqual([
      ['pinned', '2', true],
      ['pinned', '1', false],
    ]);
    expect(host.workflow('pinned').version).toBe('2');

    // A changed prompt that keeps version 1 is refused: it would break the pinned run and caching.
    writeFileSync(join(dir, 'pinned-v1.ts'), file(1, 'You are version one, edited.'));
    listed = await host.reload();
    expect(listed.invalid.find((b) => b.file === 'pinned-v1.ts')?.problems[0]).toMatchObject({
      field: 'prefix',
      message: expect.stringMatching(/already ran with prefix .* needs a new version/),
    });
    unlinkSync(join(dir, 'pinned-v1.ts'));

    await host.resume(run.id, { by: { actor: 'alice', reason: 'carry on' } });
    const done = await host.wait(run.id);
    expect(done).toMatchObject({ state: 'done', version: '1' });
    const v2 = await host.wait((await host.start('pinned', { task: 'hello' }, WHO)).id);
    expect(v2).toMatchObject({ state: 'done', version: '2' });
  });

  it('reloads on change with --watch', async () => {
    writeFileSync(join(dir, 'watched.ts'), file(1, 'Watched.').replace("'pinned'", "'watched'"));
    for (let i = 0; i < 100 && !host.workflows().workflows.some((w) => w.id === 'watched'); i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(host.workflow('watched').version).toBe('1');
  });
});
