import { describe, expect, it } from 'vitest';
import { leaseScriptArgs, Packed } from '../../../runtime/backends/redis/money/lease-args.ts';
import { prepareLeaseOp } from '../../../runtime/store/lease-ops.ts';
import { StoreInputError } from '../../../runtime/store/port.ts';

/** What lease.lua was sent before the fields were packed into a Buffer: the fields joined by NULs. */
const joined = (fields: (string | number)[]) => `${fields.join('\0')}\0`;

describe('Packed (lease.lua step fields in one Buffer)', () => {
  it('writes the same bytes as joining the fields with NULs, for numbers and text of every kind', () => {
    let seed = 7;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const samples: (string | number)[] = [
      0,
      1,
      9,
      10,
      99,
      100,
      12345,
      2 ** 31,
      2 ** 53 - 1,
      2 ** 53,
      1e21,
      -1,
      -250,
      0.5,
      1.25e-7,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      '',
      'a',
      'é',
      '€uro',
      '😀 emoji',
      '{"json":"\\u0000 escaped"}',
      'x'.repeat(5000),
    ];
    for (let round = 0; round < 200; round++) {
      const fields: (string | number)[] = [];
      const n = 1 + Math.floor(rand() * 60);
      for (let i = 0; i < n; i++) {
        const r = rand();
        if (r < 0.4) fields.push(samples[Math.floor(rand() * samples.length)]!);
        else if (r < 0.7) fields.push(Math.floor(rand() * 2 ** 53));
        else
          fields.push(
            String.fromCodePoint(
              ...Array.from({ length: 1 + Math.floor(rand() * 40) }, () => 1 + Math.floor(rand() * 0x2ffff)),
            ).replace(/[\uD800-\uDFFF]/g, 'x'),
          );
      }
      // A small first guess, so the buffer has to grow.
      const p = new Packed(8);
      for (const f of fields) {
        if (typeof f === 'number') p.number(f);
        else p.text(f);
      }
      expect(p.bytes().equals(Buffer.from(joined(fields)))).toBe(true);
    }
  });

  it('refuses a text field holding a NUL: it would split the step', () => {
    const p = new Packed(64);
    expect(() => p.text('team\0x')).toThrow(StoreInputError);
    expect(() => p.text('team\0x')).toThrow(/NUL byte/);
  });

  it('sizes a batch from the last one, but one batch of huge entries does not size every next one', () => {
    const step = (i: number, requestId: string) =>
      prepareLeaseOp(
        {
          reservationId: `res_lease${i}`,
          call: String(i + 1),
          entry: {
            requestId,
            identity: { team: 'payments', env: 'prod', seat: 'alice' },
            kind: 'model',
            name: 'claude-haiku-4-5',
            tokens: { input: 1, cacheWrite5m: 0, cacheWrite1h: 0, cacheRead: 0, output: 1 },
            cost: 10,
            reserved: 100,
            outcome: 'ok',
            latencyMs: 3,
          },
        },
        1_700_000_000_000,
      );
    const packed = (ops: ReturnType<typeof step>[]) => leaseScriptArgs(ops, () => [], 'UTC').at(-1) as Buffer;
    // One step with a 1 MB entry, then 256 ordinary ones: the buffer is not 256 MB.
    const huge = packed([step(0, 'x'.repeat(1_000_000))]);
    expect(huge.length).toBeGreaterThan(1_000_000);
    const small = packed(Array.from({ length: 256 }, (_, i) => step(i, `req_${i}`)));
    expect(small.buffer.byteLength).toBeLessThan(8 * 1024 * 1024);
    // 18 fields a step, each ended by a NUL.
    expect(small.toString('utf8').split('\0')).toHaveLength(256 * 18 + 1);
  });
});
