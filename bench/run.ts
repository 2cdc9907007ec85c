/**
 * The benchmark suite: each bench script in its own process, one after another, so one cannot warm
 * or starve another. Each prints its table and writes its results under bench/results/.
 *
 *   npm run bench [-- --quick] [-- --only store,gateway,percall,exactness,runs,approvals,tracing,scale-sim]
 *
 * The whole suite takes about 8 minutes on a 2-core machine; --quick about 2 (nothing written).
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const SUITE: { name: string; file: string; args: (quick: boolean) => string[] }[] = [
  { name: 'store', file: 'store.ts', args: (q) => (q ? ['--quick'] : []) },
  { name: 'gateway', file: 'gateway.ts', args: (q) => (q ? ['--quick'] : []) },
  { name: 'percall', file: 'percall.ts', args: (q) => (q ? ['--quick'] : []) },
  { name: 'exactness', file: 'exactness.ts', args: (q) => (q ? ['--quick'] : []) },
  { name: 'runs', file: 'runs.ts', args: (q) => (q ? ['--quick'] : []) },
  { name: 'approvals', file: 'approvals.ts', args: (q) => (q ? ['--quick'] : []) },
  { name: 'tracing', file: 'tracing.ts', args: (q) => (q ? ['--quick'] : []) },
  { name: 'scale-sim', file: 'scale-sim.ts', args: (q) => (q ? ['--quick'] : []) },
];

const argv = process.argv.slice(2);
const quick = argv.includes('--quick');
const onlyAt = argv.indexOf('--only');
const only = onlyAt >= 0 ? new Set((argv[onlyAt + 1] ?? '').split(',')) : undefined;
const unknown = [...(only ?? [])].filter((n) => !SUITE.some((s) => s.name === n));
if (unknown.length > 0) {
  console.error(`unknown bench ${unknown.join(', ')}: choose from ${SUITE.map((s) => s.name).join(', ')}`);
  process.exit(2);
}

const runTs = fileURLToPath(new URL('../bin/run-ts.js', import.meta.url));
const failed: string[] = [];
const started = Date.now();
for (const b of SUITE) {
  if (only && !only.has(b.name)) continue;
  console.log(`\n## ${b.name}\n`);
  const t0 = Date.now();
  const r = spawnSync(
    process.execPath,
    [runTs, fileURLToPath(new URL(b.file, import.meta.url)), ...b.args(quick)],
    {
      stdio: 'inherit',
    },
  );
  console.log(
    `\n(${b.name}: ${((Date.now() - t0) / 1000).toFixed(1)} s${r.status === 0 ? '' : `, exit ${r.status}`})`,
  );
  if (r.status !== 0) failed.push(b.name);
}
console.log(
  `\nbench suite: ${((Date.now() - started) / 1000).toFixed(0)} s${failed.length ? `, failed: ${failed.join(', ')}` : ''}`,
);
process.exit(failed.length ? 1 : 0);
