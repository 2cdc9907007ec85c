import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
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
      'h-throws-null.ts': 'throw null;',
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
      'h-throws-null.ts',
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
    expect(byFile['h-throws-null.ts']).toEqual([{ field: '(file)', message: 'could not load: null' }]);
  });
});

/**
 * A workflows folder of one's own, as a new user makes it: outside the checkout, nothing in it but
 * `.ts` files (no package.json, no node_modules). Loaded by Node itself, under tsx with the
 * loader's module hooks, as `chokepoint serve` loads it: vitest would resolve through vite.
 */
describe("loadWorkflows: a folder of one's own with nothing but .ts files", () => {
  const ROOT = join(import.meta.dirname, '../../..');
  let dir: string;
  let child: ChildProcessWithoutNullStreams;
  const lines: string[] = [];
  let waiting: (() => void) | undefined;

  /** The next JSON line the loader prints (one per load). */
  const nextLoad = async (): Promise<Loaded> => {
    while (lines.length === 0) await new Promise<void>((r) => (waiting = r));
    return JSON.parse(lines.shift()!) as Loaded;
  };
  interface Loaded {
    workflows: { id: string; version: string; description: string; spend: number }[];
    invalid: { file: string; problems: { field: string; message: string }[] }[];
  }

  const triage = (version: number) => `import { defineAgent, z } from 'chokepoint/workflow';
import { describe } from './lib/wording.ts';

export default defineAgent({
  id: 'triage', version: ${version}, description: describe('tickets'),
  input: z.object({ ticket: z.string() }), system: 'You triage tickets.',
  limits: { spend: '$0.10', time: '2m', steps: 8 },
});
`;
  let first: Loaded;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cp-own-workflows-'));
    mkdirSync(join(dir, 'lib'));
    writeFileSync(
      join(dir, 'lib/wording.ts'),
      // Top-level await: only an ES module may (tsx would otherwise make this file CommonJS).
      "await Promise.resolve();\nexport const describe = (what: string): string => 'Triages ' + what;\n",
    );
    writeFileSync(join(dir, 'triage.ts'), triage(1));
    writeFileSync(
      join(dir, 'broken.ts'),
      triage(1).replace("'triage'", "'broken'").replace("spend: '$0.10'", "spend: 'a lot'"),
    );
    // Habit: zod and xstate imported by their own names resolve from the installed Chokepoint too.
    writeFileSync(
      join(dir, 'direct.ts'),
      `import { setup } from 'xstate';
import { z } from 'zod';
import { defineWorkflow, runtimeActors } from 'chokepoint/workflow';

export default defineWorkflow({
  id: 'direct', version: 1, description: 'imports zod and xstate itself', input: z.object({}),
  prefix: { system: 'You answer.' }, models: { default: 'cheap' },
  limits: { spend: '$1', time: '1m', steps: 2 },
  machine: setup({ actors: runtimeActors }).createMachine({ initial: 'a', states: { a: { type: 'final' } } }),
});
`,
    );
    child = spawn(
      process.execPath,
      [join(ROOT, 'bin/run-ts.js'), join(ROOT, 'test/fixtures/load-workflows.ts'), dir],
      { cwd: dir },
    );
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const parts = out.split('\n');
      out = parts.pop()!;
      lines.push(...parts.filter(Boolean));
      waiting?.();
    });
    child.stderr.on('data', (d) => lines.push(JSON.stringify({ stderr: String(d) })));
    first = await nextLoad();
  });
  afterAll(() => {
    child?.kill();
    rmSync(dir, { recursive: true, force: true });
  });

  it('loads the valid files as ES modules and names the invalid one with the field that is wrong', () => {
    expect(first.workflows.map((w) => `${w.id}@${w.version}`).sort()).toEqual(['direct@1', 'triage@1']);
    expect(first.workflows.find((w) => w.id === 'triage')).toMatchObject({
      description: 'Triages tickets',
      spend: 100_000,
    });
    expect(first.invalid).toEqual([
      { file: 'broken.ts', problems: [{ field: 'limits.spend', message: expect.stringMatching(/a lot/) }] },
    ]);
  });

  it('reloads a changed file and the helper it imports, anew', async () => {
    writeFileSync(
      join(dir, 'lib/wording.ts'),
      "export const describe = (what: string): string => 'Sorts ' + what;\n",
    );
    writeFileSync(join(dir, 'triage.ts'), triage(2));
    child.stdin.write('reload\n');
    const again = await nextLoad();
    expect(again.workflows.find((w) => w.id === 'triage')).toMatchObject({
      version: '2',
      description: 'Sorts tickets',
    });
    expect(again.invalid.map((i) => i.file)).toEqual(['broken.ts']);
  });
});
