/**
 * What the money store costs a gateway process per call with budget leases, with no HTTP around
 * it: admit + settle through the leased store (the journal on a temp folder, settlements shipped
 * as serve ships them), `--concurrency` calls at a time, timed by this process's CPU
 * (process.cpuUsage: user + system, the store's driver and SQLite's pages included; on Redis,
 * Redis's own CPU is not in it — see bench/redis-slot.ts). Rounds alternate the backends and the
 * median round is printed, so a change to the store's per-call work shows in µs that the machine's
 * noise barely touches.
 *
 *   node bin/run-ts.js bench/lease-cpu.ts [--calls 20000] [--rounds 5] [--concurrency 50] [--embedded-only | --redis-only]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openEmbeddedStore } from '../runtime/backends/embedded/money/store.ts';
import { openRedisStore } from '../runtime/backends/redis/money/store.ts';
import type { Identity } from '../runtime/identity.ts';
import { createLogger } from '../runtime/log.ts';
import { type LeasedMoneyStore, openLeases } from '../runtime/store/leases.ts';
import type { LedgerInput, MoneyStore } from '../runtime/store/port.ts';
import { everyKind } from './lib/budgets.ts';

const argv = process.argv.slice(2);
const opt = (name: string, dflt: number) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? Number(argv[i + 1]) : dflt;
};
const CALLS = opt('calls', 20_000);
const ROUNDS = opt('rounds', 5);
const CONCURRENCY = opt('concurrency', 50);
const url = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
const defaults = everyKind(1e15);
const options = { defaults, timeZone: 'UTC', reservationTtlMs: 600_000 };
const log = createLogger({ level: 'error' });
const identity: Identity = { team: 'payments', env: 'prod', seat: 'alice' };

/** One call as the gateway makes it: admit its worst case, settle its priced usage. */
async function call(store: LeasedMoneyStore, i: number): Promise<void> {
  const a = await store.admit({ identity, amount: 2_000, requestId: `req_${i}`, name: 'claude-haiku-4-5' });
  if (!a.ok) throw new Error(`refused: ${a.refusal.code}`);
  const entry: LedgerInput = {
    requestId: `req_${i}`,
    identity,
    kind: 'model',
    name: 'claude-haiku-4-5',
    provider: 'anthropic',
    tokens: { input: 12, cacheWrite5m: 0, cacheWrite1h: 0, cacheRead: 0, output: 20 },
    reserved: 2_000,
    cost: 112,
    outcome: 'ok',
    latencyMs: 3,
  };
  await store.settle(a.reservation.id, entry);
}

/** CPU µs per call over `CALLS` calls, CONCURRENCY at a time, after a warm-up. */
async function round(open: () => Promise<MoneyStore>, cleanup: () => Promise<void>): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'cp-lease-cpu-'));
  const base = await open();
  const store = await openLeases(base, {}, { now: Date.now, log, journalDir: dir });
  try {
    let next = 0;
    const drive = async (n: number) => {
      const end = next + n;
      const worker = async () => {
        while (next < end) await call(store, next++);
      };
      await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    };
    await drive(2_000);
    const c0 = process.cpuUsage();
    await drive(CALLS);
    await store.ship();
    const c = process.cpuUsage(c0);
    return (c.user + c.system) / CALLS;
  } finally {
    await store.close();
    await cleanup();
    rmSync(dir, { recursive: true, force: true });
  }
}

const backends: Array<{ name: string; run: () => Promise<number> }> = [];
if (!argv.includes('--redis-only'))
  backends.push({
    name: 'embedded',
    run: () => {
      const dir = mkdtempSync(join(tmpdir(), 'cp-lease-cpu-db-'));
      return round(
        async () => openEmbeddedStore(join(dir, 'money.db'), options),
        async () => rmSync(dir, { recursive: true, force: true }),
      );
    },
  });
if (!argv.includes('--embedded-only')) {
  backends.push({
    name: 'redis',
    run: () => {
      const prefix = `{leasecpu${process.pid}-${Date.now()}}`;
      let store: MoneyStore | undefined;
      return round(
        async () => {
          store = await openRedisStore(url, { ...options, prefix });
          return store;
        },
        async () => {
          const { Redis } = await import('ioredis');
          const r = new Redis(url);
          const keys = await r.keys(`${prefix}*`);
          for (let i = 0; i < keys.length; i += 500) await r.del(...keys.slice(i, i + 500));
          r.disconnect();
        },
      );
    },
  });
}

const results = new Map<string, number[]>(backends.map((b) => [b.name, []]));
for (let r = 0; r < ROUNDS; r++) {
  for (const b of backends) results.get(b.name)!.push(await b.run());
}
for (const [name, us] of results) {
  const sorted = [...us].sort((a, b) => a - b);
  process.stdout.write(
    `${name}: ${sorted[Math.floor(sorted.length / 2)]!.toFixed(1)} µs CPU a call (median of ${ROUNDS} rounds of ${CALLS}; rounds ${us.map((u) => u.toFixed(1)).join(' ')})\n`,
  );
}
process.exit(0);
