import { EnforcementUnavailableError, type MoneyStoreOptions } from '../../../store/port.ts';
import { checkMicros } from '../../../store/records.ts';
import { dayWindow } from '../../../store/windows.ts';
import { connectRedis, redactUrl } from '../connection.ts';
import { defineScripts, type ScriptedRedis } from './scripts.ts';

/**
 * The money store's connection to `url`, its scripts loaded: fail-fast (no offline queue, one
 * retry, every command timed out after `commandTimeoutMs`, default 2000), as store.ts explains.
 * A Redis that cannot be reached is an EnforcementUnavailableError.
 */
export async function connectMoneyRedis(
  url: string,
  options: Pick<MoneyStoreOptions, 'timeZone' | 'reservationTtlMs'> & { commandTimeoutMs?: number },
): Promise<ScriptedRedis> {
  dayWindow(0, options.timeZone);
  checkMicros(options.reservationTtlMs, 'reservationTtlMs');
  const redis = connectRedis(url, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    autoResendUnfulfilledCommands: false,
    commandTimeout: options.commandTimeoutMs ?? 2000,
    connectTimeout: 2000,
    retryStrategy: (times: number) => Math.min(100 * times, 2000),
  });
  // Errors reach callers through the failing command; the event would otherwise crash the process.
  redis.on('error', () => {});
  try {
    await redis.connect();
    return await defineScripts(redis);
  } catch (err) {
    redis.disconnect();
    throw new EnforcementUnavailableError(
      `cannot reach the Redis money store at ${redactUrl(url)}: ${String(err)}`,
      {
        cause: err,
      },
    );
  }
}
