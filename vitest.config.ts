import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  // Workflow files written to temp folders import the public entry by name; in tests vite loads
  // them, so it maps the name the way runtime/workflows/import-hooks.js does under Node.
  resolve: {
    alias: [
      {
        find: /^chokepoint\/workflow$/,
        replacement: fileURLToPath(new URL('./runtime/workflow.ts', import.meta.url)),
      },
    ],
  },
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    // Vitest's default is one worker less than the cores: one on a 2-core machine, where most test
    // files wait on servers, child processes, Redis or Chromium. Two: 692 s -> 460 s here.
    maxWorkers: 2,
  },
});
