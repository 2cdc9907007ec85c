/**
 * The CLI the benchmarks start: the compiled package (dist/, what `npm install -g` runs in
 * production), built here first when any product source is newer than the last build. A checkout's
 * `bin/chokepoint.js` runs the sources through tsx instead, whose per-call helpers (`__name`, the
 * source-map hooks) a production process does not pay; `--source` (or CHOKEPOINT_BENCH_SOURCE=1)
 * measures that one.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const PRODUCT = ['runtime', 'adapters', 'workflows', 'approvals'];
const MAIN = join(ROOT, 'dist/runtime/faces/cli/main.js');
/** scripts/build.ts writes it last: its time is the build's. */
const STAMP = join(ROOT, 'dist/package.json');

function newestSource(): number {
  let newest = 0;
  for (const dir of PRODUCT) {
    for (const e of readdirSync(join(ROOT, dir), { recursive: true, withFileTypes: true })) {
      if (e.isFile()) newest = Math.max(newest, statSync(join(e.parentPath, e.name)).mtimeMs);
    }
  }
  return newest;
}

export const fromSource = process.argv.includes('--source') || process.env.CHOKEPOINT_BENCH_SOURCE === '1';

/** The path of the CLI to start with `node`: dist/'s, built if stale, or bin/chokepoint.js with --source. */
export function benchCli(): string {
  if (fromSource) return join(ROOT, 'bin/chokepoint.js');
  if (!existsSync(STAMP) || !existsSync(MAIN) || statSync(STAMP).mtimeMs < newestSource()) {
    console.error('building dist/ (the benchmarks run the compiled package; --source runs the sources)…');
    execFileSync(process.execPath, [join(ROOT, 'bin/run-ts.js'), join(ROOT, 'scripts/build.ts')], {
      stdio: 'inherit',
    });
  }
  return MAIN;
}
