import type { Logger } from '../runtime/log.ts';
import { formatUsd, type Micros } from '../runtime/money.ts';
import type { RunTraces } from '../runtime/runtime.ts';
import {
  ApprovalConflictError,
  type ApprovalFilter,
  type ApprovalItem,
  ApprovalNotFoundError,
  type ApprovalStore,
  DECISION_STATE,
  type Decision,
  type DecisionAction,
  formatDuration,
} from '../runtime/store/approvals.ts';
import type { AuditInput, MoneyStore } from '../runtime/store/port.ts';
import type { JournalEntry, RunRecord, RunSummary } from '../runtime/store/runs.ts';
import { RunNotFoundError, RunStateError } from '../runtime/workflows/executor.ts';
import type { RunsPort } from '../runtime/workflows/port.ts';
import { type ContextWithRequest, requestOf } from './request.ts';

/**
 * Approvals: every suspension of a run becomes one approval item; a human's decision on it
 * (approve, extend, deny, kill) is recorded once (a second decision is a 409), audited, and
 * applied: the run's record is updated here and the work of running it again goes on the `runs`
 * queue, so whichever worker is free resumes it from its last step. Items not decided within the
 * approval timeout expire and their runs end `expired` (or `denied`, if so configured).
 */

export interface ApprovalsOptions {
  /** How long an item waits for a decision unless its workflow says (default 24h). */
  timeoutMs?: number;
  /** What an undecided item does at its timeout: the run ends `expired` (default) or `denied`. */
  onTimeout?: 'expire' | 'deny';
}

/** What approvals need besides the runs: the audit trail and the ledger (a run's spend), a clock. */
export interface ApprovalsDeps {
  money: Pick<MoneyStore, 'appendAudit' | 'listLedger'>;
  log: Logger;
  now(): number;
  /** Spans of approval waits (from the suspension to the decision), when tracing is on. */
  traces?: Pick<RunTraces, 'approval'>;
}

export interface DecideInput {
  action: DecisionAction;
  actor: string;
  reason: string;
  /** extend: add this much to the spend box (µ$) … */
  addSpend?: Micros;
  /** … and/or this much to the time box (ms). */
  addTime?: number;
}

const LAST_MESSAGES = 4;
/** A failed decision's undo is tried again after 100 ms, 200 ms, … (8 tries, about 25 s in all). */
const REOPEN_ATTEMPTS = 8;
const REOPEN_BACKOFF_MS = 100;
const MESSAGE_CHARS = 600;

export class Approvals {
  private readonly timeoutMs: number;
  private readonly onTimeout: 'expire' | 'deny';
  private unsubscribe: (() => void)[] = [];
  private readonly opening = new Set<Promise<unknown>>();
  private closing = false;

  constructor(
    private readonly deps: ApprovalsDeps,
    private readonly runs: RunsPort,
    readonly store: ApprovalStore,
    opts: ApprovalsOptions = {},
  ) {
    this.timeoutMs = opts.timeoutMs ?? 24 * 3_600_000;
    this.onTimeout = opts.onTimeout ?? 'expire';
  }

  /**
   * Opens items for suspensions (now, any a crash left without one, and each run a worker stops
   * at a suspension, before its queue job completes) and starts expiry.
   */
  async start(): Promise<void> {
    const onRun = (r: RunSummary) => {
      const p = (r.state === 'suspended' ? this.openFor(r.id) : this.supersede(r)).catch((err) =>
        this.deps.log.error('could not update the approval item of a run', { error: err, run: r.id }),
      );
      this.opening.add(p);
      void p.finally(() => this.opening.delete(p));
    };
    this.unsubscribe.push(this.runs.onChange(onRun));
    this.unsubscribe.push(
      this.runs.onStopped(async (r) => {
        if (r.state === 'suspended') await this.openFor(r.id);
      }),
    );
    await this.reconcile();
    await this.store.startExpiry((id) => this.expire(id));
  }

  /** The item for a run's current suspension, opened if missing (idempotent). */
  async openFor(runId: string): Promise<ApprovalItem | undefined> {
    const run = await this.runs.get(runId);
    if (run?.state !== 'suspended') return undefined;
    const item = await this.itemFor(run);
    const { item: stored, created } = await this.store.open(item);
    if (created) {
      this.deps.log.info('approval needed', { approval: stored.id, run: runId, reason: stored.reason });
    }
    return stored;
  }

  get(id: string): Promise<ApprovalItem | undefined> {
    return this.store.get(id);
  }

  async mustGet(id: string): Promise<ApprovalItem> {
    const item = await this.store.get(id);
    if (!item) throw new ApprovalNotFoundError(id);
    return item;
  }

  list(filter: ApprovalFilter = {}): Promise<{ items: ApprovalItem[]; next?: string }> {
    return this.store.list(filter);
  }

  /**
   * Decides a pending item, once. The decision is validated first (the amounts the run can take,
   * the run still at this suspension), then claimed with the store's atomic transition (a second
   * decision, here or on any replica, is a 409), then applied to the run, and only then audited.
   * A decision that cannot be applied is undone: the item is pending again (or, if its run moved
   * on meanwhile, closed with what happened) and the audit trail gets a failure entry, never one
   * saying the decision was taken.
   */
  async decide(id: string, input: DecideInput): Promise<ApprovalItem> {
    if (!input.reason.trim()) throw new Error('a decision needs a reason');
    const before = await this.mustGet(id);
    if (input.action === 'extend' && !input.addSpend && !input.addTime) {
      throw new ExtendInputError('extend needs an amount: spend (e.g. "$1") and/or time (e.g. "10m")');
    }
    checkAmount(input.addSpend, 'spend');
    checkAmount(input.addTime, 'time');
    if (before.kind === 'run' && before.state === 'pending') {
      // The run must still be at this suspension: one resumed or killed another way (the runs API,
      // a kill switch) closes the item instead of taking a decision it could not apply.
      const run = await this.runs.get(before.runId);
      if (run && (run.state !== 'suspended' || `${run.id}.${run.suspensions}` !== id)) {
        await this.supersede(run);
        throw new RunStateError(
          `approval ${id} no longer applies: run ${run.id} is ${run.state}${run.state === 'suspended' ? ` at suspension ${run.suspensions}` : ''}`,
        );
      }
      if (run && input.action === 'extend') {
        checkAmount(input.addSpend && run.limits.spend + input.addSpend, 'spend', 'the spend box would be');
        checkAmount(input.addTime && run.limits.time + input.addTime, 'time', 'the time box would be');
      }
    }
    const decision: Decision = { ...input, at: this.deps.now() };
    const item = await this.store.decide(id, decision);
    try {
      await this.apply(item, decision);
    } catch (err) {
      throw await this.undo(item, decision, err);
    }
    this.deps.traces?.approval(item);
    const entry = {
      actor: input.actor,
      reason: input.reason,
      action: `approval.${input.action}`,
      target: `${item.kind}:${item.runId}`,
      before: { approval: id, state: before.state, limits: before.detail },
      after: {
        approval: id,
        state: DECISION_STATE[input.action],
        ...(input.addSpend ? { add_spend_usd: formatUsd(input.addSpend) } : {}),
        ...(input.addTime ? { add_time_ms: input.addTime } : {}),
      },
    };
    await this.deps.money.appendAudit(entry).catch(async (err) => {
      // Applied, so it stands; one retry, then the log keeps what the audit trail could not.
      await this.deps.money.appendAudit(entry).catch(() => {
        this.deps.log.error('approval decision applied but not audited', { error: err, ...entry });
      });
    });
    return item;
  }

  /**
   * A decision that was claimed but could not be applied: the item is reopened (pending again,
   * decidable again) together with its `approval.failed` audit entry, in one atomic step of the
   * store (retried in the background if the store cannot take it now); or closed with what
   * happened if its run left the suspension meanwhile. Returns the error to throw.
   */
  private async undo(item: ApprovalItem, decision: Decision, err: unknown): Promise<unknown> {
    const id = item.id;
    const action = decision.action;
    const message = err instanceof Error ? err.message : String(err);
    try {
      // A run that cannot be read is taken as still suspended: reopened, the item stays decidable.
      const run = item.kind === 'run' ? await this.runs.get(item.runId).catch(() => null) : undefined;
      const still = run === null || (run?.state === 'suspended' && `${run.id}.${run.suspensions}` === id);
      if (item.kind === 'run' && !still) {
        await this.store.reopen(id, decision);
        // The run moved on (resumed or killed another way) between the check and the claim: the
        // item closes with what happened; the decision did nothing.
        if (run) await this.supersede(run);
        const now = run
          ? `${run.state}${run.state === 'suspended' ? ` at suspension ${run.suspensions}` : ''}`
          : 'gone';
        await this.deps.money.appendAudit({
          actor: 'chokepoint',
          reason: `not applied: ${message}`,
          action: 'approval.not_applied',
          target: `${item.kind}:${item.runId}`,
          before: { approval: id, state: 'pending', action, by: decision.actor },
          after: { approval: id, run: run?.state ?? 'gone' },
        });
        return new RunStateError(
          `approval ${id} was not ${DECISION_STATE[action as DecisionAction]}: run ${item.runId} is ${now} (it moved on while the decision was taken)`,
        );
      }
      // The run is still at this suspension: pending again and audited as failed, in one step.
      const failed = {
        actor: decision.actor,
        reason: `${action} failed, the item is pending again: ${message}`,
        action: 'approval.failed',
        target: `${item.kind}:${item.runId}`,
        before: { approval: id, state: 'pending' },
        after: {
          approval: id,
          state: 'pending',
          action,
          ...(decision.addSpend ? { add_spend_usd: formatUsd(decision.addSpend) } : {}),
          ...(decision.addTime ? { add_time_ms: decision.addTime } : {}),
        },
      };
      await this.store.reopen(id, decision, failed).catch((undoErr) => {
        this.deps.log.error('a failed approval decision could not be undone yet: retrying', {
          error: undoErr,
          approval: id,
          action,
          cause: message,
        });
        this.retryReopen(id, decision, failed, 1);
      });
    } catch (undoErr) {
      this.deps.log.error('a failed approval decision could not be undone', {
        error: undoErr,
        approval: id,
        action,
        cause: message,
      });
    }
    return err instanceof RunStateError || err instanceof RunNotFoundError
      ? new RunStateError(`approval ${id} was not applied: ${message}`)
      : err;
  }

  /**
   * The reopen-and-audit step failed (the store was unreachable): tried again with backoff, a
   * few times, while this process runs. It is one atomic step, so whenever it lands the item is
   * pending with its one `approval.failed` entry; until then it stays decided, unaudited.
   */
  private retryReopen(id: string, decision: Decision, audit: AuditInput, attempt: number): void {
    if (this.closing || attempt > REOPEN_ATTEMPTS) {
      if (!this.closing)
        this.deps.log.error('a failed approval decision stays decided: undo gave up', { approval: id });
      return;
    }
    const timer = setTimeout(
      () => {
        this.store.reopen(id, decision, audit).catch((err) => {
          this.deps.log.warn('undoing a failed approval decision failed again', {
            error: err,
            approval: id,
            attempt,
          });
          this.retryReopen(id, decision, audit, attempt + 1);
        });
      },
      REOPEN_BACKOFF_MS * 2 ** (attempt - 1),
    );
    timer.unref();
  }

  /**
   * Stops listening to runs, lets the items being opened finish, and closes the store. The runs
   * stop working first (the composition root closes in that order), so a run that suspends while
   * the process stops still gets its item.
   */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    for (const off of this.unsubscribe) off();
    await Promise.allSettled([...this.opening]);
    await this.store.close();
  }

  /** An item's timeout passed: if still pending, it expires and the run ends. */
  private async expire(id: string): Promise<void> {
    let item: ApprovalItem;
    try {
      const pending = await this.store.get(id);
      if (pending?.state !== 'pending') return;
      item = await this.store.decide(id, {
        action: 'expire',
        actor: 'chokepoint',
        reason: `not decided within ${formatDuration(pending.expiresAt - pending.createdAt)}`,
        at: this.deps.now(),
      });
    } catch (err) {
      if (err instanceof ApprovalConflictError || err instanceof ApprovalNotFoundError) return;
      throw err;
    }
    this.deps.traces?.approval(item);
    await this.deps.money.appendAudit({
      actor: 'chokepoint',
      reason: item.decision?.reason ?? 'expired',
      action: 'approval.expire',
      target: `${item.kind}:${item.runId}`,
      before: { approval: id, state: 'pending' },
      after: { approval: id, state: 'expired', run: this.onTimeout === 'deny' ? 'denied' : 'expired' },
    });
    if (item.kind !== 'run') return;
    await this.runs
      .end(item.runId, this.onTimeout === 'deny' ? 'denied' : 'expired', {
        actor: 'chokepoint',
        reason: item.decision?.reason ?? 'approval expired',
      })
      .catch((err) => this.deps.log.warn('expired approval: run not ended', { error: err, run: item.runId }));
  }

  private async apply(item: ApprovalItem, d: Decision): Promise<void> {
    if (item.kind !== 'run') return;
    const by = { actor: d.actor, reason: d.reason };
    const runId = item.runId;
    switch (d.action) {
      case 'kill':
        await this.runs.kill(runId, by);
        return;
      case 'deny':
        if (item.reason === 'approval_required') {
          await this.resume(item, { gate: 'deny', by });
        } else {
          await this.runs.end(runId, 'denied', by);
        }
        return;
      case 'approve':
        await this.resume(item, {
          by,
          restartClock: item.reason === 'time_box',
          gate: item.reason === 'approval_required' ? 'approve' : undefined,
        });
        return;
      case 'extend': {
        const run = await this.runs.mustGet(runId);
        await this.resume(item, {
          by,
          gate: item.reason === 'approval_required' ? 'approve' : undefined,
          limits: {
            ...(d.addSpend ? { spend: run.limits.spend + d.addSpend } : {}),
            ...(d.addTime ? { time: run.limits.time + d.addTime } : {}),
          },
        });
        return;
      }
    }
  }

  private async resume(item: ApprovalItem, opts: Parameters<RunsPort['resume']>[1]): Promise<void> {
    await this.runs.resume(item.runId, opts);
  }

  /**
   * A run that left its suspension without a decision here (resumed or killed through the runs
   * API or CLI, or ended): its pending item is closed with what happened, so nobody decides it.
   */
  private async supersede(r: RunSummary): Promise<void> {
    if (r.suspensions === 0) return;
    const id = `${r.id}.${r.suspensions}`;
    const item = await this.store.get(id);
    if (item?.state !== 'pending') return;
    const action: Decision['action'] =
      r.state === 'killed'
        ? 'kill'
        : r.state === 'expired'
          ? 'expire'
          : r.state === 'running' || r.state === 'done'
            ? 'approve'
            : 'deny';
    await this.store
      .decide(id, {
        action,
        actor: 'chokepoint',
        reason: `the run was ${r.state === 'running' ? 'resumed' : r.state} outside the approval`,
        at: this.deps.now(),
      })
      .then((decided) => this.deps.traces?.approval(decided))
      .catch((err) => {
        if (!(err instanceof ApprovalConflictError)) throw err;
      });
  }

  /** After a restart: suspended runs without an item (a crash between the suspension and its item) get one. */
  private async reconcile(): Promise<void> {
    let cursor: string | undefined;
    do {
      const page = await this.runs.list({ state: 'suspended', limit: 500, cursor });
      cursor = page.next;
      for (const r of page.runs) {
        const existing = await this.store.get(`${r.id}.${r.suspensions}`);
        if (!existing) await this.openFor(r.id);
      }
    } while (cursor);
  }

  private async itemFor(run: RunRecord): Promise<ApprovalItem> {
    const detail = run.detail ?? {};
    const ledger = await this.deps.money.listLedger({ run: run.id, limit: 1000 });
    const spendByModel: Record<string, Micros> = {};
    let spent = 0;
    let read = 0;
    let input = 0;
    for (const e of ledger) {
      spent += e.cost;
      if (e.kind !== 'model') continue;
      spendByModel[e.name] = (spendByModel[e.name] ?? 0) + e.cost;
      read += e.tokens.cacheRead;
      input += e.tokens.input + e.tokens.cacheRead + e.tokens.cacheWrite5m + e.tokens.cacheWrite1h;
    }
    const journal = await this.runs.journal(run.id);
    const now = this.deps.now();
    const elapsedMs = typeof detail.elapsedMs === 'number' ? detail.elapsedMs : now - run.clockStart;
    const context: ContextWithRequest = {
      spendByModel,
      spent,
      elapsedMs,
      steps: run.steps,
      ...(input > 0 ? { cacheHitRate: Math.round((1000 * read) / input) / 1000 } : {}),
      lastMessages: journal.slice(-LAST_MESSAGES).map(messageOf),
      request: requestOf(run),
    };
    return {
      id: `${run.id}.${run.suspensions}`,
      kind: 'run',
      runId: run.id,
      workflow: run.workflow,
      version: run.version,
      identity: run.identity,
      reason: run.reason ?? 'unknown',
      summary: summarise(run, spent, elapsedMs),
      detail,
      context,
      state: 'pending',
      createdAt: now,
      expiresAt: now + (this.runs.approvalTimeout(run.workflow, run.version) ?? this.timeoutMs),
    };
  }
}

export class ExtendInputError extends Error {
  readonly code = 'invalid_request';
  constructor(
    message: string,
    readonly field: 'spend' | 'time' = 'spend',
  ) {
    super(message);
    this.name = 'ExtendInputError';
  }
}

/** An amount added to a box (or the box it makes) must be a whole, safe, positive number. */
function checkAmount(value: number | undefined, field: 'spend' | 'time', what = 'the amount is'): void {
  if (value === undefined || value === 0) return;
  if (!Number.isSafeInteger(value) || value < 0) {
    const shown = field === 'spend' ? `$${formatUsd(value)}` : `${value} ms`;
    throw new ExtendInputError(
      `${field}: ${what} ${shown}, more than can be represented exactly; extend by a smaller amount`,
      field,
    );
  }
}

function usd(micros: unknown): string {
  return typeof micros === 'number' ? `$${formatUsd(micros)}` : '?';
}

/** Why a run stopped, in words with the numbers. */
export function summarise(run: RunRecord, spent: Micros, elapsedMs: number): string {
  const d = run.detail ?? {};
  switch (run.reason) {
    case 'time_box':
      return `time box: ran ${formatDuration(elapsedMs)} of ${formatDuration(run.limits.time)}`;
    case 'spend_box':
      return `spend box: ${usd(spent)} of ${usd(run.limits.spend)}${
        typeof d.nextCallMax === 'number' ? `, the next call may cost up to ${usd(d.nextCallMax)}` : ''
      }`;
    case 'step_cap':
      return `step cap: ${run.steps} of ${run.limits.steps} steps`;
    case 'budget_exhausted':
      return `budget ${String(d.budget ?? '')} exhausted${
        typeof d.nextCallMax === 'number' ? `: the next call may cost up to ${usd(d.nextCallMax)}` : ''
      }`;
    case 'approval_required':
      return `gate: wants to call ${String(d.tool)} with ${truncate(JSON.stringify(d.input ?? {}), 300)}`;
    default:
      return `suspended: ${run.reason ?? 'unknown'}`;
  }
}

function truncate(s: string, n: number): string {
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}

function messageOf(e: JournalEntry): { role: string; text: string } {
  if (e.kind === 'tool') {
    const r = e.result as { content?: string } | undefined;
    return { role: `tool ${e.name}`, text: truncate(String(r?.content ?? ''), MESSAGE_CHARS) };
  }
  const r = e.result as { text?: string; toolUses?: { name: string; input: unknown }[] } | undefined;
  const calls = (r?.toolUses ?? []).map((u) => `→ ${u.name}(${truncate(JSON.stringify(u.input), 120)})`);
  return {
    role: 'assistant',
    text: truncate([r?.text ?? '', ...calls].filter(Boolean).join(' '), MESSAGE_CHARS),
  };
}
