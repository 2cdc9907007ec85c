import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadWorkflows, type WorkflowSet } from '../../../runtime/workflows/loader.ts';

const agent = (id: string, version: number, extra = '') => `
import { defineAgent, z } from 'chokepoint/workflow';
export default defineAgent({
  id: ${JSON.stringify(id)}, version: ${version}, description: 'test agent',
  input: z.object({ q: z.string() }), system: 'You answer.',
  limits: { spend: '$0.10', time: '1m', steps: 5 }, ${extra}
});
`;

describe('loadWorkflows', () => {
  let dir: string;
  let set: WorkflowSet;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cp-wf-'));
    const files: Record<string, string> = {
      'a-good.ts': agent('good', 1),
      'b-good-v2.ts': agent('good', 2),
      'c-duplicate.ts': agent('good', 1),
      'd-bad-limit.ts': agent('limits', 1).replace("spend: '$0.10'", "spend: 'ten bucks'"),
      'e-no-id.ts': `import { defineWorkflow, runtimeActors, setup, z } from 'chokepoint/workflow';
export default defineWorkflow({ version: 1, description: 'x', input: z.object({}),
  prefix: { system: 's' }, models: { default: 'cheap' }, limits: { spend: '$1', time: '1m', steps: 2 },
  machine: setup({ actors: runtimeActors }).createMachine({ initial: 'a', states: { a: { invoke: { src: 'fetchStuff' } } } }) } as never);`,
      'f-syntax.ts': 'export default {{{',
      'g-no-export.js': 'export const x = 1;',
      'notes.md': 'ignored',
      'h.test.ts': 'throw new Error("tests are not workflows")',
    };
    for (const [f, src] of Object.entries(files)) writeFileSync(join(dir, f), src);
    set = await loadWorkflows(dir);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('loads the good files, every version of an id', () => {
    expect(set.list().map((w) => `${w.id}@${w.version}`)).toEqual(['good@1', 'good@2']);
    expect(set.get('good')?.version).toBe('2');
    expect(set.get('good', '1')?.version).toBe('1');
  });

  it('lists each broken file with every problem naming its field', () => {
    const byFile = Object.fromEntries(set.invalid.map((i) => [i.file, i.problems]));
    expect(Object.keys(byFile)).toEqual([
      'c-duplicate.ts',
      'd-bad-limit.ts',
      'e-no-id.ts',
      'f-syntax.ts',
      'g-no-export.js',
    ]);
    expect(byFile['c-duplicate.ts']).toEqual([
      { field: 'version', message: 'duplicate: good version 1 is already defined in a-good.ts' },
    ]);
    expect(byFile['d-bad-limit.ts']).toEqual([
      { field: 'limits.spend', message: expect.stringMatching(/ten bucks/) },
    ]);
    expect(byFile['e-no-id.ts']?.map((p) => p.field)).toEqual(['id', 'machine']);
    expect(byFile['e-no-id.ts']?.[1]?.message).toMatch(/'fetchStuff'/);
    expect(byFile['f-syntax.ts']?.[0]?.field).toBe('(file)');
    expect(byFile['g-no-export.js']?.[0]?.field).toBe('(default export)');
  });
});
