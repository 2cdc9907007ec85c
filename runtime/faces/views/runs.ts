import { formatUsd, type Micros } from '../../money.ts';
import type { Budget } from '../../store/port.ts';
import type { JournalEntry, RunLimits, RunRecord, RunSummary } from '../../store/runs.ts';
import { type IsoTime, iso } from './format.ts';

/**
 * Runs as `/api/runs` serves them. A run is the run record without its XState snapshot, times as
 * ISO strings, the limits with the spend box in dollars and µ$, plus `spent_usd`/`spent_micros`
 * from its `run:<id>` budget. `detail` (why a run stopped) is kept as the executor wrote it: money
 * in µ$, times in ms.
 */

export interface RunLimitsView {
  spend_usd: string;
  spend_micros: Micros;
  time_ms: number;
  steps: number;
}

type RunTimes = 'startedAt' | 'clockStart' | 'updatedAt' | 'endedAt';

export type RunView = Omit<RunRecord, 'snapshot' | 'input' | 'limits' | RunTimes> & {
  /** Absent from list pages (a run summary carries no input). */
  input?: unknown;
  limits: RunLimitsView;
  spent_usd: string;
  spent_micros: Micros;
  startedAt: IsoTime;
  clockStart: IsoTime;
  updatedAt: IsoTime;
  endedAt: IsoTime | null;
};

export function runLimitsView(l: RunLimits): RunLimitsView {
  return { spend_usd: formatUsd(l.spend), spend_micros: l.spend, time_ms: l.time, steps: l.steps };
}

export function runView(r: RunSummary | RunRecord, budget?: Budget): RunView {
  const { snapshot: _s, limits, startedAt, clockStart, updatedAt, endedAt, ...rest } = r as RunRecord;
  return {
    ...rest,
    limits: runLimitsView(limits),
    spent_usd: formatUsd(budget?.spent ?? 0),
    spent_micros: budget?.spent ?? 0,
    startedAt: iso(startedAt),
    clockStart: iso(clockStart),
    updatedAt: iso(updatedAt),
    endedAt: iso(endedAt),
  };
}

/** A run's `run:<id>` budget on its detail page (no budget yet: nothing spent, no ceiling). */
export interface RunSpendView {
  budget: string;
  spent_usd: string;
  reserved_usd: string;
  ceiling_usd: string | null;
  spent_micros: Micros;
  reserved_micros: Micros;
  ceiling_micros: Micros | null;
}

export function runSpendView(runId: string, b: Budget | undefined): RunSpendView {
  return {
    budget: `run:${runId}`,
    spent_usd: formatUsd(b?.spent ?? 0),
    reserved_usd: formatUsd(b?.reserved ?? 0),
    ceiling_usd: b ? formatUsd(b.ceiling) : null,
    spent_micros: b?.spent ?? 0,
    reserved_micros: b?.reserved ?? 0,
    ceiling_micros: b?.ceiling ?? null,
  };
}

/** One completed model or tool call of a run, with its ledger id and its result. */
export interface JournalView {
  kind: 'model' | 'tool';
  name: string;
  at: IsoTime;
  ledgerId: string | null;
  key: string;
  result: unknown;
}

export function journalView(e: JournalEntry): JournalView {
  return {
    kind: e.kind,
    name: e.name,
    at: iso(e.at),
    ledgerId: e.ledgerId ?? null,
    key: e.key,
    result: e.result,
  };
}

/** `GET /api/runs`. */
export interface RunsResponse {
  runs: RunView[];
  next?: string;
}

/** `POST /api/runs`, `POST /api/runs/:id/{kill,resume}`. */
export interface RunResponse {
  run: RunView;
}

/** `GET /api/runs/:id`. */
export interface RunDetailResponse {
  run: RunView;
  journal: JournalView[];
  spend: RunSpendView;
}

/** A `run` event of `/api/events`: enough for a page to update a row. */
export interface RunEventView {
  id: string;
  workflow: string;
  state: string;
  reason: string | null;
  steps: number;
}

export function runEventView(r: RunSummary): RunEventView {
  return { id: r.id, workflow: r.workflow, state: r.state, reason: r.reason ?? null, steps: r.steps };
}
