import { readFileSync } from 'node:fs';
const p = JSON.parse(readFileSync(process.argv[2]!, 'utf8'));
const calls = Number(process.argv[3]);
const sums = new Map<string, number>();
const byId = new Map(p.nodes.map((n: any) => [n.id, n]));
for (let i = 0; i < p.samples.length; i++) {
  const dt = p.timeDeltas[i + 1] ?? 0;
  const f = (byId.get(p.samples[i]) as any).callFrame;
  const u: string = f.url;
  if (!/runtime\/(backends|store)\/|better-sqlite3|ioredis|redis-errors|denque|cluster-key-slot/.test(u) && f.functionName !== 'run' && f.functionName !== 'all') continue;
  const k = `${f.functionName || '(anon)'} ${u.replace(/.*\/(node_modules|runtime)\//, '')}`;
  sums.set(k, (sums.get(k) ?? 0) + dt);
}
for (const [k, v] of [...sums].sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log((v / calls).toFixed(2).padStart(7), k);
