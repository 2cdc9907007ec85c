import { describe, expect, it } from 'vitest';
import { DEFAULT_TOLERANCE, type Reconciliation, type Trigger } from '../../../runtime/reconcile/compare.ts';
import { backendPairs, KINDS } from './harness.ts';

const T0 = 1_700_000_000_000;

function recon(n: number, day: string, trigger: Trigger = 'cli'): Reconciliation {
  const total = {
    model: '(total)',
    ledger: 1_000 * n,
    provider: 1_000 * n,
    diff: 0,
    relative: 0,
    allowed: 10_000,
    verdict: 'match' as const,
    calls: n,
  };
  return {
    id: `rec_${String(n).padStart(3, '0')}`,
    at: T0 + n * 60_000,
    day,
    trigger,
    actor: 'admin',
    source: { kind: 'report', format: 'anthropic-usage' },
    tolerance: DEFAULT_TOLERANCE,
    rows: [{ ...total, model: 'claude-haiku-4-5' }],
    total,
    accounts: { 'key-1': 1_000 * n },
    verdict: n % 2 ? 'ok' : 'divergent',
    durationMs: 12,
  };
}

describe.each(KINDS)('reconciliations store (%s)', (kind) => {
  const pair = backendPairs(kind, 'recon');

  it('keeps each result whole, found by id from every process', async () => {
    const { a, b } = await pair();
    await a.reconciliations.save(recon(1, '2026-12-01'));
    expect(await b.reconciliations.get('rec_001')).toEqual(recon(1, '2026-12-01'));
    expect(await b.reconciliations.get('rec_nope')).toBeUndefined();
  });

  it('lists newest first, at most `limit`', async () => {
    const { a } = await pair();
    for (const n of [2, 1, 3]) await a.reconciliations.save(recon(n, '2026-12-01'));
    expect((await a.reconciliations.list({ limit: 10 })).map((r) => r.id)).toEqual([
      'rec_003',
      'rec_002',
      'rec_001',
    ]);
    expect((await a.reconciliations.list({ limit: 1 })).map((r) => r.id)).toEqual(['rec_003']);
  });

  it('filters by day and by trigger, together or alone', async () => {
    const { a } = await pair();
    await a.reconciliations.save(recon(1, '2026-11-30', 'schedule'));
    await a.reconciliations.save(recon(2, '2026-12-01', 'cli'));
    await a.reconciliations.save(recon(3, '2026-12-01', 'schedule'));
    await a.reconciliations.save(recon(4, '2026-12-01', 'api'));
    const ids = (rs: Reconciliation[]) => rs.map((r) => r.id);
    expect(ids(await a.reconciliations.list({ day: '2026-12-01', limit: 10 }))).toEqual([
      'rec_004',
      'rec_003',
      'rec_002',
    ]);
    expect(ids(await a.reconciliations.list({ trigger: 'schedule', limit: 10 }))).toEqual([
      'rec_003',
      'rec_001',
    ]);
    expect(ids(await a.reconciliations.list({ day: '2026-12-01', trigger: 'schedule', limit: 10 }))).toEqual([
      'rec_003',
    ]);
    expect(await a.reconciliations.list({ day: '2026-10-01', limit: 10 })).toEqual([]);
  });

  it('finds a filtered result behind more than a page of others', async () => {
    const { a } = await pair();
    await a.reconciliations.save(recon(1, '2026-12-01', 'schedule'));
    for (let n = 2; n <= 260; n++) await a.reconciliations.save(recon(n, '2026-12-01', 'cli'));
    expect((await a.reconciliations.list({ trigger: 'schedule', limit: 1 })).map((r) => r.id)).toEqual([
      'rec_001',
    ]);
  });
});
