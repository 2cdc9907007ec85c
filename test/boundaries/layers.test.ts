/**
 * The house's layering, held against the code's own imports:
 *
 *   faces (runtime/faces: gateway faces, API, inbox, MCP server, CLI)
 *     → services (runtime/compose.ts) → approvals/ → runs (runtime/workflows) → the call path
 *     (runtime/gateway) → backends and the shared core (store ports, pricing, config, …) → adapters/
 *
 * Arrows point down only. A part is a folder under runtime/ (each face under runtime/faces on its
 * own), a file directly under runtime/, approvals/, workflows/, or a folder or file of adapters/. The walk
 * counts every import, `import type` included: a type-only cycle is still two parts that cannot be
 * understood (or replaced) apart.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..', '..');
const PRODUCT = ['runtime', 'approvals', 'workflows', 'adapters'];

function files(dir: string): string[] {
  const out: string[] = [];
  if (!existsSync(join(ROOT, dir))) return out;
  for (const name of readdirSync(join(ROOT, dir))) {
    const path = join(dir, name);
    if (statSync(join(ROOT, path)).isDirectory()) out.push(...files(path));
    else if (/\.(ts|tsx)$/.test(name)) out.push(path);
  }
  return out;
}

const source = (f: string) => readFileSync(join(ROOT, f), 'utf8');
const IMPORT =
  /(?:^|\n)\s*(?:import|export)\s[^'"`;]*?from\s*['"](\.{1,2}\/[^'"]+)['"]|import\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g;

/** Every relative import of a file, as repository paths. */
function importsOf(file: string): string[] {
  const out: string[] = [];
  for (const m of source(file).matchAll(IMPORT)) {
    const spec = m[1] ?? m[2] ?? '';
    out.push(relative(ROOT, resolve(ROOT, dirname(file), spec)));
  }
  return out;
}

/** The part a file belongs to. */
function partOf(file: string): string {
  const seg = file.split('/');
  if (seg[0] === 'runtime') {
    if (seg[1] === 'faces' && seg.length > 3) return seg.slice(0, 3).join('/');
    return seg.length > 2 ? seg.slice(0, 2).join('/') : file;
  }
  if (seg[0] === 'adapters') return seg.length > 2 ? seg.slice(0, 2).join('/') : file;
  return seg[0] ?? file;
}

const graph = new Map<string, Set<string>>();
const edges: Array<{ from: string; to: string }> = [];
for (const f of PRODUCT.flatMap(files)) {
  for (const to of importsOf(f)) {
    edges.push({ from: f, to });
    const a = partOf(f);
    const b = partOf(to);
    if (a === b) continue;
    if (!graph.has(a)) graph.set(a, new Set());
    graph.get(a)!.add(b);
  }
}

/** Strongly connected components with more than one part (Tarjan). */
function cycles(g: Map<string, Set<string>>): string[][] {
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const on = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string) => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    on.add(v);
    for (const w of g.get(v) ?? []) {
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        on.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1) out.push(scc.sort());
    }
  };
  for (const v of g.keys()) if (!idx.has(v)) visit(v);
  return out;
}

/** Imports from files under `from` to files under any of `to` (path prefixes). */
function crossing(from: string | ((f: string) => boolean), to: string[]): string[] {
  const inFrom = typeof from === 'string' ? (f: string) => f.startsWith(from) : from;
  return edges
    .filter((e) => inFrom(e.from) && to.some((t) => e.to.startsWith(t)))
    .map((e) => `${e.from} -> ${e.to}`);
}

describe('the layering', () => {
  it('has no import cycle between parts', () => {
    expect(cycles(graph)).toEqual([]);
  });

  it('keeps faces on top: nothing below runtime/faces imports a face', () => {
    const below = (f: string) => !f.startsWith('runtime/faces/');
    expect(crossing(below, ['runtime/faces/'])).toEqual([]);
  });

  it('keeps adapters leaves: they import nothing of ours', () => {
    const ours = ['runtime/', 'approvals/', 'workflows/'];
    expect(crossing('adapters/', ours)).toEqual([]);
  });

  it('keeps the emulator (a test double) out of the core: only the registry and the CLI command serving it', () => {
    const core = (f: string) =>
      (f.startsWith('runtime/') && !f.startsWith('runtime/faces/')) || f.startsWith('approvals/');
    expect(crossing(core, ['adapters/emulator/'])).toEqual([]);
  });

  it('keeps the call path below runs, approvals, observability and the runtime bag', () => {
    const above = ['runtime/runtime.ts', 'runtime/observability/', 'runtime/workflows/', 'approvals/'];
    expect(crossing('runtime/gateway/', above)).toEqual([]);
  });

  it('keeps runs unaware of approvals', () => {
    expect(crossing('runtime/workflows/', ['approvals/'])).toEqual([]);
  });

  it('keeps config as data: it imports no feature', () => {
    const allowed = [
      'runtime/config/',
      'runtime/money.ts',
      'runtime/identity.ts',
      'runtime/pricing/prices.ts',
      // The provider registry: the kinds `provider.kind` may name.
      'adapters/providers.ts',
    ];
    const offenders = edges
      .filter((e) => e.from.startsWith('runtime/config/') && !allowed.some((a) => e.to.startsWith(a)))
      .filter((e) => !/store\/port\.ts$|backends\/ports\.ts$/.test(e.to) || !isTypeOnly(e.from, e.to))
      .map((e) => `${e.from} -> ${e.to}`);
    expect(offenders).toEqual([]);
  });

  it('opens stores in one place: only runtime/backends touches a store driver, and one file chooses', () => {
    const DRIVER =
      /from\s+['"](ioredis|better-sqlite3|bullmq)['"]|import\(\s*['"](ioredis|better-sqlite3|bullmq)['"]/;
    const outside = PRODUCT.flatMap(files).filter(
      (f) => DRIVER.test(source(f)) && !f.startsWith('runtime/backends/'),
    );
    expect(outside).toEqual([]);
    const choosers = files('runtime/backends').filter((f) =>
      /import\(\s*['"]\.\/(embedded|redis)\/open\.ts['"]/.test(source(f)),
    );
    expect(choosers).toEqual(['runtime/backends/open.ts']);
  });

  it('finds a cycle when there is one (the check itself works)', () => {
    const g = new Map([
      ['a', new Set(['b'])],
      ['b', new Set(['c'])],
      ['c', new Set(['a'])],
      ['d', new Set(['a'])],
    ]);
    expect(cycles(g)).toEqual([['a', 'b', 'c']]);
    expect(partOf('runtime/faces/web/pages/x.tsx')).toBe('runtime/faces/web');
    expect(partOf('runtime/gateway/call.ts')).toBe('runtime/gateway');
    expect(partOf('runtime/backends/redis/open.ts')).toBe('runtime/backends');
    expect(partOf('runtime/runtime.ts')).toBe('runtime/runtime.ts');
  });
});

/** True when every import of `to` in `from` is `import type`. */
function isTypeOnly(from: string, to: string): boolean {
  const spec = relative(dirname(join(ROOT, from)), join(ROOT, to));
  const lines = source(from)
    .split('\n')
    .filter((l) => l.includes(spec.startsWith('.') ? spec : `./${spec}`));
  return lines.length > 0 && lines.every((l) => /^\s*import type\b/.test(l));
}

const MAX_FILE = 600;
const MAX_FUNCTION = 120;
/** A long function or file says why at its top with a comment holding this word. */
const REASON = /\blong:/;

describe('sizes a reader can hold', () => {
  const product = PRODUCT.flatMap(files);

  it(`has no product file over ${MAX_FILE} lines without a reason at its top`, () => {
    const long = product.filter((f) => {
      const text = source(f);
      return text.split('\n').length > MAX_FILE && !REASON.test(text.slice(0, 2_000));
    });
    expect(long).toEqual([]);
  });

  it(`has no function over ${MAX_FUNCTION} lines without a reason written at its top`, () => {
    const long: string[] = [];
    for (const f of product) {
      const text = source(f);
      const sf = ts.createSourceFile(f, text, ts.ScriptTarget.Latest, true);
      const visit = (node: ts.Node) => {
        if (ts.isFunctionLike(node) && 'body' in node && node.body) {
          const start = sf.getLineAndCharacterOfPosition(node.getStart(sf)).line;
          const end = sf.getLineAndCharacterOfPosition(node.getEnd()).line;
          const lines = end - start + 1;
          if (lines > MAX_FUNCTION && !REASON.test(leadingComments(text, node))) {
            long.push(`${f}:${start + 1} ${nameOf(node)} (${lines} lines)`);
          }
        }
        ts.forEachChild(node, visit);
      };
      visit(sf);
    }
    expect(long).toEqual([]);
  });
});

/** The comments just above a function (or the statement that holds it) and its first lines. */
function leadingComments(text: string, node: ts.Node): string {
  let holder: ts.Node = node;
  while (
    holder.parent &&
    !ts.isSourceFile(holder.parent) &&
    !ts.isBlock(holder.parent) &&
    !ts.isClassLike(holder.parent) &&
    !ts.isObjectLiteralExpression(holder.parent)
  ) {
    holder = holder.parent;
  }
  const before = (ts.getLeadingCommentRanges(text, holder.getFullStart()) ?? [])
    .map((r) => text.slice(r.pos, r.end))
    .join('\n');
  const body = (node as ts.FunctionLikeDeclaration).body;
  const head = body ? text.slice(body.getStart(), body.getStart() + 600) : '';
  return `${before}\n${head}`;
}

function nameOf(node: ts.Node): string {
  const n = (node as ts.FunctionLikeDeclaration).name;
  if (n && ts.isIdentifier(n)) return n.text;
  let p: ts.Node | undefined = node.parent;
  while (p && !ts.isSourceFile(p)) {
    if ((ts.isVariableDeclaration(p) || ts.isPropertyAssignment(p)) && ts.isIdentifier(p.name))
      return p.name.text;
    p = p.parent;
  }
  return '(anonymous)';
}
