import { readdirSync } from 'node:fs';
import { register } from 'node:module';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { McpPool } from '../../adapters/mcp/client.ts';
import {
  isDefinedWorkflow,
  type Problem,
  validateWorkflow,
  type Workflow,
  type WorkflowDefinitionError,
} from './define.ts';
import { connectMcp } from './mcp-tools.ts';

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

  /** The MCP connections of the set's workflows (see `loadWorkflows`). */
  mcp?: McpPool;
  /** True when the loader made `mcp` (then `close` closes it). */
  ownsMcp = false;
  /** Workflows left out (and listed in `invalid`) because an MCP server could not be reached. */
  readonly awaitingMcp: { file: string; workflow: Workflow }[] = [];
  /** The listing timeout the set was loaded with (for `retryMcp`). */
  mcpListTimeoutMs?: number;

  constructor(
    readonly dir: string,
    readonly invalid: InvalidWorkflow[] = [],
  ) {}

  /** Closes the MCP connections the loader opened for this set (a pool passed in stays open). */
  async close(): Promise<void> {
    if (this.ownsMcp) await this.mcp?.close();
  }

  /** Adds a workflow, or returns the file that already holds its id+version. */
  add(w: Workflow, file: string): string | undefined {
    const key = `${w.id}@${w.version}`;
    const existing = this.byKey.get(key);
    if (existing) return existing.file;
    this.byKey.set(key, { ...w, file });
    return undefined;
  }

  /**
   * Tries the MCP servers of the workflows in `awaitingMcp` again: those that connect now join
   * the set and leave `invalid`; the others keep waiting with their problems brought up to date
   * (or stop waiting, when what is wrong now is not reachability). Returns the workflows added.
   */
  async retryMcp(): Promise<Workflow[]> {
    const added: Workflow[] = [];
    if (!this.mcp) return added;
    for (const waiting of [...this.awaitingMcp]) {
      const r = await connectMcp(waiting.workflow, this.mcp, { listTimeoutMs: this.mcpListTimeoutMs });
      const problems = r.ok ? addedProblems(this, r.workflow, waiting.file) : r.problems;
      if (r.ok || !r.unreachable) this.awaitingMcp.splice(this.awaitingMcp.indexOf(waiting), 1);
      const at = this.invalid.findIndex((b) => b.file === waiting.file);
      if (at >= 0) this.invalid.splice(at, 1);
      if (problems.length) this.invalid.push({ file: waiting.file, problems });
      else if (r.ok) added.push(r.workflow);
    }
    return added;
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

export interface LoadOptions {
  /** Import the files anew (a reload). */
  fresh?: number;
  /** Where MCP connections come from (shared across reloads). Without one, the loader makes a
   * pool if a workflow needs it, owned by the set (`set.close()` closes it). */
  mcp?: McpPool;
  /** How long listing a server's tools at load may take (default: the pool's connect timeout). */
  mcpListTimeoutMs?: number;
}

/**
 * Loads every `.ts`/`.js` file in `dir` (each default-exports `defineWorkflow(...)`). The folder
 * may hold nothing but those files: they load as ES modules, and `chokepoint/workflow` (the
 * public entry, the one module of ours a workflow imports) resolves from this installation, as do
 * `zod` and `xstate` when the folder has no copies of its own (see import-hooks.js). A file that
 * does not import, does not validate, or repeats an id+version is listed in `invalid` with every
 * problem naming its field; the others load. A workflow with MCP servers loads once every server
 * answered and its allow-list matched (their tools are part of the frozen prefix); a server that
 * cannot be reached makes the workflow invalid, not the others. Never throws for a bad file: one
 * broken workflow must not take the server down.
 */
export async function loadWorkflows(dir: string, opts: LoadOptions = {}): Promise<WorkflowSet> {
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
  const imported: { file: string; result: Workflow | Problem[] }[] = [];
  for (const file of files) imported.push({ file, result: await importOne(join(root, file), opts.fresh) });
  if (imported.some((i) => !Array.isArray(i.result) && i.result.mcp.length > 0)) {
    set.mcp = opts.mcp ?? new McpPool();
    set.ownsMcp = !opts.mcp;
    set.mcpListTimeoutMs = opts.mcpListTimeoutMs;
  }
  // Every MCP server at once: one that is slow to answer does not hold up the others.
  const connected = await Promise.all(
    imported.map(async ({ file, result }) => {
      if (Array.isArray(result) || result.mcp.length === 0) return { file, result };
      const r = await connectMcp(result, set.mcp!, { listTimeoutMs: opts.mcpListTimeoutMs });
      if (!r.ok && r.unreachable) set.awaitingMcp.push({ file, workflow: result });
      return { file, result: r.ok ? r.workflow : r.problems };
    }),
  );
  for (const { file, result } of connected) {
    const problems = Array.isArray(result) ? result : addedProblems(set, result, file);
    if (problems.length) set.invalid.push({ file, problems });
  }
  return set;
}

/** Adds a workflow to the set: no problems, or the duplicate version. */
function addedProblems(set: WorkflowSet, w: Workflow, file: string): Problem[] {
  const holder = set.add(w, file);
  if (holder) {
    return [
      {
        field: 'version',
        message: `duplicate: ${w.id} version ${w.version} is already defined in ${holder}`,
      },
    ];
  }
  return [];
}

let hooked = false;
/**
 * Whether `.ts` files load in this process. From the sources they do (the CLI runs under tsx,
 * tests under vite); the built package (dist/, plain JavaScript) registers tsx the first time a
 * workflow file written in TypeScript is imported, so a folder of `.js` workflows never loads it.
 */
let typescript = !import.meta.url.endsWith('.js');

/**
 * Registers the hooks that let a folder of bare `.ts` files load (see import-hooks.js): once per
 * process, after tsx's own (so they run first and hand tsx the module format) — again when the
 * built package registers tsx after them. From the sources, `chokepoint/workflow` resolves with
 * the `chokepoint-source` condition (package.json's exports: the TypeScript entry, no build);
 * from dist/, through dist/package.json to the compiled entry.
 */
async function registerImportHooks(file: string): Promise<void> {
  const needsTsx = !typescript && /\.[mc]?tsx?$/.test(file);
  if (hooked && !needsTsx) return;
  if (needsTsx) {
    (await import('tsx/esm/api')).register();
    typescript = true;
  }
  hooked = true;
  register(new URL('./import-hooks.js', import.meta.url), {
    data: {
      packageJson: new URL('../../package.json', import.meta.url).href,
      conditions: import.meta.url.endsWith('.ts') ? ['chokepoint-source'] : [],
    },
  });
}

/** Imports and validates one file: its workflow, or every problem. */
async function importOne(path: string, fresh?: number): Promise<Workflow | Problem[]> {
  let mod: { default?: unknown };
  try {
    await registerImportHooks(path);
    // The mark tells the hooks this is a workflow file; its number makes a reload import the
    // file (and the files it imports) anew, a new module to the ESM cache.
    const url = `${pathToFileURL(path).href}?chokepoint-workflow=${fresh ?? 0}`;
    mod = (await import(url)) as { default?: unknown };
  } catch (err) {
    // By its code, not its class: the error may come from another copy of define.ts. A file may
    // throw anything, null included.
    const thrown = err as Partial<WorkflowDefinitionError> | null | undefined;
    if (thrown?.code === 'invalid_workflow' && Array.isArray(thrown.problems)) return thrown.problems;
    return [{ field: '(file)', message: `could not load: ${thrown?.message ?? String(err)}` }];
  }
  if (mod.default === undefined) {
    return [{ field: '(default export)', message: 'missing: export default defineWorkflow({...})' }];
  }
  const r = isDefinedWorkflow(mod.default)
    ? { ok: true as const, workflow: mod.default }
    : validateWorkflow(mod.default);
  return r.ok ? r.workflow : r.problems;
}
