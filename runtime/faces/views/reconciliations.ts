import { formatUsd } from '../../money.ts';
import {
  type CorrectionSummary,
  percent,
  type Reconciliation,
  type ReconRow,
  type RowVerdict,
} from '../../reconcile/compare.ts';
import type { TokenCounts } from '../../store/port.ts';
import { type IsoTime, iso } from './format.ts';

/** One model's line of a reconciliation: the ledger against the provider's bill. */
export interface ReconRowView {
  model: string;
  ledger_usd: string;
  provider_usd: string;
  diff_usd: string;
  relative: number | null;
  relative_pct: string;
  allowed_usd: string;
  verdict: RowVerdict;
  calls: number;
  ledger_micros: number;
  provider_micros: number;
  diff_micros: number;
  ledger_tokens?: TokenCounts;
  provider_tokens?: TokenCounts;
}

function reconRowView(r: ReconRow): ReconRowView {
  return {
    model: r.model,
    ledger_usd: formatUsd(r.ledger),
    provider_usd: formatUsd(r.provider),
    diff_usd: formatUsd(r.diff),
    relative: r.relative,
    relative_pct: percent(r.relative),
    allowed_usd: formatUsd(r.allowed),
    verdict: r.verdict,
    calls: r.calls,
    ledger_micros: r.ledger,
    provider_micros: r.provider,
    diff_micros: r.diff,
    ...(r.ledgerTokens ? { ledger_tokens: r.ledgerTokens } : {}),
    ...(r.providerTokens ? { provider_tokens: r.providerTokens } : {}),
  };
}

/** What a reconciliation did to the day's expired charges: how many it corrected and by how much. */
export interface CorrectionsView {
  source: CorrectionSummary['source'];
  expired: number;
  corrected: number;
  /** Sum of the corrections: negative when the worst cases charged were more than the bill. */
  corrected_usd: string;
  corrected_micros: number;
  already_corrected: number;
  left_uncovered: number;
  left_ambiguous: number;
}

function correctionsView(c: CorrectionSummary): CorrectionsView {
  return {
    source: c.source,
    expired: c.expired,
    corrected: c.corrected,
    corrected_usd: formatUsd(c.amount),
    corrected_micros: c.amount,
    already_corrected: c.already,
    left_uncovered: c.uncovered,
    left_ambiguous: c.ambiguous,
  };
}

/** A reconciliation as `/api/reconciliations` serves it (`GET /:id` and `POST` answer one). */
export interface ReconciliationView {
  id: string;
  at: IsoTime;
  day: string;
  /** Whose bill was compared (a provider's name); the default provider for older results. */
  provider: string;
  verdict: Reconciliation['verdict'];
  trigger: Reconciliation['trigger'];
  actor: string;
  source: Reconciliation['source'];
  tolerance: { relative: number; absolute_usd: string };
  rows: ReconRowView[];
  total: ReconRowView;
  accounts: Record<string, string>;
  /** The day's expired worst-case charges corrected per request id (when per-request figures were known). */
  corrections?: CorrectionsView;
  alarm_id?: string;
  webhook?: Reconciliation['webhook'];
  duration_ms: number;
}

export function reconciliationView(r: Reconciliation): ReconciliationView {
  return {
    id: r.id,
    at: iso(r.at),
    day: r.day,
    provider: r.provider ?? 'anthropic',
    verdict: r.verdict,
    trigger: r.trigger,
    actor: r.actor,
    source: r.source,
    tolerance: { relative: r.tolerance.relative, absolute_usd: formatUsd(r.tolerance.absolute) },
    rows: r.rows.map(reconRowView),
    total: reconRowView(r.total),
    accounts: Object.fromEntries(Object.entries(r.accounts).map(([k, v]) => [k, formatUsd(v)])),
    ...(r.corrections ? { corrections: correctionsView(r.corrections) } : {}),
    ...(r.alarmId ? { alarm_id: r.alarmId } : {}),
    ...(r.webhook ? { webhook: r.webhook } : {}),
    duration_ms: r.durationMs,
  };
}

/** `GET /api/reconciliations`: the latest, and when the scheduled one runs next. */
export interface ReconciliationsResponse {
  reconciliations: ReconciliationView[];
  schedule: { kind: string; next_at: IsoTime | null };
}
