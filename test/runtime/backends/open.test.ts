import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { REDIS_URL } from '../store/redis-harness.ts';

const run = promisify(execFile);
const FIXTURE = new URL('./fixtures/embedded-imports.mjs', import.meta.url).pathname;

async function loadedBy(...args: string[]): Promise<{ kind: string; loaded: string[] }> {
  const { stdout } = await run(process.execPath, [FIXTURE, ...args], { timeout: 60_000 });
  return JSON.parse(stdout.trim().split('\n').pop()!);
}

describe('openBackend', () => {
  it('opens the embedded default without loading ioredis or BullMQ', async () => {
    expect(await loadedBy()).toEqual({ kind: 'embedded', loaded: [] });
  });

  it('loads them for Redis (the check itself sees them)', async () => {
    const { kind, loaded } = await loadedBy(REDIS_URL);
    expect(kind).toBe('redis');
    expect(loaded).toEqual(expect.arrayContaining(['ioredis', 'bullmq']));
  });
});
