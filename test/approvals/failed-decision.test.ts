import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisKeys } from '../../runtime/backends/redis/money/keys.ts';
import {
  type Backend,
  type Harness,
  OPERATOR_TOKEN,
  OPERATORS,
  REDIS_URL,
  startHarness,
} from '../helpers/harness.ts';

/**
 * A failed decision in one step: a decision that cannot be applied is undone — the item pending
 * again and one `approval.failed` audit entry — in ONE atomic step of the backend (embedded: one
 * SQLite transaction over the approvals and audit tables of the one file; Redis: one script over
 * the item and the audit keys, which share the prefix's hash tag). A fault injected between the
 * two writes (the audit append fails after the item was reopened) leaves neither: the item stays
 * decided and unaudited until the undo, retried, lands whole.
 */
const WORKFLOWS = new URL('../fixtures/approval-workflows', import.meta.url).pathname;
const TASK = 'Pay it [[emulator:tool_use pay={"order":"A1","amount_usd":5}]]';

interface Item {
  id: string;
  state: string;
  decision: unknown;
}
interface Audit {
  target: string;
  action: string;
  actor: string;
  reason: string;
  after?: Record<string, unknown>;
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Makes the audit append fail inside the undo's step, and takes the fault away again. */
interface Fault {
  on(runId: string): Promise<void>;
  off(): Promise<void>;
  close(): Promise<void>;
}

function embeddedFault(h: Harness): Fault {
  const db = new Database(join(h.config.dataDir, 'chokepoint.db'));
  db.pragma('busy_timeout = 5000');
  db.exec(`CREATE TABLE IF NOT EXISTS test_fault (target TEXT);
    CREATE TRIGGER IF NOT EXISTS test_audit_fault BEFORE INSERT ON audit
    WHEN EXISTS (SELECT 1 FROM test_fault WHERE target = NEW.target)
    BEGIN SELECT RAISE(ABORT, 'injected fault: the audit append failed'); END;`);
  return {
    on: async (runId) => void db.prepare('INSERT INTO test_fault (target) VALUES (?)').run(`run:${runId}`),
    off: async () => void db.prepare('DELETE FROM test_fault').run(),
    close: async () => void db.close(),
  };
}

function redisFault(prefix: string): Fault {
  const redis = new Redis(REDIS_URL);
  const keys = new RedisKeys(prefix);
  let key = '';
  return {
    // The target's audit index holding a string: appending to it fails (WRONGTYPE).
    on: async (runId) => {
      key = keys.auditIndex(`run:${runId}`);
      await redis.set(key, 'not an index');
    },
    off: async () => void (await redis.del(key)),
    close: async () => redis.disconnect(),
  };
}

describe.each(['embedded', 'redis'] as Backend[])('a failed decision in one step (%s)', (backend) => {
  let h: Harness;
  let fault: Fault;
  const prefix = `{cpt-faileddecision-${process.pid}-${Date.now() % 100000}}`;

  beforeAll(async () => {
    h = await startHarness({ backend, prefix, workflows: WORKFLOWS, config: OPERATORS });
    fault = backend === 'embedded' ? embeddedFault(h) : redisFault(prefix);
  });
  afterAll(async () => {
    await fault?.close();
    await h?.close();
  });

  const item = async (id: string) =>
    (await h.api<{ approval: Item }>('GET', `/api/approvals/${encodeURIComponent(id)}`)).body.approval;
  // The whole log, not the target's index: the injected fault on Redis is that index.
  const approvalAudit = async (runId: string) =>
    (await h.api<{ entries: Audit[] }>('GET', '/api/audit?limit=1000')).body.entries.filter(
      (e) => e.target === `run:${runId}` && e.action.startsWith('approval.'),
    );
  const approve = (id: string, reason: string) =>
    h.api('POST', `/api/approvals/${encodeURIComponent(id)}/approve`, { reason }, OPERATOR_TOKEN);

  async function suspended(): Promise<{ runId: string; itemId: string }> {
    const res = await h.api<{ run: { id: string; state: string } }>('POST', '/api/runs', {
      workflow: 'gated',
      input: { task: TASK },
      wait: 20,
    });
    expect(res.body.run.state).toBe('suspended');
    const itemId = `${res.body.run.id}.1`;
    await waitFor('the item', async () => ((await item(itemId))?.state === 'pending' ? true : undefined));
    return { runId: res.body.run.id, itemId };
  }

  /** The run cannot be resumed: the decision is claimed, then fails while being applied. */
  async function failingApply<T>(fn: () => Promise<T>): Promise<T> {
    const host = h.rt.runs!;
    const saved = host.resume;
    host.resume = async () => {
      throw new Error('the runs store went away');
    };
    try {
      return await fn();
    } finally {
      host.resume = saved;
    }
  }

  it('a decision that fails while applied leaves the item pending with exactly one approval.failed entry', async () => {
    const { runId, itemId } = await suspended();
    const res = await failingApply(() => approve(itemId, 'ship it'));
    expect(res.status).toBeGreaterThanOrEqual(500);
    expect(await item(itemId)).toMatchObject({ state: 'pending', decision: null });
    const audit = await approvalAudit(runId);
    expect(audit.map((e) => e.action)).toEqual(['approval.failed']);
    expect(audit[0]).toMatchObject({
      actor: 'oncall',
      after: { approval: itemId, state: 'pending', action: 'approve' },
    });
  });

  it('a fault between reopening and auditing leaves neither; the retried undo lands both at once', async () => {
    const { runId, itemId } = await suspended();
    await fault.on(runId);
    let released = false;
    try {
      const res = await failingApply(() => approve(itemId, 'ship it'));
      expect(res.status).toBeGreaterThanOrEqual(500);
      // The step failed whole: still decided (not pending) and nothing in the audit trail.
      expect((await item(itemId)).state).toBe('approved');
      expect(await approvalAudit(runId)).toEqual([]);
      await fault.off();
      released = true;
      // The undo is retried; whenever the item is seen pending, its one failed entry is there.
      await waitFor('the item pending again', async () =>
        (await item(itemId)).state === 'pending' ? true : undefined,
      );
      const audit = await approvalAudit(runId);
      expect(audit.map((e) => e.action)).toEqual(['approval.failed']);
      expect(audit[0]!.reason).toContain('the runs store went away');
    } finally {
      if (!released) await fault.off();
    }
    // Decidable again, and this time applied and audited.
    expect((await approve(itemId, 'again')).status).toBe(200);
    expect((await approvalAudit(runId)).map((e) => e.action)).toEqual([
      'approval.approve',
      'approval.failed',
    ]);
  });
});
