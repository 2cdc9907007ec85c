/**
 * What one Redis slot spends on a leased call: lease batches (MoneyStore.leaseOps, lease.lua) of
 * `--batch` calls on one slice, timed by the CPU of Redis's main thread (INFO cpu) — the thread
 * that bounds one node, and so the one `{cp}` hash slot the money store lives in. Calls per second
 * one slot carries ≈ 1 s / the µs printed. Redis is `REDIS_URL` (default 127.0.0.1:6379); the keys
 * go under a prefix of their own and are deleted after.
 *
 *   node bin/run-ts.js bench/redis-slot.ts [--batch 400] [--batches 40]
 */
import { Redis } from 'ioredis';
import { openRedisStore } from '../runtime/backends/redis/money/store.ts';
import type { Identity } from '../runtime/identity.ts';
import type { LeaseOp } from '../runtime/store/port.ts';
import { everyKind } from './lib/budgets.ts';

const argv = process.argv.slice(2);
const opt = (name: string, dflt: number) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? Number(argv[i + 1]) : dflt;
};
const B = opt('batch', 400);
const N = opt('batches', 40);
const url = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
const prefix = `{slotbench${process.pid}}`;

const defaults = everyKind(1e15);
const store = await openRedisStore(url, { prefix, defaults, timeZone: 'UTC', reservationTtlMs: 600_000 });
const redis = new Redis(url);
const mainThreadUs = async () => {
  const info = await redis.info('cpu');
  const secs = (n: string) => Number(new RegExp(`^${n}:([\\d.]+)`, 'm').exec(info)?.[1] ?? Number.NaN);
  return 1e6 * (secs('used_cpu_sys_main_thread') + secs('used_cpu_user_main_thread'));
};

try {
  const identity: Identity = { team: 'payments', env: 'prod', seat: 'alice' };
  const a = await store.admit({ identity, amount: 1_000, lease: { upTo: 1e12, share: 1 } });
  if (!a.ok) throw new Error(`the slice was refused: ${a.refusal.code}`);
  let seq = 0;
  const batch = (): LeaseOp[] =>
    Array.from({ length: B }, () => {
      const i = ++seq;
      return {
        reservationId: a.reservation.id,
        call: String(i),
        entry: {
          requestId: `req_${i}`,
          identity,
          kind: 'model',
          name: 'claude-haiku-4-5',
          provider: 'anthropic',
          tokens: { input: 10, cacheWrite5m: 0, cacheWrite1h: 0, cacheRead: 0, output: 5 },
          reserved: 1_000,
          cost: 100,
          outcome: 'ok',
          latencyMs: 3,
          id: `led_${i}`,
          at: Date.now(),
        },
      };
    });
  for (let w = 0; w < 5; w++) await store.leaseOps(batch());
  const cpu0 = await mainThreadUs();
  const t0 = performance.now();
  for (let n = 0; n < N; n++) await store.leaseOps(batch());
  const wall = (performance.now() - t0) * 1000;
  const cpu = (await mainThreadUs()) - cpu0;
  const perCall = cpu / (B * N);
  process.stdout.write(
    `${N} batches of ${B} calls: Redis main thread ${perCall.toFixed(1)} µs a call ` +
      `(one slot ≈ ${Math.round(1e6 / perCall).toLocaleString('en-US')} calls/s), ` +
      `${(wall / (B * N)).toFixed(1)} µs wall a call here\n`,
  );
} finally {
  const keys = await redis.keys(`${prefix}*`);
  for (let i = 0; i < keys.length; i += 500) await redis.del(...keys.slice(i, i + 500));
  await store.close();
  redis.disconnect();
}
