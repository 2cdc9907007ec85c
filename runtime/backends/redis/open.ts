import type { Config } from '../../config/load.ts';
import type { Logger } from '../../log.ts';
import { Closers } from '../closers.ts';
import type { Backend } from '../ports.ts';
import { RedisAlarms } from './alarms.ts';
import { BullApprovalStore } from './approvals.ts';
import { RedisBatchStore } from './batches.ts';
import { redisBroadcast } from './broadcast.ts';
import { commandConnection, familyPrefix, isClusterUrl } from './connection.ts';
import { RedisKeys } from './keys.ts';
import { openPartitionedStore } from './money/partitioned.ts';
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
 *
 * On a Redis Cluster (`redis-cluster://` URL) every connection is a `Cluster`, and each family of
 * keys that no script shares with the budgets gets a hash tag of its own (`familyPrefix`), so the
 * cluster spreads them over its nodes. The money store spreads the budgets' spend, the reservations
 * and the ledger over `store.partitions` hash tags (money/partitioned.ts; 8 by default on a
 * cluster); the ceilings, kill switches and audit stay at its home slot, with the approval items,
 * whose reopen script appends to the money store's audit.
 */
export async function openRedisBackend(
  config: Config,
  opts: { now: () => number; log: Logger },
): Promise<Backend> {
  const { now, log } = opts;
  const url = config.store.redisUrl!;
  const prefix = config.store.prefix;
  const own = (family: string) => familyPrefix(prefix, family, isClusterUrl(url));
  const moneyOptions = {
    defaults: config.budgets.defaults,
    timeZone: config.budgets.timeZone,
    reservationTtlMs: config.store.reservationTtlMs,
    now,
    prefix,
  };
  const partitions = config.store.partitions;
  const money =
    partitions > 0
      ? await openPartitionedStore(url, { ...moneyOptions, partitions })
      : await openRedisStore(url, moneyOptions);
  const closers = new Closers();
  closers.add(() => money.close());
  const cmd = commandConnection(url);
  const sub = commandConnection(url);
  for (const c of [cmd, sub]) {
    // Errors surface on each command (and fail closed there); here they are only logged.
    c.on('error', (err: Error) => log.debug('redis connection error', { error: err.message }));
    closers.add(() => c.disconnect());
  }
  const keys = closers.once('keys', () => new RedisKeys(cmd, sub, own('keys')));
  const alarms = closers.once('alarms', () => new RedisAlarms(cmd, own('alarms')));
  const reconciliations = closers.once('reconciliations', () => new RedisReconStore(cmd, own('recon')));
  return {
    kind: 'redis',
    money,
    keys,
    alarms,
    broadcast: redisBroadcast(cmd, sub, prefix, log),
    reconciliations,
    get runs() {
      return closers.once('runs', () => new RedisRunStore(cmd, own('runs'), { now }));
    },
    get approvals() {
      return closers.once('approvals', () => new BullApprovalStore({ redisUrl: url, prefix, now }));
    },
    get sessions() {
      return closers.once('sessions', () => new RedisSessionStore(cmd, own('sessions')));
    },
    get webSessions() {
      return closers.once('web sessions', () => new RedisWebSessions(cmd, own('web')));
    },
    get batches() {
      return closers.once('batches', () => new RedisBatchStore(cmd, own('batches')));
    },
    runQueue: (o) => new BullRunQueue({ ...o, redisUrl: url, prefix }),
    reconcileSchedule: (rec, o) => bullSchedule(rec, { ...o, redisUrl: url, prefix }),
    close: () => closers.close(),
  };
}
