// Node module hooks for workflow files (registered by loader.ts with `module.register`). Plain
// JavaScript: hooks run on Node's loader thread, which may not have tsx registered.
//
// A workflows folder of one's own holds nothing but `.ts` files: no package.json saying
// `"type": "module"`, no node_modules. Without these hooks Node (and tsx) would load its files as
// CommonJS (then a `require` of the ES-module runtime fails "in a cycle") and could not find
// `chokepoint/workflow`, `zod` or `xstate` from outside the checkout. So, for the files the loader
// imports (their URL carries `?chokepoint-workflow=<n>`) and the files they import in turn:
// - `chokepoint` and `chokepoint/*` resolve from the installed Chokepoint (the runtime's own copy,
//   so `defineWorkflow` is the very function the loader checks);
// - other packages resolve from the folder first, then from the installed Chokepoint;
// - every JavaScript or TypeScript file loads as an ES module, whatever the nearest package.json
//   says, and carries the mark (with the reload number: a reload imports helpers anew too).

import { statSync } from 'node:fs';

const MARK = 'chokepoint-workflow';
const MODULE_FILE = /\.(?:[mj]s|[mj]?tsx?|jsx)$/;

/** The installed Chokepoint's package.json (a file URL): the parent bare imports fall back to. */
let chokepoint = '';
/** Export conditions added when resolving `chokepoint/*` (`chokepoint-source` from a checkout). */
let conditions = [];

/** @param {{ packageJson: string, conditions?: string[] }} data */
export function initialize(data) {
  chokepoint = data.packageJson;
  conditions = data.conditions ?? [];
}

/** The mark's value on a URL (undefined when it has none or is not a URL). */
function markOf(url) {
  if (!url?.includes(MARK)) return undefined;
  try {
    return new URL(url).searchParams.get(MARK) ?? undefined;
  } catch {
    return undefined;
  }
}

/** A package name, not a path, URL or `#` subpath import. */
const isBare = (specifier) => !/^(?:\.{0,2}\/|#|[A-Za-z][A-Za-z0-9+.-]*:)/.test(specifier);

// Where `./x.js` may be written for `./x.ts` (TypeScript's own convention), or the extension left
// out, the file that exists, in tsx's order.
const CANDIDATES = [
  (p) => p,
  (p) => (p.endsWith('.js') ? [`${p.slice(0, -3)}.ts`, `${p.slice(0, -3)}.tsx`] : []),
  (p) => (p.endsWith('.jsx') ? `${p.slice(0, -4)}.tsx` : []),
  (p) => (p.endsWith('.mjs') ? `${p.slice(0, -4)}.mts` : []),
  (p) => ['.ts', '.tsx', '.mts', '.js', '.mjs', '/index.ts', '/index.js'].map((ext) => p + ext),
];

/** The file a relative or absolute specifier names, or undefined (not found, or not ES code). */
function workflowFile(specifier, parentURL) {
  let base;
  try {
    base = new URL(specifier, parentURL);
  } catch {
    return undefined;
  }
  if (base.protocol !== 'file:') return undefined;
  base.search = '';
  base.hash = '';
  for (const candidate of CANDIDATES.flatMap((c) => c(base.href))) {
    const url = new URL(candidate);
    if (!MODULE_FILE.test(url.pathname) || url.pathname.includes('/node_modules/')) continue;
    try {
      if (statSync(url).isFile()) return url;
    } catch {}
  }
  return undefined;
}

export async function resolve(specifier, context, nextResolve) {
  const own = markOf(specifier);
  const mark = own ?? markOf(context.parentURL);
  if (mark === undefined) return nextResolve(specifier, context);
  if (own === undefined && isBare(specifier)) {
    const fromChokepoint = { ...context, parentURL: chokepoint };
    if (specifier === 'chokepoint' || specifier.startsWith('chokepoint/')) {
      return nextResolve(specifier, {
        ...fromChokepoint,
        conditions: [...conditions, ...context.conditions],
      });
    }
    try {
      return await nextResolve(specifier, context);
    } catch (err) {
      if (err?.code !== 'ERR_MODULE_NOT_FOUND') throw err;
      // Not there either: the first error, which names the workflow file that imports it.
      return nextResolve(specifier, fromChokepoint).catch(() => Promise.reject(err));
    }
  }
  // Resolved here, not by tsx: tsx would route a file whose package scope is CommonJS (or has
  // none) through its CommonJS bridge. With `format: 'module'` its load hook compiles it as ESM.
  const file = isBare(specifier) ? undefined : workflowFile(specifier, context.parentURL);
  if (!file) return nextResolve(specifier, context);
  file.searchParams.set(MARK, mark);
  return { url: file.href, format: 'module', shortCircuit: true };
}
