#!/usr/bin/env -S node --max-semi-space-size=64
// The flag: a young generation of up to 64 MB a semi-space (node's default: 16). A gateway under
// load holds every call in flight in the young generation; with 16 MB it is collected every few
// dozen milliseconds, so calls in flight are copied over and over and most are promoted to the old
// generation: ~37-48 µs of collector a call at 200 calls in flight over a 20 ms upstream, 7-9 µs
// with 64 MB (bench/profile.ts --node-flag --trace-gc). It costs memory only as it is used (up to
// ~100 MB more RSS at saturation). `npm start` passes the same flag; bench/lib/procs.ts starts
// every process of the benchmarks with the flags of this line.
// The CLI. From a checkout (the TypeScript sources are here) it runs them through tsx: no build
// step, so `npm start` works on a fresh clone and never runs a stale dist/. From the installed
// package (no sources, only the compiled dist/ of `npm run build`) it runs plain JavaScript.
import { existsSync } from 'node:fs';

const source = new URL('../runtime/faces/cli/main.ts', import.meta.url);
if (existsSync(source)) {
  const { register } = await import('tsx/esm/api');
  register();
  await import(source.href);
} else {
  await import(new URL('../dist/runtime/faces/cli/main.js', import.meta.url).href);
}
