import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { LocalRunQueue } from '../../runtime/backends/embedded/run-queue.ts';
import { BullRunQueue } from '../../runtime/backends/redis/run-queue.ts';
import type { RunQueue, RunWork } from '../../runtime/store/run-queue.ts';
import { REDIS_URL } from '../helpers/harness.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const WORKER = 'test/approvals/fixtures/queue-worker.ts';
/** Every key this file writes starts with this (hash-tagged, like the deployment prefixes). */
const FILE_PREFIX = `{cpq${randomBytes(4).toString('hex')}}`;
let prefixes = 0;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs = 5000, what = 'condition') {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(10);
  }
}

function deferred() {
  let resolve: () => void = () => {};
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

const work = (runId: string, cause: RunWork['cause'] = 'start'): RunWork => ({ runId, cause });

interface Made {
  queue: RunQueue;
  errors: Array<{ err: unknown; work?: RunWork }>;
}

type Factory = (opts?: { prefix?: string; lockMs?: number; stalledMs?: number }) => Made;

const open: RunQueue[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((q) => q.close(false)));
});

const makeLocal: Factory = () => {
  const errors: Made['errors'] = [];
  const queue = new LocalRunQueue({ onError: (err, w) => errors.push({ err, work: w }) });
  open.push(queue);
  return { queue, errors };
};

const makeBull: Factory = (opts = {}) => {
  const errors: Made['errors'] = [];
  const queue = new BullRunQueue({
    redisUrl: REDIS_URL,
    prefix: opts.prefix ?? `${FILE_PREFIX}t${++prefixes}:`,
    lockMs: opts.lockMs,
    stalledMs: opts.stalledMs,
    onError: (err, w) => errors.push({ err, work: w }),
  });
  open.push(queue);
  return { queue, errors };
};

function contract(name: string, make: Factory) {
  describe(`${name}: the runs queue contract`, () => {
    it('hands enqueued work to the handler with its data', async () => {
      const { queue, errors } = make();
      const seen: RunWork[] = [];
      queue.work(
        async (w) => {
          seen.push(w);
        },
        { concurrency: 1 },
      );
      await queue.enqueue('start:r1', work('r1', 'resume'));
      await waitFor(() => seen.length === 1, 5000, 'the work');
      expect(seen).toEqual([{ runId: 'r1', cause: 'resume' }]);
      await waitFor(async () => (await queue.depth()) === 0, 2000, 'an empty queue');
      expect(errors).toEqual([]);
    });

    it('runs a job id enqueued twice while waiting once; after it finished, it may run again', async () => {
      const { queue } = make();
      await queue.enqueue('start:r2', work('r2'));
      await queue.enqueue('start:r2', work('r2'));
      expect(await queue.depth()).toBe(1);
      const seen: string[] = [];
      queue.work(
        async (w) => {
          seen.push(w.runId);
        },
        { concurrency: 2 },
      );
      await waitFor(() => seen.length === 1, 5000, 'the first run');
      await waitFor(async () => (await queue.depth()) === 0, 2000, 'an empty queue');
      await sleep(150);
      expect(seen).toEqual(['r2']);
      await queue.enqueue('start:r2', work('r2'));
      await waitFor(() => seen.length === 2, 5000, 'the second run');
    });

    it('takes any job id string (colons, percent signs, digits only) and keeps them apart', async () => {
      const { queue, errors } = make();
      const ids = ['start:r3', 'start%3Ar3', '42', 'resume:r3:d1'];
      for (const id of ids) await queue.enqueue(id, work(id));
      expect(await queue.depth()).toBe(4);
      const seen: string[] = [];
      queue.work(
        async (w) => {
          seen.push(w.runId);
        },
        { concurrency: 1 },
      );
      await waitFor(() => seen.length === 4, 5000, 'four jobs');
      expect(seen).toEqual(ids);
      expect(errors).toEqual([]);
    });

    it('keeps at most `concurrency` handlers in flight', async () => {
      const { queue } = make();
      let inFlight = 0;
      let max = 0;
      const done: string[] = [];
      queue.work(
        async (w) => {
          inFlight++;
          max = Math.max(max, inFlight);
          await sleep(100);
          inFlight--;
          done.push(w.runId);
        },
        { concurrency: 2 },
      );
      for (let i = 0; i < 6; i++) await queue.enqueue(`j${i}`, work(`r${i}`));
      await waitFor(() => done.length === 6, 8000, 'six jobs');
      expect(max).toBe(2);
      expect(new Set(done).size).toBe(6);
    });

    it('keeps work enqueued before work() waiting, then processes it in order', async () => {
      const { queue } = make();
      for (const id of ['a', 'b', 'c']) await queue.enqueue(`start:${id}`, work(id));
      await sleep(100);
      expect(await queue.depth()).toBe(3);
      const seen: string[] = [];
      queue.work(
        async (w) => {
          seen.push(w.runId);
        },
        { concurrency: 1 },
      );
      await waitFor(() => seen.length === 3, 5000, 'three jobs');
      expect(seen).toEqual(['a', 'b', 'c']);
    });

    it('reports a throwing handler and goes on with the next jobs', async () => {
      const { queue, errors } = make();
      const seen: string[] = [];
      queue.work(
        async (w) => {
          seen.push(w.runId);
          if (w.runId === 'bad') throw new Error('handler blew up');
        },
        { concurrency: 1 },
      );
      await queue.enqueue('j-bad', work('bad'));
      await queue.enqueue('j-good', work('good'));
      await waitFor(() => seen.length === 2 && errors.length === 1, 5000, 'both jobs');
      expect(seen).toEqual(['bad', 'good']);
      expect(String(errors[0]?.err)).toContain('handler blew up');
      expect(errors[0]?.work).toEqual(work('bad'));
      await queue.enqueue('j-later', work('later'));
      await waitFor(() => seen.length === 3, 5000, 'a later job');
    });

    it('graceful close waits for the handlers in flight', async () => {
      const { queue } = make();
      const started = deferred();
      let finished = false;
      queue.work(
        async () => {
          started.resolve();
          await sleep(300);
          finished = true;
        },
        { concurrency: 1 },
      );
      await queue.enqueue('j-slow', work('slow'));
      await started.promise;
      await queue.close(true);
      expect(finished).toBe(true);
    });

    it('non-graceful close does not wait for a handler that never ends', async () => {
      const { queue } = make();
      const started = deferred();
      queue.work(
        async () => {
          started.resolve();
          await new Promise<never>(() => {});
        },
        { concurrency: 1 },
      );
      await queue.enqueue('j-hang', work('hang'));
      await started.promise;
      const t0 = Date.now();
      await queue.close(false);
      expect(Date.now() - t0).toBeLessThan(3000);
      await expect(queue.enqueue('j-after', work('after'))).rejects.toThrow(/closed/);
    });

    it('depth counts waiting and active jobs', async () => {
      const { queue } = make();
      expect(await queue.depth()).toBe(0);
      const release = deferred();
      let started = 0;
      queue.work(
        async () => {
          started++;
          await release.promise;
        },
        { concurrency: 1 },
      );
      for (const id of ['d1', 'd2', 'd3']) await queue.enqueue(id, work(id));
      await waitFor(() => started === 1, 5000, 'the first job to start');
      expect(await queue.depth()).toBe(3);
      release.resolve();
      await waitFor(() => started === 3, 5000, 'all jobs to start');
      await waitFor(async () => (await queue.depth()) === 0, 5000, 'an empty queue');
    });
  });
}

contract('LocalRunQueue (embedded)', makeLocal);
contract('BullRunQueue (redis)', makeBull);

describe('BullRunQueue: scale-out', () => {
  const children: ChildProcess[] = [];
  afterAll(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    const redis = new Redis(REDIS_URL);
    try {
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `${FILE_PREFIX}*`, 'COUNT', 1000);
        cursor = next;
        if (keys.length) await redis.unlink(...keys);
      } while (cursor !== '0');
    } finally {
      redis.disconnect();
    }
  });

  it('two instances on the same prefix share the work, none of it twice', async () => {
    const prefix = `${FILE_PREFIX}t${++prefixes}:`;
    const a = makeBull({ prefix });
    const b = makeBull({ prefix });
    const byA: string[] = [];
    const byB: string[] = [];
    const handler = (into: string[]) => async (w: RunWork) => {
      into.push(w.runId);
      await sleep(80);
    };
    a.queue.work(handler(byA), { concurrency: 1 });
    b.queue.work(handler(byB), { concurrency: 1 });
    for (let i = 0; i < 10; i++) await a.queue.enqueue(`s${i}`, work(`s${i}`));
    await waitFor(() => byA.length + byB.length === 10, 8000, 'ten jobs');
    await sleep(200);
    expect(byA.length).toBeGreaterThan(0);
    expect(byB.length).toBeGreaterThan(0);
    const all = [...byA, ...byB];
    expect(all).toHaveLength(10);
    expect(new Set(all).size).toBe(10);
    expect(await a.queue.depth()).toBe(0);
  });

  it('a job whose worker was killed -9 mid-run is taken by another worker (stalled check)', async () => {
    const prefix = `${FILE_PREFIX}t${++prefixes}:`;
    const producer = makeBull({ prefix });
    await producer.queue.enqueue('start:stall', work('stall'));

    const child = spawn(process.execPath, ['bin/run-ts.js', WORKER, REDIS_URL, prefix], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let out = '';
    let err = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      err += chunk.toString();
    });
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    await waitFor(() => out.includes('took stall\n'), 10_000, `the child to take the job (stderr: ${err})`);

    // A second worker, checking for stalled jobs every 500 ms, while the child holds the job:
    // BullMQ renews the child's 1 s lock every 500 ms, so for 2.5 s nothing is handed on.
    const rescuer = makeBull({ prefix, lockMs: 1000, stalledMs: 500 });
    const seen: RunWork[] = [];
    rescuer.queue.work(
      async (w) => {
        seen.push(w);
      },
      { concurrency: 1 },
    );
    await sleep(2500);
    expect(seen).toEqual([]);
    expect(await producer.queue.depth()).toBe(1);

    // The child dies without a word: its lock lapses and the stalled check hands the job on.
    const t0 = Date.now();
    child.kill('SIGKILL');
    await exited;
    await waitFor(() => seen.length === 1, 6000, 'the stalled job to be handed on');
    expect(Date.now() - t0).toBeLessThan(6000);
    expect(seen).toEqual([work('stall')]);
    await waitFor(async () => (await producer.queue.depth()) === 0, 3000, 'an empty queue');
    expect(rescuer.errors).toEqual([]);
  });
});
