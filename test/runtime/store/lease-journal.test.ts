import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { openEmbeddedStore } from '../../../runtime/backends/embedded/money/store.ts';
import { openRedisStore } from '../../../runtime/backends/redis/money/store.ts';
import type { Identity } from '../../../runtime/identity.ts';
import { createLogger } from '../../../runtime/log.ts';
import {
  FileJournal,
  type JournalRecord,
  lineOf,
  recoverJournals,
} from '../../../runtime/store/lease-journal.ts';
import { LEDGER_JSON } from '../../../runtime/store/lease-ops.ts';
import { type LeasedMoneyStore, openLeases } from '../../../runtime/store/leases.ts';
import {
  EnforcementUnavailableError,
  type LeaseOp,
  type LedgerInput,
  type MoneyStore,
  type MoneyStoreOptions,
} from '../../../runtime/store/port.ts';
import { DEFAULTS } from './contract.ts';
import { REDIS_URL, testPrefixes } from './redis-harness.ts';

/**
 * The lease journal (runtime/store/lease-journal.ts), both backends: settled calls reach the store
 * in a few batches, not one step per call; a batch whose reply was lost is sent again and charged
 * once; and a process killed with calls in flight on its slice (a real child process, SIGKILL)
 * leaves a journal from which the next process charges each call once — the settled at their cost,
 * those in flight at their worst case, one `expired` entry each — and returns the slice.
 */
const log = createLogger({ level: 'silent' });
const prefixes = testPrefixes('journal');
const dirs: string[] = [];
afterAll(async () => {
  await prefixes.cleanup();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
const options: MoneyStoreOptions = { defaults: DEFAULTS, timeZone: 'UTC', reservationTtlMs: 60_000 };
const alice: Identity = { team: 'payments', env: 'prod', seat: 'alice' };

function entry(requestId: string, cost: number, identity: Identity = alice): LedgerInput {
  return {
    requestId,
    identity,
    kind: 'model',
    name: 'claude-haiku-4-5',
    tokens: { input: 10, cacheWrite5m: 0, cacheWrite1h: 0, cacheRead: 0, output: 5 },
    reserved: 0,
    cost,
    outcome: 'ok',
    latencyMs: 1,
  };
}

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'cp-journal-'));
  dirs.push(d);
  return d;
}

const backends = [
  {
    name: 'embedded',
    open: (file: string) => openEmbeddedStore(file, options),
    /** The crash fixture's arguments for the same data. */
    args: (file: string) => ['embedded', file],
  },
  {
    name: 'redis',
    open: (prefix: string) => openRedisStore(REDIS_URL, { ...options, prefix }),
    args: (prefix: string) => ['redis', REDIS_URL, prefix],
  },
] as const;

describe.each(backends)('the lease journal on $name', (backend) => {
  const opened: { leases?: LeasedMoneyStore; store: MoneyStore }[] = [];
  afterEach(async () => {
    for (const o of opened.splice(0)) {
      await o.leases?.stop();
      await o.store.close();
    }
  });
  const where = () => (backend.name === 'redis' ? prefixes.next() : join(tempDir(), 'money.db'));

  it('200 calls from a slice reach the store in a handful of batches, each charged once', async () => {
    const store = await backend.open(where());
    const leases = await openLeases(
      store,
      { idleMs: 60_000, validityMs: 60_000, shipMs: 50 },
      { now: Date.now, log, journalDir: tempDir() },
    );
    opened.push({ leases, store });
    const calls = Array.from({ length: 200 }, async (_, i) => {
      const a = await leases.admit({ identity: alice, amount: 2_000, requestId: `r${i}` });
      if (!a.ok) throw new Error('refused');
      return leases.settle(a.reservation.id, entry(`r${i}`, 1_000));
    });
    await Promise.all(calls);
    // A read here ships what is queued first: this process's own settlements are always seen.
    expect(await leases.getBudget('seat:alice')).toMatchObject({ spent: 200_000 });
    expect((await leases.listLedger({ limit: 1_000 })).filter((e) => e.outcome === 'ok')).toHaveLength(200);
    // Store calls: the first call (per call), a grant per 64 calls (callsPerLease), the kill
    // switches' read and the batches — not one per call.
    const { storeCalls, batches } = leases.stats;
    expect(batches).toBeLessThanOrEqual(4);
    expect(storeCalls / 200).toBeLessThanOrEqual(0.1);
  });

  it('a settled call is one entry: the journal line, the ledger and what settle returned agree', async () => {
    const store = await backend.open(where());
    const dir = tempDir();
    const leases = await openLeases(
      store,
      { idleMs: 60_000, validityMs: 60_000, shipMs: 60_000 },
      { now: Date.now, log, journalDir: dir },
    );
    opened.push({ leases, store });
    // Strings JSON must escape, a field the store does not know, a cost past the reservation.
    const awkward = { ...entry('r"q\\\n\u2028é', 3_000), code: 'x\u0000y', extra: { nested: [1, 'two'] } };
    // The identity's first call is admitted on its own, the next ones from its slice.
    const settled = [];
    for (let i = 0; i < 3; i++) {
      const a = await leases.admit({ identity: alice, amount: 2_000, requestId: `r${i}` });
      if (!a.ok) throw new Error('refused');
      settled.push(
        await leases.settle(a.reservation.id, { ...awkward, requestId: `${awkward.requestId}${i}` }),
      );
    }
    for (const e of settled) {
      expect(e).toMatchObject({
        code: 'x\u0000y',
        extra: { nested: [1, 'two'] },
        reserved: 2_000,
        cost: 3_000,
        overrun: 1_000,
      });
      expect(e.reservationId).toMatch(/^res_/);
    }
    const lines = readdirSync(dir)
      .flatMap((f) => readFileSync(join(dir, f), 'utf8').split('\n'))
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { t: string; e?: unknown });
    expect(lines.filter((r) => r.t === 's').map((r) => r.e)).toEqual(settled);
    await leases.ship();
    const ledger = (await leases.listLedger({ limit: 10 })).filter((e) => e.outcome === 'ok');
    const byRequest = (a: { requestId?: string }, b: { requestId?: string }) =>
      String(a.requestId).localeCompare(String(b.requestId));
    expect(ledger.sort(byRequest)).toEqual([...settled].sort(byRequest));
  });

  it("a step's ready-made JSON is written only for the entry it was made from", async () => {
    const store = await backend.open(where());
    opened.push({ store });
    const a = await store.admit({ identity: alice, amount: 2_000, lease: { upTo: 100_000, share: 1 } });
    if (!a.ok) throw new Error('refused');
    // A step whose entry is not a prepared one (a caller's, a replayed journal's) is checked and
    // copied: a JSON beside it does not stand for the copy and is not written.
    const step: LeaseOp & { [LEDGER_JSON]?: string } = {
      reservationId: a.reservation.id,
      call: '1',
      // Finished for this reservation already, as a journal's settled entry is.
      entry: { ...entry('r1', 700), reservationId: a.reservation.id, overrun: 700 } as LedgerInput,
      [LEDGER_JSON]: '{"bogus":true}',
    };
    const [r] = await store.leaseOps([step]);
    const [written] = (await store.listLedger({ limit: 10 })).filter((e) => e.outcome === 'ok');
    expect(written).toMatchObject({ requestId: 'r1', cost: 700, reservationId: a.reservation.id });
    expect(written).not.toHaveProperty('bogus');
    expect(written).toEqual(r!.entry);
  });

  it('a batch whose reply was lost is sent again and charged once', async () => {
    const store = await backend.open(where());
    let lose = 1;
    // The store applies the batch, then its reply is lost (a client timeout): the batch is retried.
    const lossy = new Proxy(store, {
      get(target, prop, receiver) {
        if (prop !== 'leaseOps') return Reflect.get(target, prop, receiver);
        return async (ops: Parameters<MoneyStore['leaseOps']>[0]) => {
          const results = await target.leaseOps(ops);
          if (lose-- > 0) throw new EnforcementUnavailableError('the reply was lost');
          return results;
        };
      },
    });
    const leases = await openLeases(
      lossy,
      { idleMs: 60_000, validityMs: 60_000, shipMs: 3_600_000 },
      { now: Date.now, log, journalDir: tempDir() },
    );
    opened.push({ leases, store });
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) {
      const a = await leases.admit({ identity: alice, amount: 2_000, requestId: `r${i}` });
      if (!a.ok) throw new Error('refused');
      ids.push(a.reservation.id);
    }
    for (const [i, id] of ids.entries()) await leases.settle(id, entry(`r${i}`, 500));
    await leases.ship(); // applied, reply lost: queued again
    expect(lose).toBe(0);
    await leases.ship(); // sent again: every call repeated, none charged twice
    expect(lose).toBe(-1);
    expect(await store.getBudget('seat:alice')).toMatchObject({ spent: 2_000 });
    const ok = (await store.listLedger({ limit: 100 })).filter((e) => e.outcome === 'ok');
    expect(ok.map((e) => e.requestId).sort()).toEqual(['r0', 'r1', 'r2', 'r3']);
  });

  it('a process killed with calls in flight: the next one charges each call once and returns the slice', async () => {
    const data = where();
    const journalDir = tempDir();
    const child = spawnSync(
      process.execPath,
      ['bin/run-ts.js', 'test/fixtures/lease-crash.ts', ...backend.args(data), journalDir],
      { encoding: 'utf8', timeout: 60_000 },
    );
    expect(child.signal, child.stderr).toBe('SIGKILL');
    const { ids, lease } = JSON.parse(child.stdout.trim()) as { ids: string[]; lease: string };
    expect(readdirSync(journalDir)).toHaveLength(1);

    const store = await backend.open(data);
    opened.push({ store });
    const seat = 'seat:dies';
    // Before: call 1 charged (it was shipped), the slice still holds the rest.
    expect(await store.getBudget(seat)).toMatchObject({ spent: 4_000 });
    expect((await store.getBudget(seat))!.reserved).toBeGreaterThan(0);

    expect(await recoverJournals(store, journalDir, { now: Date.now, log })).toBe(4);
    // c1 4,000 (once), c2 6,000 (settled, never shipped), c3–c5 their worst case 10,000 each.
    expect(await store.getBudget(seat)).toMatchObject({ spent: 40_000, reserved: 0 });
    const ledger = (await store.listLedger({ limit: 100 })).filter((e) => e.requestId !== 'warm');
    const by = Object.fromEntries(ledger.map((e) => [e.requestId, e]));
    expect(ledger).toHaveLength(5);
    expect(by.c1).toMatchObject({ outcome: 'ok', cost: 4_000 });
    expect(by.c2).toMatchObject({ outcome: 'ok', cost: 6_000 });
    for (const c of ['c3', 'c4', 'c5']) {
      expect(by[c]).toMatchObject({
        outcome: 'expired',
        cost: 10_000,
        reserved: 10_000,
        name: 'claude-haiku-4-5',
      });
    }
    expect(ids).toHaveLength(5);
    expect(ledger.every((e) => e.reservationId === lease)).toBe(true);
    // The journal is gone; recovering again finds nothing and charges nothing.
    expect(readdirSync(journalDir)).toHaveLength(0);
    expect(await recoverJournals(store, journalDir, { now: Date.now, log })).toBe(0);
    expect(await store.getBudget(seat)).toMatchObject({ spent: 40_000, reserved: 0 });
  });
});

describe('a lease journal that cannot be written', () => {
  it('refuses every record of the write that failed, closed, and takes the next write again', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cp-journal-'));
    dirs.push(dir);
    const journal = new FileJournal(dir, 'rep_test');
    await journal.append({ t: 'a', l: 'res_1', c: '1', r: 1_000, at: 1, i: alice });
    // Its file descriptor stops being one (EBADF on write): the records of that write are refused.
    const fd = (journal as unknown as { fd: number }).fd;
    (journal as unknown as { fd: number }).fd = 2 ** 30;
    const writes = [
      journal.append({ t: 'a', l: 'res_1', c: '2', r: 1_000, at: 2, i: alice }),
      journal.append({ t: 'a', l: 'res_1', c: '3', r: 1_000, at: 3, i: alice }),
    ];
    for (const w of await Promise.allSettled(writes)) {
      expect(w.status).toBe('rejected');
      expect((w as PromiseRejectedResult).reason).toBeInstanceOf(EnforcementUnavailableError);
      expect((w as PromiseRejectedResult).reason.message).toMatch(/cannot write the lease journal/);
    }
    // A file descriptor again: the next write is taken.
    (journal as unknown as { fd: number }).fd = fd;
    await expect(
      journal.append({ t: 'a', l: 'res_1', c: '4', r: 1_000, at: 4, i: alice }),
    ).resolves.toBeUndefined();
    const file = readdirSync(dir).find((f) => f.endsWith('.journal'))!;
    const written = readFileSync(join(dir, file), 'utf8');
    expect(written).toContain('"c":"1"');
    expect(written).toContain('"c":"4"');
    expect(written).not.toContain('"c":"2"');
    journal.close(true);
  });

  it('a call the journal refused is not admitted, and the next call of its slice takes its number', async () => {
    const store = openEmbeddedStore(join(tempDir(), 'money.db'), options);
    const leases = await openLeases(
      store,
      { idleMs: 60_000, validityMs: 60_000, shipMs: 50 },
      { now: Date.now, log, journalDir: tempDir() },
    );
    try {
      const admitted = async (requestId: string) => {
        const a = await leases.admit({ identity: alice, amount: 2_000, requestId });
        if (!a.ok) throw new Error('refused');
        return a.reservation.id;
      };
      await admitted('first'); // per call: the identity was not seen before
      const second = await admitted('second'); // from a slice: call 1
      expect(second).toMatch(/:1$/);
      const journal = (leases as unknown as { journal: { fd: number } }).journal;
      const fd = journal.fd;
      journal.fd = 2 ** 30;
      await expect(leases.admit({ identity: alice, amount: 2_000, requestId: 'refused' })).rejects.toThrow(
        /cannot write the lease journal/,
      );
      journal.fd = fd;
      // Number 2 was never admitted: no hole is left in the calls the store keeps for the slice.
      expect(await admitted('third')).toBe(second.replace(/:1$/, ':2'));
    } finally {
      await leases.stop();
      await store.close();
    }
  });
});

describe('journal lines', () => {
  it('writes an admission as JSON.stringify would, its identity serialised once per frozen identity', () => {
    const frozen = Object.freeze({
      team: 't"1',
      env: 'prod',
      seat: 'al\\ice',
      session: 's-1',
      keyId: 'key_1',
    });
    const cases: JournalRecord[] = [
      { t: 'a', l: 'res_1', c: '7', r: 390, at: 1_796_379_812_198, i: frozen },
      {
        t: 'a',
        l: 'res_1',
        c: '8',
        r: 0,
        at: 1,
        i: frozen,
        q: 'req_"x"',
        k: 'model',
        n: 'claude-opus-5-5\n',
        p: 'anthropic',
      },
      {
        t: 'a',
        l: 'res_2',
        c: '0',
        r: 12,
        at: 2,
        i: { team: 'a', env: 'b', seat: 'c', provider: 'bedrock' },
        k: 'tool',
      },
      { t: 'a', l: 'res_3', c: '1', r: 5, at: 3, i: alice, n: '\u2028é' },
      { t: 'a', l: 'res_4', c: '2', r: 5.5, at: Number.NaN, i: alice, n: '\u007f~ ', p: '\u0000' },
    ];
    for (const rec of cases) {
      expect(lineOf(rec)).toBe(`${JSON.stringify(rec)}\n`);
      if (rec.t === 'a' && Number.isFinite(rec.at)) expect(JSON.parse(lineOf(rec))).toEqual(rec);
    }
    // The same identity again: its cached JSON, still exact.
    expect(lineOf(cases[0]!)).toBe(`${JSON.stringify(cases[0])}\n`);
  });
});
