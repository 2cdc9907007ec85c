#!/usr/bin/env node
// Start a gateway with `--max-semi-space-size=64` (a young generation of up to 64 MB a semi-space;
// node's default is 16): `npm start`, the Dockerfile and the systemd unit in deploy/ do (README,
// Install). Node reads the flag only at start, and a #! line cannot carry it everywhere (`env -S`
// is missing from BusyBox, so Alpine, and from the BSDs).
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
