import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { SqliteApprovalStore } from '../../runtime/backends/embedded/approvals.ts';
import { SqliteRunStore } from '../../runtime/backends/embedded/runs.ts';
import { approvalJobId, BullApprovalStore } from '../../runtime/backends/redis/approvals.ts';
import { REDIS_URL, testPrefixes } from '../runtime/store/redis-harness.ts';
import { aid, approvalItem, approvalStoreContract } from './store.contract.ts';

const dir = mkdtempSync(join(tmpdir(), 'cp-approval-store-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
const dbFile = () => join(dir, `approvals-${files++}.db`);

const prefixes = testPrefixes('approvals');
afterAll(() => prefixes.cleanup());

approvalStoreContract('sqlite', async () => {
  const path = dbFile();
  const store = new SqliteApprovalStore(path);
  const other = new SqliteApprovalStore(path);
  return {
    store,
    other,
    distributed: false,
    cleanup: async () => {
      await store.close();
      await other.close();
      for (const suffix of ['', '-wal', '-shm']) rmSync(path + suffix, { force: true });
    },
  };
});

approvalStoreContract('redis', async () => {
  const prefix = prefixes.next();
  const errors: unknown[] = [];
  const open = () => new BullApprovalStore({ redisUrl: REDIS_URL, prefix, onError: (e) => errors.push(e) });
  const store = open();
  const other = open();
  return {
    store,
    other,
    distributed: true,
    cleanup: async () => {
      await Promise.all([store.close(), other.close()]);
      // Handler failures are reported (the "survives a handler that throws" case); nothing else.
      expect(errors.filter((e) => !/handler broke/.test(String(e)))).toEqual([]);
    },
  };
});

describe('approval store specifics', () => {
  it('sqlite: shares its file with the run store, each on its own connection', async () => {
    const path = dbFile();
    const runs = new SqliteRunStore(path);
    const approvals = new SqliteApprovalStore(path);
    try {
      await approvals.open(approvalItem(aid(1)));
      const again = new SqliteApprovalStore(path); // schema already there: CREATE … IF NOT EXISTS
      expect((await again.list()).items.map((i) => i.id)).toEqual([aid(1)]);
      await again.close();
      expect(await runs.counts()).toMatchObject({ running: 0 });
    } finally {
      await approvals.close();
      await runs.close();
    }
  });

  it('sqlite: lists a state newest first through its index, without sorting', async () => {
    const path = dbFile();
    await new SqliteApprovalStore(path).close();
    const db = new Database(path, { readonly: true });
    try {
      const plan = (sql: string) =>
        db
          .prepare(`EXPLAIN QUERY PLAN ${sql}`)
          .all()
          .map((r) => (r as { detail: string }).detail)
          .join('\n');
      const byState = plan(
        "SELECT body FROM approvals WHERE state = 'pending' AND (created_at, id) < (1, 'x') ORDER BY created_at DESC, id DESC LIMIT 51",
      );
      expect(byState).toMatch(/USING INDEX approvals_state_created/);
      expect(byState).not.toMatch(/TEMP B-TREE/);
      const all = plan('SELECT body FROM approvals ORDER BY created_at DESC, id DESC LIMIT 51');
      expect(all).toMatch(/USING INDEX approvals_created/);
      expect(all).not.toMatch(/TEMP B-TREE/);
    } finally {
      db.close();
    }
  });

  it('redis: keeps an item, its indexes and its delayed job under the prefix; a decision drops the job', async () => {
    const prefix = prefixes.next();
    const store = new BullApprovalStore({ redisUrl: REDIS_URL, prefix });
    const redis = new Redis(REDIS_URL);
    try {
      await store.open(approvalItem(aid(1)));
      const keys = await redis.keys(`${prefix}*`);
      expect(keys).toEqual(
        expect.arrayContaining([
          `${prefix}approval:${aid(1)}`,
          `${prefix}approvals:all`,
          `${prefix}approvals:state:pending`,
          `${prefix}bull:approvals:delayed`,
        ]),
      );
      expect(keys.every((k) => k.startsWith(prefix))).toBe(true);
      const job = `${prefix}bull:approvals:${approvalJobId(aid(1))}`;
      expect(await redis.exists(job)).toBe(1);
      await store.decide(aid(1), { action: 'approve', actor: 'alice', reason: 'ok', at: 1 });
      expect(await redis.exists(job)).toBe(0);
      expect(await redis.zcard(`${prefix}approvals:state:pending`)).toBe(0);
      expect(await redis.zcard(`${prefix}approvals:state:approved`)).toBe(1);
    } finally {
      await store.close();
      redis.disconnect();
    }
  });

  it('redis: gives each item a job id BullMQ accepts, one to one', () => {
    expect(approvalJobId('r_1.2')).toBe('r_1.2');
    const ids = ['a:b', 'a%3Ab', '12', '%i12', '-3', 'x%'];
    const jobIds = ids.map(approvalJobId);
    expect(new Set(jobIds).size).toBe(ids.length);
    for (const j of jobIds) {
      expect(j).not.toContain(':');
      expect(`${Number.parseInt(j, 10)}`).not.toBe(j);
    }
  });

  it('redis: lists the first page of 10,000 pending items newest first, then the next', async () => {
    const prefix = prefixes.next();
    const store = new BullApprovalStore({ redisUrl: REDIS_URL, prefix });
    try {
      const t0 = 1_700_000_000_000;
      for (let start = 0; start < 10_000; start += 1_000) {
        await Promise.all(
          Array.from({ length: 1_000 }, (_, k) =>
            store.open(approvalItem(`r_${start + k}.1`, { createdAt: t0 + (start + k) * 10 })),
          ),
        );
      }
      // Every 250th is decided, two of them within the first two pages.
      const decided = (i: number) => i % 250 === 0 || i === 9_990 || i === 9_920;
      for (let i = 0; i < 10_000; i++) {
        if (decided(i)) await store.decide(`r_${i}.1`, { action: 'deny', actor: 'a', reason: 'r', at: 1 });
      }
      const pending = Array.from({ length: 10_000 }, (_, k) => 9_999 - k)
        .filter((i) => !decided(i))
        .map((i) => `r_${i}.1`);
      const began = performance.now();
      const page = await store.list({ state: 'pending', limit: 50 });
      const second = await store.list({ state: 'pending', limit: 50, cursor: page.next });
      const ms = performance.now() - began;
      expect(page.items.map((i) => i.id)).toEqual(pending.slice(0, 50));
      expect(second.items.map((i) => i.id)).toEqual(pending.slice(50, 100));
      expect(ms).toBeLessThan(250);
      expect((await store.counts()).pending).toBe(pending.length);
    } finally {
      await store.close();
    }
  }, 20_000);
});
