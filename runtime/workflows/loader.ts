import { readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  isDefinedWorkflow,
  type Problem,
  validateWorkflow,
  type Workflow,
  WorkflowDefinitionError,
} from './define.ts';

export interface InvalidWorkflow {
  file: string;
  problems: Problem[];
}

/**
 * Every workflow in a folder, by id and version. Old versions stay loadable (a suspended run is
 * pinned to the version it started on), so one id may have several.
 */
export class WorkflowSet {
  private readonly byKey = new Map<string, Workflow & { file: string }>();

  constructor(
    readonly dir: string,
    readonly invalid: InvalidWorkflow[] = [],
  ) {}

  /** Adds a workflow, or returns the file that already holds its id+version. */
  add(w: Workflow, file: string): string | undefined {
    const key = `${w.id}@${w.version}`;
    const existing = this.byKey.get(key);
    if (existing) return existing.file;
    this.byKey.set(key, { ...w, file });
    return undefined;
  }

  remove(id: string, version: string): void {
    this.byKey.delete(`${id}@${version}`);
  }

  /** The given version, or the latest one (numeric versions compare as numbers). */
  get(id: string, version?: string): (Workflow & { file: string }) | undefined {
    if (version !== undefined) return this.byKey.get(`${id}@${version}`);
    return this.versions(id).at(-1);
  }

  versions(id: string): (Workflow & { file: string })[] {
    return this.list()
      .filter((w) => w.id === id)
      .sort((a, b) => a.version.localeCompare(b.version, 'en', { numeric: true }));
  }

  list(): (Workflow & { file: string })[] {
    return [...this.byKey.values()];
  }
}

const WORKFLOW_FILE = /^(?!.*\.(d|test|spec)\.[jt]s$).*\.(ts|js|mjs)$/;

/**
 * Loads every `.ts`/`.js` file in `dir` (each default-exports `defineWorkflow(...)`). A file that
 * does not import, does not validate, or repeats an id+version is listed in `invalid` with every
 * problem naming its field; the others load. Never throws for a bad file: one broken workflow
 * must not take the server down.
 */
export async function loadWorkflows(dir: string, opts: { fresh?: number } = {}): Promise<WorkflowSet> {
  const root = resolve(dir);
  let names: string[];
  try {
    names = readdirSync(root);
  } catch (err) {
    const set = new WorkflowSet(root);
    set.invalid.push({
      file: root,
      problems: [
        { field: 'workflows.dir', message: `cannot read the workflows folder: ${(err as Error).message}` },
      ],
    });
    return set;
  }
  const files = names.filter((f) => WORKFLOW_FILE.test(f)).sort();
  const set = new WorkflowSet(root);
  for (const file of files) {
    const problems = await loadOne(set, join(root, file), file, opts.fresh);
    if (problems.length) set.invalid.push({ file, problems });
  }
  return set;
}

async function loadOne(set: WorkflowSet, path: string, file: string, fresh?: number): Promise<Problem[]> {
  let mod: { default?: unknown };
  try {
    // A reload imports the file anew (a query makes it a new module to the ESM cache).
    const url = pathToFileURL(path).href + (fresh ? `?v=${fresh}` : '');
    mod = (await import(url)) as { default?: unknown };
  } catch (err) {
    if (err instanceof WorkflowDefinitionError) return err.problems;
    return [{ field: '(file)', message: `could not load: ${(err as Error).message}` }];
  }
  if (mod.default === undefined) {
    return [{ field: '(default export)', message: 'missing: export default defineWorkflow({...})' }];
  }
  const r = isDefinedWorkflow(mod.default)
    ? { ok: true as const, workflow: mod.default }
    : validateWorkflow(mod.default);
  if (!r.ok) return r.problems;
  const holder = set.add(r.workflow, file);
  if (holder) {
    return [
      {
        field: 'version',
        message: `duplicate: ${r.workflow.id} version ${r.workflow.version} is already defined in ${holder}`,
      },
    ];
  }
  return [];
}
