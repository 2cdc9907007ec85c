/**
 * A summary of a V8 sampling heap profile (.heapprofile, as bench/lib/alloc-sampler.mjs writes it
 * with collected objects included): bytes allocated per call answered, by place (node internals,
 * the money store, each file of ours) and by function (self), largest first.
 */
import { readFileSync } from 'node:fs';

interface HeapNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: HeapNode[];
}

const short = (url: string) =>
  url
    .replace(/^file:\/\/.*?\/node_modules\//, 'nm:')
    .replace(/^file:\/\/.*?\/(dist\/)?(runtime|adapters|bench)\//, '$2/')
    .replace(/^node:/, '');

function place(url: string): string {
  const s = short(url);
  if (s === '') return '(native or V8)';
  if (/money\/|better-sqlite3|ioredis/.test(s)) return 'money store (+ its driver)';
  if (!s.includes('/') || /^internal\//.test(s) || /^_/.test(s) || !s.includes('.')) return 'node internals';
  if (s.startsWith('nm:')) return `dep ${s.slice(3).split('/')[0]}`;
  return s;
}

function table(sums: Map<string, number>, calls: number, top: number): string {
  return [...sums]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([k, bytes]) => `${(bytes / calls).toFixed(0).padStart(9)} B  ${k}`)
    .join('\n');
}

export function summariseAlloc(file: string, calls: number, top = 40, survivors = false): string {
  const root = (JSON.parse(readFileSync(file, 'utf8')) as { head: HeapNode }).head;
  const byPlace = new Map<string, number>();
  const byFunction = new Map<string, number>();
  let total = 0;
  const walk = (n: HeapNode) => {
    if (n.selfSize > 0) {
      const f = n.callFrame;
      const fn = `${f.functionName || '(anonymous)'} ${short(f.url)}${f.url ? `:${f.lineNumber + 1}` : ''}`;
      byFunction.set(fn, (byFunction.get(fn) ?? 0) + n.selfSize);
      const p = place(f.url);
      byPlace.set(p, (byPlace.get(p) ?? 0) + n.selfSize);
      total += n.selfSize;
    }
    for (const c of n.children) walk(c);
  };
  walk(root);
  return [
    `allocated ${(total / calls / 1024).toFixed(1)} kB per call over ${calls} calls (sampled; ${survivors ? 'only what outlived a scavenge' : 'collected objects included'})`,
    '-- by place --',
    table(byPlace, calls, top),
    '-- by function (self) --',
    table(byFunction, calls, top),
  ].join('\n');
}
