import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Anthropic from '@anthropic-ai/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CliError, parseCommandArgs } from '../../../runtime/faces/cli/command.ts';
import { reconcileCommand } from '../../../runtime/faces/cli/commands/reconcile.ts';
import type { Identity } from '../../../runtime/identity.ts';
import { parseRequestCsv, planCorrections } from '../../../runtime/reconcile/requests.ts';
import type { LedgerEntry } from '../../../runtime/store/port.ts';
import { ADMIN_TOKEN, type Backend, type Harness, startHarness } from '../../helpers/harness.ts';

/**
 * Reconciliation corrects expired worst-case charges per request id. The kill -9 state is made by
 * hand: reservations admitted for calls whose process "died" — some of the calls reached the
 * provider (the emulator billed them under our request id), some never did — and whose settlement
 * never came, so they expire at their worst case. Reconciling with the emulator's per-request bill
 * then brings every budget to the bill, to the µ$, with one correction per request id; reconciling
 * again changes nothing.
 */
const WORST = 40_000;
const REACHED = 6;
const NEVER = 3;

type Recon = {
  id: string;
  corrections?: {
    source: string;
    expired: number;
    corrected: number;
    corrected_micros: number;
    already_corrected: number;
    left_uncovered: number;
  };
};

async function cli(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  try {
    const { values, positionals } = parseCommandArgs(reconcileCommand, argv);
    const code = await reconcileCommand.run({ values, positionals, out: (l) => out.push(l), err: () => {} });
    return { code: code ?? 0, out: out.join('\n'), err: '' };
  } catch (e) {
    if (!(e instanceof CliError)) throw e;
    return { code: e.exitCode, out: out.join('\n'), err: e.message };
  }
}

const today = () => new Date().toISOString().slice(0, 10);

describe.each(['embedded', 'redis'] as Backend[])(
  'expired charges corrected per request id (%s)',
  (backend) => {
    let h: Harness;
    const identity: Identity = { team: `corr-${backend}`, env: `corr-${backend}`, seat: `corr-${backend}` };
    const scopes = [`team:${identity.team}`, `env:${identity.env}`, `seat:${identity.seat}`];
    const requestIds: string[] = [];
    let bill = 0;

    beforeAll(async () => {
      // Per-call reservations, as a process admits them when leases are off: each call's own
      // reservation expires at its worst case (an expired lease is left as charged: leases.test.ts).
      h = await startHarness({ backend, config: { store: { reservationTtl: '1s', leases: false } } });
      const rt = h.rt;
      const provider = new Anthropic({ baseURL: rt.emulatorUrl!, apiKey: rt.emulatorApiKey!, maxRetries: 0 });
      for (let i = 0; i < REACHED + NEVER; i++) {
        const requestId = `req_corr_${backend}_${i}`;
        requestIds.push(requestId);
        const a = await rt.store.admit({ identity, amount: WORST, requestId, name: 'claude-haiku-4-5' });
        expect(a.ok).toBe(true);
        if (i >= REACHED) continue; // the process died before this call left it
        // The call reached the provider under our request id, as the gateway forwards it; the
        // process died before it settled.
        await provider.messages.create(
          {
            model: 'claude-haiku-4-5',
            max_tokens: 50,
            messages: [{ role: 'user', content: `call ${i} [[emulator:output_tokens=${10 + i * 7}]]` }],
          },
          { headers: { 'x-chokepoint-request-id': requestId } },
        );
      }
      const billed = rt.emulator!.billing.list().filter((b) => requestIds.includes(b.clientRequestId ?? ''));
      expect(billed).toHaveLength(REACHED);
      bill = billed.reduce((n, b) => n + b.costMicros, 0);
      // The reservations fall due (1 s); each sweep charges what is due. Wait for all of them.
      for (let i = 0; i < 300; i++) {
        await rt.store.sweepExpired();
        const expired = await rt.store.listLedger({ scope: `seat:${identity.seat}`, outcome: 'expired' });
        if (expired.length === REACHED + NEVER) break;
        await new Promise((r) => setTimeout(r, 50));
      }
    });
    afterAll(() => h?.close());

    const spentOf = async (scope: string) => (await h.rt.store.getBudget(scope))!.spent;
    const ledger = () => h.rt.store.listLedger({ scope: `seat:${identity.seat}`, limit: 1000 });

    it('charged every unsettled call its worst case first: never less than the bill', async () => {
      expect((await ledger()).filter((e) => e.outcome === 'expired')).toHaveLength(REACHED + NEVER);
      for (const s of scopes) expect(await spentOf(s)).toBe((REACHED + NEVER) * WORST);
      expect(bill).toBeLessThan(REACHED * WORST);
    });

    it("reconciling with the emulator's per-request bill brings every budget to the bill, to the µ$", async () => {
      const res = await h.api<Recon>('POST', '/api/reconciliations', { day: today() });
      expect(res.status).toBe(201);
      expect(res.body.corrections).toMatchObject({
        source: 'emulator',
        corrected: REACHED + NEVER,
        corrected_micros: bill - (REACHED + NEVER) * WORST,
        left_uncovered: 0,
      });
      for (const s of scopes) expect(await spentOf(s), s).toBe(bill);
      const entries = await ledger();
      for (const id of requestIds) {
        const mine = entries.filter((e) => e.requestId === id);
        expect(
          mine.filter((e) => e.outcome === 'corrected'),
          id,
        ).toHaveLength(1);
        expect(
          mine.reduce((n, e) => n + e.cost, 0),
          id,
        ).toBe(
          h.rt
            .emulator!.billing.list()
            .filter((b) => b.clientRequestId === id)
            .reduce((n, b) => n + b.costMicros, 0),
        );
      }
      // The spend view carries the correction: the day's spend is the bill; calls are not doubled.
      const spend = await h.api<{ rows: { cost_micros: number; calls: number; corrections: number }[] }>(
        'GET',
        `/api/spend?by=seat&scope=seat:${identity.seat}`,
      );
      expect(spend.body.rows).toMatchObject([
        {
          cost_micros: bill,
          calls: REACHED + NEVER,
          corrections: REACHED + NEVER,
          correctedCost: bill - (REACHED + NEVER) * WORST,
        },
      ]);
    });

    it("the inbox's spend page says how many expired charges were corrected and by how much", async () => {
      const login = await fetch(`${h.url}/login`, {
        method: 'POST',
        body: new URLSearchParams({ token: ADMIN_TOKEN, next: '/spend' }),
        redirect: 'manual',
      });
      const cookie = login.headers
        .getSetCookie()
        .find((c) => c.startsWith('cp_session='))!
        .split(';')[0]!;
      const page = await (await fetch(`${h.url}/spend?days=1`, { headers: { cookie } })).text();
      const credited = ((REACHED + NEVER) * WORST - bill) / 1e6;
      expect(page.replace(/\s+/g, ' ')).toContain(
        `Includes ${REACHED + NEVER} expired worst-case charges corrected by reconciliation to the provider&#39;s bill (-$${credited.toFixed(6)})`,
      );
    });

    it('a second reconciliation (the CLI) changes nothing: each request id keeps its one correction', async () => {
      const before = await ledger();
      const again = await cli(['--day', today(), '--url', h.url, '--token', ADMIN_TOKEN]);
      expect(again.err).toBe('');
      expect(again.out).toContain(
        `expired charges (the emulator's record): ${REACHED + NEVER} on the day, 0 corrected by $0.00, ${REACHED + NEVER} corrected before`,
      );
      expect(await ledger()).toHaveLength(before.length);
      for (const s of scopes) expect(await spentOf(s)).toBe(bill);
    });

    it('takes a per-request CSV, and names the line of a malformed one', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'cp-corr-'));
      try {
        const bad = join(dir, 'bad.csv');
        writeFileSync(bad, 'request_id,cost_usd\nreq_x,lots\n');
        const res = await cli(['--day', today(), '--requests', bad, '--url', h.url, '--token', ADMIN_TOKEN]);
        expect(res.code).toBe(1);
        expect(res.err).toMatch(/requests.*line 2.*cost_usd/);
        expect((await cli(['--day', today(), '--requests', join(dir, 'missing.csv')])).err).toMatch(
          /--requests: cannot read .*missing\.csv: ENOENT/,
        );
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  },
);

describe('which expired charges a per-request bill corrects', () => {
  const at = Date.parse('2026-12-01T10:00:00Z');
  const expired = (requestId: string, over: Partial<LedgerEntry> = {}): LedgerEntry => ({
    id: `led_${requestId}x`,
    at,
    requestId,
    identity: { team: 't', env: 'e', seat: 's' },
    kind: 'model',
    name: 'claude-haiku-4-5',
    tokens: { input: 0, cacheWrite5m: 0, cacheWrite1h: 0, cacheRead: 0, output: 0 },
    reserved: 1000,
    cost: 1000,
    overrun: 0,
    outcome: 'expired',
    latencyMs: 60_000,
    ...over,
  });

  it('corrects listed requests to their bill (summed), and unlisted ones to 0 only inside the span the bill covers', () => {
    const bill = parseRequestCsv(
      'request_id,cost_usd,at\nreq_a,0.000100,2026-12-01T08:00:00Z\nreq_a,0.000020,2026-12-01T09:00:00Z\nreq_z,1,2026-12-01T12:00:00Z\n',
    );
    const plan = planCorrections(
      [expired('req_a'), expired('req_b'), expired('req_c', { at: at + 7_200_000 })],
      bill,
    );
    expect(plan.corrections.map((c) => [c.expired.requestId, c.billed])).toEqual([
      ['req_a', 120],
      ['req_b', 0],
    ]);
    expect(plan.uncovered).toBe(1); // req_c expired at 12:00, within the skew of the bill's last time
  });

  it('never corrects down on missing data: without times a CSV corrects only what it lists', () => {
    const bill = parseRequestCsv('request_id,cost_usd\nreq_a,0.0005\n');
    const plan = planCorrections([expired('req_a'), expired('req_b')], bill);
    expect(plan.corrections.map((c) => c.expired.requestId)).toEqual(['req_a']);
    expect(plan.uncovered).toBe(1);
  });

  it('leaves a request id with several expired entries at its worst case', () => {
    const bill = parseRequestCsv('request_id,cost_usd\nreq_a,0.0005\n');
    const plan = planCorrections([expired('req_a'), expired('req_a', { id: 'led_other' })], bill);
    expect(plan).toMatchObject({ corrections: [], ambiguous: 2 });
  });
});
