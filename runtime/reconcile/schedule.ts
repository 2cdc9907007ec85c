import type { Logger } from '../log.ts';
import type { Reconciliation, Trigger } from './compare.ts';

/**
 * The daily reconciliation of yesterday (UTC). Embedded: a timer in this process. Redis: a BullMQ
 * job scheduler (`upsertJobScheduler`, idempotent: every replica upserts the same one) and a
 * worker in every process that opened it, so exactly one of them runs each day's job, and a day
 * missed while every process was down runs when one comes back.
 */
export interface ReconcileSchedule {
  readonly kind: 'timer' | 'bullmq';
  /** Runs a reconciliation as the schedule would (Redis: through the queue), for `day` or yesterday. */
  trigger(day?: string): Promise<void>;
  /** When the next scheduled run is due (epoch ms), if known. */
  next(): Promise<number | undefined>;
  close(): Promise<void>;
}

export interface ScheduleOptions {
  /** `HH:MM`, UTC. */
  at: string;
  /** Instead of daily: every this many ms. */
  everyMs?: number;
  now: () => number;
  log: Logger;
  /** Embedded: how long after start a missed run of yesterday is made up (default 60 s). */
  catchUpMs?: number;
}

/** The next `HH:MM` UTC at or after `now`... strictly after. */
export function nextDaily(at: string, now: number): number {
  const [h, m] = at.split(':').map(Number) as [number, number];
  const d = new Date(now);
  let t = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate(), h, m);
  if (t <= now) t += 86_400_000;
  return t;
}

/** The UTC day before the one `now` falls in (`YYYY-MM-DD`). */
export function yesterday(now: number): string {
  return new Date(now - 86_400_000).toISOString().slice(0, 10);
}

/** What a schedule runs: a reconciliation of one day, and the list of past ones (for catch-up). */
/** What a schedule drives: the reconciler's scheduled run and its listing. */
export interface ScheduledReconciler {
  scheduled(day: string): Promise<Reconciliation | undefined>;
  list(filter?: { day?: string; trigger?: Trigger; limit?: number }): Promise<Reconciliation[]>;
}

export function timerSchedule(rec: ScheduledReconciler, opts: ScheduleOptions): ReconcileSchedule {
  let timer: NodeJS.Timeout | undefined;
  let due: number | undefined;
  let closed = false;
  let running: Promise<unknown> = Promise.resolve();
  const fire = (day?: string) => {
    running = running.then(() => (closed ? undefined : rec.scheduled(day ?? yesterday(opts.now()))));
    return running.then(() => undefined);
  };
  const arm = () => {
    if (closed) return;
    const now = opts.now();
    due = opts.everyMs ? now + opts.everyMs : nextDaily(opts.at, now);
    // Long waits are cut into steps: a clock that jumps (suspend, NTP) is re-read each step.
    timer = setTimeout(
      () => {
        if (opts.now() >= (due ?? 0) - 5) void fire().finally(arm);
        else arm();
      },
      Math.min(Math.max(due - now, 0), 3_600_000),
    );
    timer.unref();
  };
  arm();
  // A restart that slept through the daily run makes it up once (not in `every` mode).
  const catchUp = opts.everyMs
    ? undefined
    : setTimeout(async () => {
        const day = yesterday(opts.now());
        const done = await rec.list({ day, trigger: 'schedule', limit: 1 }).catch(() => [1]);
        if (!done.length && opts.now() >= nextDaily(opts.at, opts.now()) - 86_400_000) await fire(day);
      }, opts.catchUpMs ?? 60_000);
  catchUp?.unref();
  return {
    kind: 'timer',
    trigger: (day) => fire(day),
    next: async () => due,
    async close() {
      closed = true;
      clearTimeout(timer);
      clearTimeout(catchUp);
      await running.catch(() => undefined);
    },
  };
}
