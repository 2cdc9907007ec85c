import { describe, expect, it } from 'vitest';
import { createLogger } from '../../../runtime/log.ts';
import { LeaseBatches } from '../../../runtime/store/lease-batches.ts';
import type { LeaseOp, LeaseOpResult } from '../../../runtime/store/port.ts';

describe('lease batches', () => {
  it('a read ships what was queued when it began, not every step queued while it waits', async () => {
    const sent: number[] = [];
    let release: (() => void) | undefined;
    const batches = new LeaseBatches({
      // A store that answers only when told: steps keep arriving while a batch is on its way.
      store: {
        leaseOps: (ops: LeaseOp[]) =>
          new Promise<LeaseOpResult[]>((resolve) => {
            sent.push(ops.length);
            release = () => resolve(ops.map(() => ({ held: 0, open: true })));
          }),
      },
      log: createLogger({ level: 'silent' }),
      shipMs: 60_000,
      manual: false,
      sent: () => {},
      closed: () => {},
      written: () => {},
      failed: () => {},
    });
    const step = (i: number) => batches.step({ reservationId: `res_${i}`, free: 1 });
    for (let i = 0; i < 5; i++) await step(i);
    let drained = false;
    const read = batches.drain().then(() => {
      drained = true;
    });
    await expect.poll(() => sent).toEqual([5]);
    // More calls settle while the batch is on its way: they wait for the next batch, not the read.
    for (let i = 5; i < 8; i++) await step(i);
    release!();
    await read;
    expect(drained).toBe(true);
    expect(sent).toEqual([5]);
    expect(batches.queue).toHaveLength(3);
  });
});
