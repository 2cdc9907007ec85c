import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { openEmbeddedStore } from '../../../runtime/backends/embedded/money/store.ts';
import { SqliteRunStore } from '../../../runtime/backends/embedded/runs.ts';
import { RedisRunStore } from '../../../runtime/backends/redis/runs.ts';
import { MemoryRunStore, type RunStore } from '../../../runtime/store/runs.ts';
import { storeOptions, TestClock } from '../store/contract.ts';
import { REDIS_URL, testPrefixes } from '../store/redis-harness.ts';
import { runRecord, runStoreContract } from './run-store.contract.ts';

const dir = mkdtempSync(join(tmpdir(), 'cp-run-store-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
const dbFile = () => join(dir, `runs-${files++}.db`);

const prefixes = testPrefixes('run-store');
afterAll(() => prefixes.cleanup());

/** A clock the test moves by hand. */
function fakeClock() {
  let t = 1_700_000_000_000;
  return {
    now: () => t,
    lapse: async (ms: number) => {
      t += Math.ceil(ms);
    },
  };
}

runStoreContract('memory', async () => {
  const clock = fakeClock();
  const store = new MemoryRunStore(clock.now);
  return {
    store,
    leaseMs: 30_000,
    lapse: clock.lapse,
    // One process, one map: the "other" store is the same one.
    peer: async () => store,
    close: () => store.close(),
  };
});

runStoreContract('sqlite', async () => {
  const clock = fakeClock();
  const path = dbFile();
  const store = new SqliteRunStore(path, { now: clock.now });
  const peers: RunStore[] = [];
  return {
    store,
    leaseMs: 30_000,
    lapse: clock.lapse,
    peer: async () => {
      const peer = new SqliteRunStore(path, { now: clock.now });
      peers.push(peer);
      return peer;
    },
    close: async () => {
      for (const s of [store, ...peers]) await s.close();
      for (const suffix of ['', '-wal', '-shm']) rmSync(path + suffix, { force: true });
    },
  };
});

runStoreContract('redis', async () => {
  const prefix = prefixes.next();
  const connections = [new Redis(REDIS_URL)];
  const store = new RedisRunStore(connections[0]!, prefix);
  return {
    store,
    leaseMs: 250,
    lapse: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
    peer: async () => {
      const redis = new Redis(REDIS_URL);
      connections.push(redis);
      return new RedisRunStore(redis, prefix);
    },
    close: async () => {
      await store.close();
      for (const redis of connections) redis.disconnect();
    },
  };
});

describe('run store specifics', () => {
  it('sqlite: lists the first page of 10,000 suspended runs, then the next', async () => {
    const store = new SqliteRunStore(dbFile());
    try {
      const t0 = 1_700_000_000_000;
      for (let i = 0; i < 10_000; i++) {
        await store.save(runRecord(`r_${i}`, { state: 'suspended', startedAt: t0 + i * 10 }));
        if (i % 5 === 0) await store.save(runRecord(`d_${i}`, { state: 'done', startedAt: t0 + i * 10 + 5 }));
      }
      const page = await store.list({ state: 'suspended', limit: 50 });
      expect(page.runs.map((r) => r.id)).toEqual(Array.from({ length: 50 }, (_, i) => `r_${9_999 - i}`));
      expect(page.next).toBeDefined();
      const second = await store.list({ state: 'suspended', limit: 50, cursor: page.next });
      expect(second.runs.map((r) => r.id)).toEqual(Array.from({ length: 50 }, (_, i) => `r_${9_949 - i}`));
      expect((await store.counts()).suspended).toBe(10_000);
    } finally {
      await store.close();
    }
  });

  it('sqlite: shares its file with the money store, on its own connection', async () => {
    const path = dbFile();
    const money = openEmbeddedStore(path, storeOptions(new TestClock()));
    const runs = new SqliteRunStore(path);
    try {
      await money.ensureBudget('team:payments', { ceiling: 7, window: 'total' });
      await runs.save(runRecord('r_1'));
      expect(await runs.get('r_1')).toEqual(runRecord('r_1'));
      expect(await money.getBudget('team:payments')).toMatchObject({ ceiling: 7 });
      const reopened = new SqliteRunStore(path);
      expect((await reopened.list()).runs.map((r) => r.id)).toEqual(['r_1']);
      await reopened.close();
    } finally {
      await runs.close();
      await money.close();
    }
  });

  it('sqlite: lists a state through its index, newest first, without sorting', async () => {
    const store = new SqliteRunStore(dbFile());
    try {
      const db = (store as unknown as { db: import('better-sqlite3').Database }).db;
      const plan = (sql: string) =>
        db
          .prepare(`EXPLAIN QUERY PLAN ${sql}`)
          .all()
          .map((r) => (r as { detail: string }).detail)
          .join('\n');
      const byState = plan(
        "SELECT record FROM runs WHERE state = 'suspended' AND (started_at, id) < (1, 'x') ORDER BY started_at DESC, id DESC LIMIT 51",
      );
      expect(byState).toMatch(/USING INDEX runs_state_started/);
      expect(byState).not.toMatch(/TEMP B-TREE/);
      const all = plan('SELECT record FROM runs ORDER BY started_at DESC, id DESC LIMIT 51');
      expect(all).toMatch(/USING INDEX runs_started/);
      expect(all).not.toMatch(/TEMP B-TREE/);
    } finally {
      await store.close();
    }
  });

  it('sqlite: gives each run to exactly one of two processes racing to claim it', async () => {
    const path = dbFile();
    await new SqliteRunStore(path).close(); // schema in place before the race
    const store = new URL('../../../runtime/backends/embedded/runs.ts', import.meta.url).href;
    // Each process waits for the same instant, then claims r_0 … r_1999 in order.
    const racer = `
      const { SqliteRunStore } = await import(${JSON.stringify(store)});
      const [path, owner, start] = process.argv.slice(1);
      const runs = new SqliteRunStore(path);
      while (Date.now() < Number(start)) {}
      const won = [];
      for (let i = 0; i < 2000; i++) if (await runs.claim('r_' + i, owner, 60000)) won.push(i);
      await runs.close();
      console.log(JSON.stringify(won));`;
    const start = String(Date.now() + 1_500);
    const race = (owner: string) =>
      promisify(execFile)(
        process.execPath,
        ['--import', 'tsx', '--input-type=module', '-e', racer, path, owner, start],
        { cwd: process.cwd() },
      ).then(({ stdout }) => JSON.parse(stdout) as number[]);
    const [a, b] = await Promise.all([race('a'), race('b')]);
    expect([...a, ...b].sort((x, y) => x - y)).toEqual(Array.from({ length: 2_000 }, (_, i) => i));
  });

  for (const backend of ['sqlite', 'redis'] as const) {
    it(`${backend}: keeps a cursor valid after the run it points at leaves the listed state`, async () => {
      const redis = backend === 'redis' ? new Redis(REDIS_URL) : undefined;
      const store: RunStore = redis
        ? new RedisRunStore(redis, prefixes.next())
        : new SqliteRunStore(dbFile());
      try {
        for (let i = 0; i < 10; i++) {
          await store.save(runRecord(`r_${i}`, { state: 'suspended', startedAt: 1_000 + Math.floor(i / 2) }));
        }
        const first = await store.list({ state: 'suspended', limit: 3 });
        expect(first.runs.map((r) => r.id)).toEqual(['r_9', 'r_8', 'r_7']);
        await store.save(runRecord('r_7', { state: 'running', startedAt: 1_003 }));
        await store.save(runRecord('r_9', { state: 'running', startedAt: 1_004 }));
        const rest = await store.list({ state: 'suspended', limit: 100, cursor: first.next });
        expect(rest.runs.map((r) => r.id)).toEqual(['r_6', 'r_5', 'r_4', 'r_3', 'r_2', 'r_1', 'r_0']);
      } finally {
        await store.close();
        redis?.disconnect();
      }
    });
  }

  it('redis: leaves the connection it was given open on close', async () => {
    const redis = new Redis(REDIS_URL);
    try {
      const store = new RedisRunStore(redis, prefixes.next());
      await store.save(runRecord('r_1'));
      await store.close();
      expect(await redis.ping()).toBe('PONG');
    } finally {
      redis.disconnect();
    }
  });

  it('redis: keeps every key under its hash-tagged prefix', async () => {
    const redis = new Redis(REDIS_URL);
    const prefix = prefixes.next();
    try {
      const store = new RedisRunStore(redis, prefix);
      await store.save(runRecord('r_1', { state: 'suspended' }));
      await store.appendJournal('r_1', { key: 'k', kind: 'tool', name: 't', result: 1, at: 0 });
      await store.claim('r_1', 'a', 60_000);
      await store.recordPrefix('triage', '1', 'h');
      const keys = await redis.keys(`${prefix}*`);
      expect(keys.sort()).toEqual(
        [
          ':run:r_1',
          ':run:r_1:journal',
          ':run:r_1:journal:keys',
          ':run:r_1:lease',
          ':runs:all',
          ':runs:state:suspended',
          ':workflow-prefixes',
        ].map((k) => prefix + k),
      );
    } finally {
      redis.disconnect();
    }
  });

  it('redis: lists a sparse filter across many pages without a round trip per run', async () => {
    const redis = new Redis(REDIS_URL);
    try {
      const store = new RedisRunStore(redis, prefixes.next());
      const saves: Promise<void>[] = [];
      for (let i = 0; i < 3_000; i++) {
        const run = runRecord(`r_${i}`, { startedAt: 1_000 + i });
        if (i % 1_000 === 0) run.identity = { ...run.identity, team: 'rare' };
        saves.push(store.save(run));
      }
      await Promise.all(saves);
      await store.list({ limit: 1 }); // loads the script, should this server not have it yet
      const sent: string[] = [];
      const send = redis.sendCommand.bind(redis);
      redis.sendCommand = (command, ...rest) => {
        sent.push((command as { name: string }).name);
        return send(command, ...rest);
      };
      const page = await store.list({ team: 'rare', limit: 2 });
      expect(page.runs.map((r) => r.id)).toEqual(['r_2000', 'r_1000']);
      expect(page.next).toBeDefined();
      // Pages of 100, 200, 400, 800, 1,000, 1,000: one script call and one MGET each.
      expect(sent).toEqual(Array.from({ length: 6 }, () => ['evalsha', 'mget']).flat());
      const rest = await store.list({ team: 'rare', limit: 2, cursor: page.next });
      expect(rest).toEqual({ runs: [expect.objectContaining({ id: 'r_0' })] });
    } finally {
      redis.disconnect();
    }
  });
});
