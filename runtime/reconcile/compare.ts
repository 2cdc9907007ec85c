import type { Tolerance } from '../config/settings.ts';
import { formatUsd, type Micros, usd } from '../money.ts';
import type { TokenCounts } from '../store/port.ts';
import type { ProviderFigures, ReportFormat } from './report.ts';

/** What a reconciliation did to the day's `expired` charges (see requests.ts). */
export interface CorrectionSummary {
  /** Where the per-request figures came from. */
  source: 'emulator' | 'csv';
  /** Expired entries of the day. */
  expired: number;
  /** Corrected by this reconciliation, and the sum of their corrections (µ$, negative: credited). */
  corrected: number;
  amount: Micros;
  /** Corrected before (an earlier reconciliation, another replica): left as they were. */
  already: number;
  /** Left at their worst case: not billed, and the bill does not certainly cover their time. */
  uncovered: number;
  /** Left at their worst case: their request id has several expired entries. */
  ambiguous: number;
}

export type { Tolerance };

/** Relative first (1%), with a one-cent floor so rounding never alarms: a 100% gap of any size above a cent does. */
export const DEFAULT_TOLERANCE: Tolerance = { relative: 0.01, absolute: 10_000 };

/** `match`: equal to the µ$; `within`: a difference inside the tolerance; `divergent`: outside it. */
export type RowVerdict = 'match' | 'within' | 'divergent';

export interface ReconRow {
  model: string;
  ledger: Micros;
  provider: Micros;
  /** provider − ledger: positive when the bill is higher than what the gateway recorded. */
  diff: Micros;
  /** diff / provider (null when the provider figure is 0). */
  relative: number | null;
  /** The allowed |diff| for this row (µ$). */
  allowed: Micros;
  verdict: RowVerdict;
  /** Calls in the ledger (those that reached the provider). */
  calls: number;
  ledgerTokens?: TokenCounts;
  providerTokens?: TokenCounts;
}

export type Trigger = 'cli' | 'api' | 'schedule';

export interface Reconciliation {
  id: string;
  /** When it ran (epoch ms). */
  at: number;
  /** The UTC day compared (YYYY-MM-DD). */
  day: string;
  /** Whose bill was compared (a provider's config name); absent in records from before the provider mix. */
  provider?: string;
  trigger: Trigger;
  actor: string;
  /** Where the provider figures came from: a report handed in, or fetched from the provider. */
  source: { kind: 'report' | 'fetched'; format: ReportFormat };
  tolerance: Tolerance;
  rows: ReconRow[];
  total: ReconRow;
  /** Provider cost per API key or workspace when the report had them (µ$). */
  accounts: Record<string, Micros>;
  verdict: 'ok' | 'divergent';
  /** Expired worst-case charges of the day corrected per request id (when per-request figures were known). */
  corrections?: CorrectionSummary;
  /** The alarm raised for a divergence. */
  alarmId?: string;
  webhook?: { url: string; ok: boolean; status?: number; error?: string };
  durationMs: number;
}

export interface LedgerModel {
  model: string;
  cost: Micros;
  calls: number;
  tokens: TokenCounts;
}

function row(
  model: string,
  ledger: Micros,
  provider: Micros,
  calls: number,
  tol: Tolerance,
  tokens: { ledger?: TokenCounts; provider?: TokenCounts } = {},
): ReconRow {
  const diff = provider - ledger;
  const allowed = Math.max(
    tol.absolute,
    Math.floor(tol.relative * Math.max(Math.abs(provider), Math.abs(ledger))),
  );
  const verdict: RowVerdict = diff === 0 ? 'match' : Math.abs(diff) <= allowed ? 'within' : 'divergent';
  return {
    model,
    ledger,
    provider,
    diff,
    relative: provider === 0 ? null : diff / provider,
    allowed,
    verdict,
    calls,
    ...(tokens.ledger ? { ledgerTokens: tokens.ledger } : {}),
    ...(tokens.provider ? { providerTokens: tokens.provider } : {}),
  };
}

/** Ledger vs provider per model and in total; rows sorted by the size of their difference. */
export function compare(
  ledger: LedgerModel[],
  provider: ProviderFigures,
  tol: Tolerance,
): Pick<Reconciliation, 'rows' | 'total' | 'verdict' | 'accounts'> {
  const byModel = new Map(ledger.map((l) => [l.model, l]));
  const models = new Set([...byModel.keys(), ...provider.models.keys()]);
  const rows: ReconRow[] = [];
  for (const m of models) {
    const l = byModel.get(m);
    const p = provider.models.get(m);
    rows.push(
      row(m, l?.cost ?? 0, p?.cost ?? 0, l?.calls ?? 0, tol, {
        ledger: l?.tokens,
        provider: p?.tokens,
      }),
    );
  }
  rows.sort((a, b) => Math.abs(b.diff) - Math.abs(a.diff) || (a.model < b.model ? -1 : 1));
  const sum = (f: (r: ReconRow) => number) => rows.reduce((s, r) => s + f(r), 0);
  const total = row(
    'total',
    sum((r) => r.ledger),
    sum((r) => r.provider),
    sum((r) => r.calls),
    tol,
  );
  const verdict =
    total.verdict === 'divergent' || rows.some((r) => r.verdict === 'divergent') ? 'divergent' : 'ok';
  return { rows, total, verdict, accounts: Object.fromEntries(provider.accounts) };
}

/** `+12.5%`, `-0.03%`, `n/a` when the provider figure is 0. */
export function percent(relative: number | null): string {
  if (relative === null) return 'n/a';
  const p = relative * 100;
  const digits = Math.abs(p) >= 10 || p === 0 ? 1 : Math.abs(p) >= 0.1 ? 2 : 4;
  return `${p > 0 ? '+' : ''}${p.toFixed(digits)}%`;
}

const signed = (micros: Micros) =>
  `${micros > 0 ? '+' : micros < 0 ? '-' : ''}${formatUsd(Math.abs(micros))}`;

/** One line per divergent model, for alarms and logs. */
export function divergenceSummary(r: Pick<Reconciliation, 'day' | 'rows' | 'total'>): string {
  const bad = r.rows.filter((x) => x.verdict === 'divergent');
  const parts = (bad.length ? bad : [r.total]).map(
    (x) =>
      `${x.model}: ledger ${usd(x.ledger)}, provider ${usd(x.provider)}, gap ${signed(x.diff)} USD (${percent(x.relative)})`,
  );
  return `reconciliation ${r.day}: the provider's figures diverge from the ledger beyond tolerance: ${parts.join('; ')}`;
}

/** The table people read: model, ledger, provider, difference, relative difference, verdict. */
export function reconTable(r: Pick<Reconciliation, 'rows' | 'total'>): string[][] {
  const line = (x: ReconRow) => [
    x.model,
    formatUsd(x.ledger),
    formatUsd(x.provider),
    signed(x.diff),
    percent(x.relative),
    x.verdict,
  ];
  return [
    ['MODEL', 'LEDGER USD', 'PROVIDER USD', 'DIFF USD', 'DIFF %', 'VERDICT'],
    ...r.rows.map(line),
    line(r.total),
  ];
}
