import { connectRedis, redactUrl } from './connection.ts';

/**
 * Checks that Redis answers before anything is opened on it: one connection, no retries, within
 * `timeoutMs`. Throws a one-line error naming the URL (without its password) and what to do.
 */
export async function reachRedis(url: string, timeoutMs: number): Promise<void> {
  const redis = connectRedis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    connectTimeout: timeoutMs,
    retryStrategy: () => null,
    reconnectOnError: () => false,
  });
  // The connection's own error says why (ECONNREFUSED, ENOTFOUND, WRONGPASS …); the command's
  // rejection only that the connection closed.
  let cause: { code?: string; message?: string } | undefined;
  redis.on('error', (err: { code?: string; message?: string }) => {
    cause ??= err;
  });
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      (async () => {
        await redis.connect();
        await redis.ping();
      })(),
      new Promise((_, reject) => {
        timer = setTimeout(
          () =>
            reject(Object.assign(new Error(`no answer within ${timeoutMs / 1000}s`), { code: 'ETIMEDOUT' })),
          timeoutMs,
        );
      }),
    ]);
  } catch (err) {
    const e = cause ?? (err as { code?: string; message?: string });
    const why = e.code ?? e.message ?? String(err);
    throw new Error(`cannot reach Redis at ${redactUrl(url)}: ${why}; start Redis or unset REDIS_URL`);
  } finally {
    clearTimeout(timer);
    redis.disconnect();
  }
}
