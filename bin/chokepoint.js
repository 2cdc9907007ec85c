#!/usr/bin/env node
// Runs the TypeScript CLI directly: no build step, so `npm start` works on a fresh clone.
import { register } from 'tsx/esm/api';

register();
await import('../runtime/faces/cli/main.ts');
