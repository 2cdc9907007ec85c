import { describe, expect, it } from 'vitest';
import { simulate } from '../../bench/lib/replica-sim.ts';

/**
 * Budget leases on many replicas near a ceiling, on the real lease code (bench/lib/replica-sim.ts,
 * virtual clock): never past the ceiling, nothing lost, and few calls refused that a perfect
 * admission would have let through — room does not wait in batches or idle slices once a budget
 * refused. The full grid is bench/scale-sim.ts.
 */
describe('budget leases on many replicas near a ceiling (simulated)', () => {
  // Session 10's leases refused 18.7% (10 replicas) and 43.7% (100) of these near the ceiling;
  // per-call admission refuses 0%.
  it.each([
    { replicas: 10, durationMs: 30_000, oracleAdmits: 200 },
    { replicas: 100, durationMs: 6_000, oracleAdmits: 1_000 },
  ])('$replicas replicas at 100 calls/s into a team ceiling: no overshoot, few false refusals', async (c) => {
    const r = await simulate({
      replicas: c.replicas,
      rate: 100,
      durationMs: c.durationMs,
      warmupMs: 0,
      ceiling: 'team',
      leases: {},
    });
    expect(r.overshoot).toBe(0);
    expect(r.ledgerMismatch).toBe(0);
    expect(r.leftReserved).toBe(0);
    expect(r.refused).toBeGreaterThan(0);
    expect(r.near!.oracleAdmits).toBeGreaterThan(c.oracleAdmits);
    expect(r.near!.falseRefusalRate).toBeLessThan(0.1);
  });
});
