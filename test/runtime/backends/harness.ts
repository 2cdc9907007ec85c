import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach } from 'vitest';
import { openBackend } from '../../../runtime/backends/open.ts';
import type { Backend } from '../../../runtime/backends/ports.ts';
import { resolveConfig } from '../../../runtime/config/load.ts';
import { createLogger } from '../../../runtime/log.ts';
import { REDIS_URL, testPrefixes } from '../store/redis-harness.ts';

export type Kind = Backend['kind'];
export const KINDS: Kind[] = ['embedded', 'redis'];

/**
 * Two backends of one kind on the same data (one data folder, or one Redis prefix), opened through
 * `openBackend` as two processes would open them. `distributed`: the kind reaches other processes
 * (Redis); embedded is one process, and what one backend announces is heard only inside it.
 */
export interface Pair {
  a: Backend;
  b: Backend;
  distributed: boolean;
}

/**
 * Opens a fresh pair for each test of the file (`pair()` inside a test), closed after it; the data
 * folders and Redis keys go when the file is done.
 */
export function backendPairs(kind: Kind, name: string): () => Promise<Pair> {
  const prefixes = testPrefixes(`backend-${name}`);
  const dirs: string[] = [];
  const open: Backend[] = [];
  afterEach(async () => {
    for (const b of open.splice(0)) await b.close();
  });
  afterAll(async () => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
    if (kind === 'redis') await prefixes.cleanup();
  });
  const log = createLogger({ level: 'silent' });
  return async () => {
    const dataDir = mkdtempSync(join(tmpdir(), `cp-backend-${name}-`));
    dirs.push(dataDir);
    const raw = {
      dataDir,
      ...(kind === 'redis'
        ? { store: { backend: 'redis', redisUrl: REDIS_URL, prefix: prefixes.next() } }
        : {}),
    };
    const config = resolveConfig(raw, { env: {} });
    const a = await openBackend(config, { log });
    open.push(a);
    const b = await openBackend(config, { log });
    open.push(b);
    return { a, b, distributed: kind === 'redis' };
  };
}

/** Resolves once `check` holds (polled), or fails naming `what` after `ms`. */
export async function eventually(what: string, check: () => boolean | Promise<boolean>, ms = 2_000) {
  const until = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
