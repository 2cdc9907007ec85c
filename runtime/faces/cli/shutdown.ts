import { reachBackend } from '../../backends/open.ts';
import type { Config } from '../../config/load.ts';
import { parseDuration } from '../../config/schema.ts';
import type { Logger } from '../../log.ts';
import { CliError } from './command.ts';

/**
 * Start-up and shutdown of the long-running commands (`serve`, `worker`): a graceful stop with a
 * deadline, and a clear one-line refusal when Redis cannot be reached at start.
 */

/** How long a graceful stop may take before the process gives up and exits 1 (default 15 s). */
export const DEFAULT_SHUTDOWN_MS = 15_000;

/** `--shutdown-timeout`, else $CHOKEPOINT_SHUTDOWN_TIMEOUT, else 15 s. */
export function shutdownDeadline(flag: unknown, env: NodeJS.ProcessEnv = process.env): number {
  const raw = typeof flag === 'string' ? flag : env.CHOKEPOINT_SHUTDOWN_TIMEOUT;
  if (raw === undefined || raw === '') return DEFAULT_SHUTDOWN_MS;
  const ms = /^\d+$/.test(raw.trim()) ? Number(raw.trim()) * 1000 : parseDuration(raw.trim());
  if (ms === undefined || ms <= 0) {
    throw new CliError(
      `--shutdown-timeout: expected a duration like "15s" or "1m", got ${JSON.stringify(raw)}`,
    );
  }
  return ms;
}

export interface ShutdownStep {
  /** What closes, for the log line if it does not in time: "approvals and the runs queue". */
  name: string;
  close: () => Promise<unknown> | unknown;
}

/**
 * Runs the steps in order. Resolves true once all closed; if the deadline passes first, logs one
 * line naming the step still closing (and those not reached) and resolves false: the caller
 * exits 1 without waiting further (a store that went away must not hold the process for minutes).
 */
export async function shutdownWithin(
  steps: ShutdownStep[],
  deadlineMs: number,
  log: Logger,
): Promise<boolean> {
  let current = 0;
  const failed: string[] = [];
  let timer: NodeJS.Timeout | undefined;
  const done = (async () => {
    for (; current < steps.length; current++) {
      const step = steps[current]!;
      try {
        await step.close();
      } catch (err) {
        failed.push(step.name);
        log.warn('shutdown: a step failed', { step: step.name, error: err });
      }
    }
    return true;
  })();
  const late = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), deadlineMs);
    timer.unref();
  });
  const ok = await Promise.race([done, late]);
  clearTimeout(timer);
  if (!ok) {
    const open = steps.slice(current).map((s) => s.name);
    log.error(
      `shutdown deadline of ${deadlineMs / 1000}s passed: did not close: ${open.join('; ')}; exiting 1`,
      { deadline_ms: deadlineMs, not_closed: open },
    );
    return false;
  }
  return failed.length === 0;
}

/**
 * What `serve` and `worker` do until SIGTERM or SIGINT: then `onSignal` (stop watching, log), then
 * the steps within the deadline. Resolves the exit code: 0 once everything closed; 1 when the
 * deadline passed, and the process exits at once (something that went away, a store, must not hold
 * the event loop for minutes).
 */
export function stopOnSignal(
  steps: ShutdownStep[],
  deadlineMs: number,
  log: Logger,
  onSignal: (signal: string) => void,
): Promise<number> {
  return new Promise<number>((resolve) => {
    const stop = async (signal: string) => {
      process.off('SIGTERM', onTerm);
      process.off('SIGINT', onInt);
      onSignal(signal);
      if (!(await shutdownWithin(steps, deadlineMs, log))) {
        process.exitCode = 1;
        resolve(1);
        setImmediate(() => process.exit(1));
        return;
      }
      log.info('stopped');
      resolve(0);
    };
    const onTerm = () => void stop('SIGTERM');
    const onInt = () => void stop('SIGINT');
    process.on('SIGTERM', onTerm);
    process.on('SIGINT', onInt);
  });
}

/** The URL without its password, for messages. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString().replace(/\/$/, '');
  } catch {
    return url;
  }
}

/**
 * Checks that the configured backend answers before anything is opened on it (embedded: nothing to
 * reach): one connection, no retries, a 5 s limit. Throws a one-line CliError (exit 1) saying what
 * to do when it does not.
 */
export async function checkBackend(
  store: Pick<Config['store'], 'backend' | 'redisUrl'>,
  timeoutMs = 5_000,
): Promise<void> {
  try {
    await reachBackend(store, timeoutMs);
  } catch (err) {
    throw new CliError((err as Error).message, 1);
  }
}

/** `checkBackend` for a Redis URL. */
export function checkRedis(url: string, timeoutMs = 5_000): Promise<void> {
  return checkBackend({ backend: 'redis', redisUrl: url }, timeoutMs);
}
