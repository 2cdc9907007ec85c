import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmulator } from '../../adapters/emulator/index.ts';
import { type Served, serveProcess } from '../helpers/serve.ts';

/**
 * Never charge zero, under a power cut: a `chokepoint serve` process is killed with SIGKILL at a
 * random point of a burst of concurrent calls (streamed and not, each with its own provider
 * latency), then started again on the same data. The provider's own billing record (an emulator
 * in this process, which outlives the gateway) is the truth: every request it billed has exactly
 * one ledger entry, costing at least what it billed (calls that were in flight are charged their
 * reserved worst case once their reservation expires); the budgets hold at least the bill; no
 * ceiling is passed; and reconciliation with the provider's per-request bill then corrects every
 * expired worst case, once, so the budget holds exactly the bill. Several rounds per backend, each
 * killed at a different moment.
 */
const TOKEN = 'cpo_e2e-kill9-token-0123456789';
const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
const ROUNDS = 2;
const CALLS = 40;
const CEILING_MICROS = 300_000;

type Entry = {
  requestId: string;
  outcome: string;
  cost: number;
  identity: { keyId?: string };
  reservationId?: string;
};

// With budget leases on, most calls are admitted from a slice in memory: the dead process's lease
// journal (runtime/store/lease-journal.ts) is what gives each of them its ledger entry.
const CASES = [
  { backend: 'embedded', leases: 'off' },
  { backend: 'redis', leases: 'off' },
  { backend: 'embedded', leases: 'on' },
  { backend: 'redis', leases: 'on' },
] as const;

describe.each(CASES)('kill -9 in the middle of a burst ($backend, leases $leases)', ({ backend, leases }) => {
  const emulator = createEmulator({ apiKey: 'sk-emulator-local' });
  let upstream: { url: string; close(): Promise<void> };
  const dirs: string[] = [];
  const prefixes: string[] = [];
  let served: Served | undefined;

  beforeAll(async () => {
    upstream = await emulator.listen({ port: 0, host: '127.0.0.1' });
  });
  afterAll(async () => {
    await served?.stop();
    await upstream.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
    if (backend === 'redis' && prefixes.length) {
      const { Redis } = await import('ioredis');
      const redis = new Redis(REDIS_URL);
      for (const p of prefixes) {
        const keys = await redis.keys(`${p}*`);
        if (keys.length) await redis.del(...keys);
      }
      redis.disconnect();
    }
  });

  it.each(Array.from({ length: ROUNDS }, (_, i) => i + 1))(
    'round %i: every billed request has one ledger entry at least its bill, no ceiling passed; reconciliation then brings the budget to the bill, once',
    async (round) => {
      const dataDir = mkdtempSync(join(tmpdir(), 'cp-kill9-'));
      dirs.push(dataDir);
      const prefix = `{cpt-kill9-${process.pid}-${round}-${Date.now() % 100000}}`;
      prefixes.push(prefix);
      const store =
        backend === 'redis'
          ? `  backend: redis\n  redisUrl: ${JSON.stringify(REDIS_URL)}\n  prefix: ${JSON.stringify(prefix)}\n`
          : '';
      writeFileSync(join(dataDir, 'config.yaml'), `store:\n  reservationTtl: 2s\n${store}`);
      const env = {
        CHOKEPOINT_ADMIN_TOKEN: TOKEN,
        CHOKEPOINT_DATA_DIR: dataDir,
        CHOKEPOINT_LEASES: leases,
        CHOKEPOINT_CONFIG: join(dataDir, 'config.yaml'),
        ANTHROPIC_BASE_URL: upstream.url,
      };
      const api = async <T>(method: string, path: string, body?: unknown) => {
        const res = await fetch(`${served!.url}${path}`, {
          method,
          headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
          body: body === undefined ? undefined : JSON.stringify(body),
        });
        return { status: res.status, body: (await res.json()) as T };
      };

      emulator.billing.clear();
      served = await serveProcess(env);
      const seat = `s-${round}`;
      const created = await api<{ key: string; record: { id: string } }>('POST', '/api/keys', {
        team: `kill9-${round}`,
        env: 'prod',
        seat,
      });
      const { key } = created.body;
      await api('POST', `/api/budgets/seat:${seat}/ceiling`, { amount: '0.30', reason: 'test' });

      const url = served.url;
      const calls = Array.from({ length: CALLS }, (_, i) =>
        fetch(`${url}/v1/messages`, {
          method: 'POST',
          headers: { 'x-api-key': key, 'content-type': 'application/json' },
          body: JSON.stringify({
            model: 'claude-haiku-4-5',
            max_tokens: 500,
            stream: i % 2 === 0,
            messages: [
              {
                role: 'user',
                content: `call ${i} [[emulator:latency=${50 + ((i * 37) % 700)}]] [[emulator:output_tokens=${100 + ((i * 53) % 300)}]] [[emulator:delta_delay=${i % 2 === 0 ? 5 : 0}]]`,
              },
            ],
          }),
        })
          .then((r) => r.text())
          .catch(() => 'cut off'),
      );
      // The kill, at a different moment each round.
      await new Promise((r) => setTimeout(r, 150 + ((round * 211) % 500)));
      served.proc.kill('SIGKILL');
      await new Promise((r) => served!.proc.once('exit', r));
      await Promise.all(calls);

      served = await serveProcess(env);
      // The dead process's reservations expire (2 s) and are charged their worst case: every
      // admission sweeps what is due (so does a timer every 10 s). One more call of the seat sweeps.
      await new Promise((r) => setTimeout(r, 2_100));
      await fetch(`${served.url}/v1/messages`, {
        method: 'POST',
        headers: { 'x-api-key': key, 'content-type': 'application/json' },
        body: JSON.stringify({
          model: 'claude-haiku-4-5',
          max_tokens: 5,
          messages: [{ role: 'user', content: 'x' }],
        }),
      }).then((r) => r.text());
      let reserved = -1;
      for (let i = 0; i < 150 && reserved !== 0; i++) {
        const b = await api<{ budget: { reserved_micros: number } }>('GET', `/api/budgets/seat:${seat}`);
        reserved = b.body.budget.reserved_micros;
        if (reserved !== 0) await new Promise((r) => setTimeout(r, 100));
      }
      expect(reserved).toBe(0);

      const ledger = (await api<{ entries: Entry[] }>('GET', `/api/ledger?scope=seat:${seat}&limit=1000`))
        .body.entries;
      // The provider's record of this round (it was cleared at its start): every request it
      // billed, whether or not its answer reached anyone.
      const billed = emulator.billing.list();
      expect(billed.length).toBeGreaterThan(0);
      // Calls were in flight at the kill: their reservations expired and were charged.
      expect(ledger.filter((e) => e.outcome === 'expired').length).toBeGreaterThan(0);
      if (leases === 'on') {
        // Calls shared a slice: several entries name the same reservation (the lease).
        const perReservation = new Map<string, number>();
        for (const e of ledger)
          perReservation.set(e.reservationId!, (perReservation.get(e.reservationId!) ?? 0) + 1);
        expect(Math.max(...perReservation.values())).toBeGreaterThan(1);
      }
      for (const b of billed) {
        const mine = ledger.filter((e) => e.requestId === b.clientRequestId);
        expect(mine, `ledger entries of billed ${b.clientRequestId}`).toHaveLength(1);
        expect(mine[0]!.cost).toBeGreaterThanOrEqual(b.costMicros);
      }
      const budget = await api<{ budget: { spent_micros: number; ceiling_micros: number } }>(
        'GET',
        `/api/budgets/seat:${seat}`,
      );
      const bill = billed.reduce((n, b) => n + b.costMicros, 0);
      expect(budget.body.budget.spent_micros).toBeGreaterThanOrEqual(bill);
      expect(budget.body.budget.spent_micros).toBeLessThanOrEqual(CEILING_MICROS);
      expect(ledger.filter((e) => e.outcome !== 'refused').reduce((n, e) => n + e.cost, 0)).toBe(
        budget.body.budget.spent_micros,
      );

      // Reconciliation with the provider's per-request bill corrects each expired worst case:
      // the budget then holds exactly the bill, each request id has at most one correction, and a
      // second reconciliation changes nothing.
      const day = new Date().toISOString().slice(0, 10);
      type Recon = { corrections?: { corrected: number; already_corrected: number; left_uncovered: number } };
      const first = await api<Recon>('POST', '/api/reconciliations', { day });
      expect(first.status).toBe(201);
      expect(first.body.corrections).toMatchObject({ left_uncovered: 0 });
      const corrected = (await api<{ entries: Entry[] }>('GET', `/api/ledger?scope=seat:${seat}&limit=1000`))
        .body.entries;
      for (const b of billed) {
        const mine = corrected.filter((e) => e.requestId === b.clientRequestId);
        expect(mine.filter((e) => e.outcome === 'corrected').length).toBeLessThanOrEqual(1);
        expect(
          mine.reduce((n, e) => n + e.cost, 0),
          `${b.clientRequestId}`,
        ).toBe(b.costMicros);
      }
      const spent = async () =>
        (await api<{ budget: { spent_micros: number } }>('GET', `/api/budgets/seat:${seat}`)).body.budget
          .spent_micros;
      expect(await spent()).toBe(bill);
      const second = await api<Recon>('POST', '/api/reconciliations', { day });
      expect(second.body.corrections).toMatchObject({
        corrected: 0,
        already_corrected: first.body.corrections!.corrected,
      });
      expect(await spent()).toBe(bill);
      await served.stop();
      served = undefined;
    },
    90_000,
  );
});
