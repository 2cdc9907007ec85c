import type { Config } from '../../config/load.ts';
import type { Logger } from '../../log.ts';
import { Closers } from '../closers.ts';
import type { Backend } from '../ports.ts';
import { RedisAlarms } from './alarms.ts';
import { BullApprovalStore } from './approvals.ts';
import { RedisBatchStore } from './batches.ts';
import { redisBroadcast } from './broadcast.ts';
import { commandConnection } from './connection.ts';
import { RedisKeys } from './keys.ts';
import { openRedisStore } from './money/store.ts';
import { bullSchedule } from './reconcile-schedule.ts';
import { RedisReconStore } from './reconciliations.ts';
import { BullRunQueue } from './run-queue.ts';
import { RedisRunStore } from './runs.ts';
import { RedisSessionStore } from './sessions.ts';
import { RedisWebSessions } from './web-sessions.ts';

/**
 * The Redis backend: the money store on its own fail-fast connection (money/store.ts, Lua scripts),
 * one command connection and one subscriber shared by every other port, and BullMQ (approvals'
 * expiry, the runs queue, the daily reconciliation) on connections it opens from one config
 * (connection.ts). Any number of processes share it. A Redis that cannot be reached is an
 * EnforcementUnavailableError from the money store, before anything else is opened.
 */
export async function openRedisBackend(
  config: Config,
  opts: { now: () => number; log: Logger },
): Promise<Backend> {
  const { now, log } = opts;
  const url = config.store.redisUrl!;
  const prefix = config.store.prefix;
  const money = await openRedisStore(url, {
    defaults: config.budgets.defaults,
    timeZone: config.budgets.timeZone,
    reservationTtlMs: config.store.reservationTtlMs,
    now,
    prefix,
  });
  const closers = new Closers();
  closers.add(() => money.close());
  const cmd = commandConnection(url);
  const sub = commandConnection(url);
  for (const c of [cmd, sub]) {
    // Errors surface on each command (and fail closed there); here they are only logged.
    c.on('error', (err: Error) => log.debug('redis connection error', { error: err.message }));
    closers.add(() => c.disconnect());
  }
  const keys = closers.once('keys', () => new RedisKeys(cmd, sub, prefix));
  const alarms = closers.once('alarms', () => new RedisAlarms(cmd, prefix));
  const reconciliations = closers.once('reconciliations', () => new RedisReconStore(cmd, prefix));
  return {
    kind: 'redis',
    money,
    keys,
    alarms,
    broadcast: redisBroadcast(cmd, sub, prefix, log),
    reconciliations,
    get runs() {
      return closers.once('runs', () => new RedisRunStore(cmd, prefix, { now }));
    },
    get approvals() {
      return closers.once('approvals', () => new BullApprovalStore({ redisUrl: url, prefix, now }));
    },
    get sessions() {
      return closers.once('sessions', () => new RedisSessionStore(cmd, prefix));
    },
    get webSessions() {
      return closers.once('web sessions', () => new RedisWebSessions(cmd, prefix));
    },
    get batches() {
      return closers.once('batches', () => new RedisBatchStore(cmd, prefix));
    },
    runQueue: (o) => new BullRunQueue({ ...o, redisUrl: url, prefix }),
    reconcileSchedule: (rec, o) => bullSchedule(rec, { ...o, redisUrl: url, prefix }),
    close: () => closers.close(),
  };
}
