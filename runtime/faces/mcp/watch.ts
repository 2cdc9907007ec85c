import type { Services } from '../../compose.ts';
import { formatUsd } from '../../money.ts';
import type { RunRecord, RunSummary } from '../../store/runs.ts';

/**
 * Following runs for MCP clients: the executor's live `run` views say at once when a run changes
 * state (started, suspended, resumed, ended) — on Redis whichever process works on it; a re-read
 * every `pollMs` catches the rest (steps, and a broadcast missed while disconnected).
 */

/** Calls `fn` after every change of state of a run (on Redis, of any process's run). */
export function onRunChange(rt: Services, fn: (r: RunSummary) => void): () => void {
  const events = rt.runs?.executor.views;
  if (!events) return () => {};
  events.on('run', fn);
  return () => events.off('run', fn);
}

export type FollowStop = 'settled' | 'deadline' | 'aborted';

export interface FollowOptions {
  signal?: AbortSignal;
  /** Stop following at this time (epoch ms). */
  deadline: number;
  /** Re-read the run this often (ms). */
  pollMs: number;
  /** Report at least this often (ms), and on every step and change of state. */
  progressMs: number;
  onProgress?: (run: RunRecord, why: 'state' | 'step' | 'tick') => void | Promise<void>;
}

/**
 * Follows a run until it stops running (it ended or suspended), the deadline passes or the
 * signal aborts; returns the last record read and why it stopped.
 */
export async function followRun(
  rt: Services,
  id: string,
  opts: FollowOptions,
): Promise<{ run: RunRecord; stopped: FollowStop }> {
  const host = rt.runs;
  if (!host) throw new Error('this server does not host workflows');
  let dirty = false;
  let wake: (() => void) | undefined;
  const poke = () => {
    dirty = true;
    wake?.();
  };
  const off = onRunChange(rt, (r) => {
    if (r.id === id) poke();
  });
  opts.signal?.addEventListener('abort', poke);
  let last: RunRecord | undefined;
  let reported = 0;
  try {
    for (;;) {
      dirty = false;
      const run = await host.mustGet(id);
      const why = !last || run.state !== last.state ? 'state' : run.steps !== last.steps ? 'step' : undefined;
      const now = Date.now();
      if (why || now - reported >= opts.progressMs) {
        reported = now;
        await opts.onProgress?.(run, why ?? 'tick');
      }
      last = run;
      if (run.state !== 'running') return { run, stopped: 'settled' };
      if (opts.signal?.aborted) return { run, stopped: 'aborted' };
      if (now >= opts.deadline) return { run, stopped: 'deadline' };
      if (dirty) continue;
      const pause = Math.max(1, Math.min(opts.pollMs, opts.deadline - now, reported + opts.progressMs - now));
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, pause);
        function done() {
          clearTimeout(timer);
          wake = undefined;
          resolve();
        }
        wake = done;
      });
    }
  } finally {
    off();
    opts.signal?.removeEventListener('abort', poke);
  }
}

/** "running: 2 steps, $0.0031 of $0.10, 4.2s of 2m" (a run's progress in one line). */
export async function progressLine(rt: Services, run: RunRecord): Promise<string> {
  const budget = await rt.store.getBudget(`run:${run.id}`).catch(() => undefined);
  const elapsed = ((run.endedAt ?? rt.now()) - run.clockStart) / 1000;
  const state = run.reason ? `${run.state} (${run.reason})` : run.state;
  return (
    `${state}: ${run.steps} step${run.steps === 1 ? '' : 's'}, $${formatUsd(budget?.spent ?? 0)} of ` +
    `$${formatUsd(run.limits.spend)}, ${elapsed.toFixed(1)}s of ${(run.limits.time / 1000).toFixed(0)}s`
  );
}
