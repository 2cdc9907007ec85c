/**
 * A summary of a V8 .cpuprofile (what `node --cpu-prof` writes): self time and inclusive time per
 * function (name + file:line), over the samples in a window counted back from the profile's end,
 * in µs per call answered. Inclusive time counts a function once per sample even when it recurses.
 *
 *   node bin/run-ts.js bench/lib/cpuprofile.ts <file.cpuprofile> [calls] [top] [function: its stacks | places | callers]
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: Node[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

const short = (url: string) =>
  url
    .replace(/^file:\/\/.*?\/node_modules\//, 'nm:')
    .replace(/^file:\/\/.*?\/(runtime|adapters|bench)\//, '$1/')
    .replace(/^node:/, '');

export function summarise(
  file: string,
  opts: { top?: number; calls?: number; fromEndUs?: number; toEndUs?: number } = {},
): string {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const key = (n: Node) => {
    const f = n.callFrame;
    return `${f.functionName || '(anonymous)'} ${short(f.url)}${f.url ? `:${f.lineNumber + 1}` : ''}`;
  };
  const self = new Map<string, number>();
  const incl = new Map<string, number>();
  const lo = opts.fromEndUs === undefined ? -Infinity : p.endTime - opts.fromEndUs;
  const hi = opts.toEndUs === undefined ? Infinity : p.endTime - opts.toEndUs;
  let t = p.startTime;
  let total = 0;
  let idle = 0;
  for (let i = 0; i < p.samples.length; i++) {
    t += p.timeDeltas[i]!;
    const dt = p.timeDeltas[i + 1] ?? 0;
    if (t < lo || t > hi) continue;
    const n = byId.get(p.samples[i]!)!;
    const k = key(n);
    if (n.callFrame.functionName === '(idle)') {
      idle += dt;
      continue;
    }
    total += dt;
    self.set(k, (self.get(k) ?? 0) + dt);
    const seen = new Set<string>();
    for (let id: number | undefined = n.id; id !== undefined; id = parent.get(id)) {
      const kk = key(byId.get(id)!);
      if (seen.has(kk)) continue;
      seen.add(kk);
      incl.set(kk, (incl.get(kk) ?? 0) + dt);
    }
  }
  const calls = opts.calls ?? 1;
  const per = (us: number) => (us / calls).toFixed(1).padStart(8);
  const top = opts.top ?? 40;
  const lines = [
    `busy ${(total / 1e6).toFixed(2)} s, idle ${(idle / 1e6).toFixed(2)} s; µs per call over ${calls} calls: busy ${per(total)}`,
    '\n-- self --',
  ];
  for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, top))
    lines.push(`${per(v)}  ${((100 * v) / total).toFixed(1).padStart(5)}%  ${k}`);
  lines.push('\n-- inclusive --');
  for (const [k, v] of [...incl].sort((a, b) => b[1] - a[1]).slice(0, top * 2))
    lines.push(`${per(v)}  ${((100 * v) / total).toFixed(1).padStart(5)}%  ${k}`);
  return `${lines.join('\n')}\n`;
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const [file, calls, top, fn] = process.argv.slice(2);
  const o = { calls: calls ? Number(calls) : undefined, top: top ? Number(top) : 40 };
  process.stdout.write(
    fn === 'places'
      ? byPlace(file!, o)
      : fn === 'callers'
        ? byCaller(file!, o)
        : fn
          ? stacksOf(file!, fn, o)
          : summarise(file!, o),
  );
}

/** The stacks (root → leaf, function names) whose frames include `fn`, heaviest first. */
export function stacksOf(file: string, fn: string, opts: { calls?: number; top?: number } = {}): string {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const sums = new Map<string, number>();
  for (let i = 0; i < p.samples.length; i++) {
    const dt = p.timeDeltas[i + 1] ?? 0;
    const names: string[] = [];
    for (let id: number | undefined = p.samples[i]; id !== undefined; id = parent.get(id)) {
      const f = byId.get(id)!.callFrame;
      names.push(`${f.functionName || '(anon)'}@${short(f.url).split('/').pop()}`);
    }
    if (!names.some((n) => n.startsWith(`${fn}@`))) continue;
    const s = names.reverse().slice(1).join(' > ');
    sums.set(s, (sums.get(s) ?? 0) + dt);
  }
  const calls = opts.calls ?? 1;
  return `${[...sums]
    .sort((a, b) => b[1] - a[1])
    .slice(0, opts.top ?? 15)
    .map(([s, v]) => `${(v / calls).toFixed(1).padStart(8)}  ${s}`)
    .join('\n')}\n`;
}

/** Self time by where the code lives: the money store, node's internals, each dependency, each of our files. */
export function byPlace(
  file: string,
  opts: { calls?: number; fromEndUs?: number; toEndUs?: number } = {},
): string {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const lo = opts.fromEndUs === undefined ? -Infinity : p.endTime - opts.fromEndUs;
  const hi = opts.toEndUs === undefined ? Infinity : p.endTime - opts.toEndUs;
  const sums = new Map<string, number>();
  let t = p.startTime;
  for (let i = 0; i < p.samples.length; i++) {
    t += p.timeDeltas[i]!;
    const dt = p.timeDeltas[i + 1] ?? 0;
    if (t < lo || t > hi) continue;
    const f = byId.get(p.samples[i]!)!.callFrame;
    if (f.functionName === '(idle)') continue;
    const u = short(f.url);
    const place =
      /runtime\/(backends|store)\/|better-sqlite3|ioredis|redis-errors|denque|cluster-key-slot/.test(u)
        ? 'money store (+ its driver)'
        : u.startsWith('nm:')
          ? `dep ${u
              .slice(3)
              .split('/')
              .slice(0, u.includes('nm:@') ? 2 : 1)
              .join('/')}`
          : u === ''
            ? f.functionName.startsWith('(')
              ? f.functionName
              : `native ${f.functionName}`
            : /^(runtime|adapters|bench)\//.test(u)
              ? u
              : 'node internals (js)';
    sums.set(place, (sums.get(place) ?? 0) + dt);
  }
  const calls = opts.calls ?? 1;
  return `${[...sums]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 30)
    .map(([s, v]) => `${(v / calls).toFixed(1).padStart(8)}  ${s}`)
    .join('\n')}\n`;
}

/**
 * Every sample charged to the innermost frame of ours (runtime/, adapters/) on its stack, or to the
 * money store when any frame is the store's; node's and the dependencies' work lands on the code of
 * ours that asked for it. Samples with no frame of ours are charged to their outermost frame.
 */
export function byCaller(
  file: string,
  opts: { calls?: number; fromEndUs?: number; toEndUs?: number; top?: number } = {},
): string {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const lo = opts.fromEndUs === undefined ? -Infinity : p.endTime - opts.fromEndUs;
  const hi = opts.toEndUs === undefined ? Infinity : p.endTime - opts.toEndUs;
  const sums = new Map<string, number>();
  const STORE = /runtime\/(backends|store)\/|better-sqlite3|ioredis/;
  let t = p.startTime;
  for (let i = 0; i < p.samples.length; i++) {
    t += p.timeDeltas[i]!;
    const dt = p.timeDeltas[i + 1] ?? 0;
    if (t < lo || t > hi) continue;
    const leaf = byId.get(p.samples[i]!)!;
    if (leaf.callFrame.functionName === '(idle)') continue;
    let ours: string | undefined;
    let outer = leaf;
    let store = false;
    for (let id: number | undefined = leaf.id; id !== undefined; id = parent.get(id)) {
      const n = byId.get(id)!;
      const u = short(n.callFrame.url);
      if (STORE.test(u)) store = true;
      if (!ours && /^(runtime|adapters)\//.test(u)) ours = `${n.callFrame.functionName || '(anon)'} ${u}`;
      if (n.callFrame.functionName !== '(root)') outer = n;
    }
    const k = store
      ? 'money store (all it calls)'
      : (ours ?? `[no frame of ours] ${outer.callFrame.functionName} ${short(outer.callFrame.url)}`);
    sums.set(k, (sums.get(k) ?? 0) + dt);
  }
  const calls = opts.calls ?? 1;
  return `${[...sums]
    .sort((a, b) => b[1] - a[1])
    .slice(0, opts.top ?? 40)
    .map(([s, v]) => `${(v / calls).toFixed(1).padStart(8)}  ${s}`)
    .join('\n')}\n`;
}
