import { performance } from 'node:perf_hooks';
import { type AdminReportsOptions, fetchAdminReport } from '../../adapters/admin-reports.ts';
import { emulatorOf } from '../../adapters/providers.ts';
import type { ReconcileSettings } from '../config/settings.ts';
import { newId } from '../ids.ts';
import { redact } from '../log.ts';
import { formatUsd } from '../money.ts';
import {
  compare,
  DEFAULT_TOLERANCE,
  divergenceSummary,
  type LedgerModel,
  percent,
  type Reconciliation,
  type Trigger,
} from '../reconcile/compare.ts';
import {
  dayRange,
  type ProviderFigures,
  parseReport,
  ReportError,
  type ReportFormat,
} from '../reconcile/report.ts';
import { yesterday } from '../reconcile/schedule.ts';
import type { ReconStore } from '../reconcile/store.ts';
import type { Runtime } from '../runtime.ts';
import { correctDay, requestBill } from './corrections.ts';

export type { ReconcileSettings };

export const DEFAULT_RECONCILE: ReconcileSettings = {
  tolerance: DEFAULT_TOLERANCE,
  schedule: true,
  at: '02:00',
};

/** Bad input to a reconciliation (the day, the format): nothing was stored. */
export class ReconcileInputError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
    this.name = 'ReconcileInputError';
  }
}

export interface ReconcileRequest {
  day: string;
  /** The report's text; without it the report is fetched from the provider's Admin API. */
  report?: string;
  format?: ReportFormat;
  /** The provider's figures per request (`request_id,cost_usd[,at]` CSV); without it, the
   * emulator's billing record when the provider is the emulator. */
  requests?: string;
  /**
   * Whose bill it is (a provider's config name): the ledger is compared on that provider's
   * calls only. Default: the report format's (aws-cur → bedrock, gcp-billing → vertex,
   * openai-costs → openai, the Admin API's and csv → the default provider).
   */
  provider?: string;
  trigger: Trigger;
  actor: string;
}

/** The provider kind whose bill each report format is. */
const FORMAT_KIND: Partial<Record<ReportFormat, string>> = {
  'aws-cur': 'bedrock',
  'gcp-billing': 'vertex',
  'openai-costs': 'openai',
};

/** The UTC day before `now`, YYYY-MM-DD. */
export { yesterday };

/**
 * Compares the ledger's cost per UTC day and model with the provider's figures, stores the result,
 * and raises a `reconciliation` alarm (kept with the others, and POSTed to the webhook) when a
 * model or the total differs by more than the tolerance.
 */
export class Reconciler {
  constructor(
    private readonly rt: Runtime,
    readonly store: ReconStore,
    readonly settings: ReconcileSettings,
  ) {}

  /** Where provider reports come from, or undefined without an Admin API key. */
  providerReports(): AdminReportsOptions | undefined {
    const p = this.rt.config.provider;
    const baseUrl = this.rt.emulatorUrl ?? p.baseUrl ?? 'https://api.anthropic.com';
    const adminKey =
      p.adminApiKey ?? (p.kind === 'emulator' ? emulatorOf(this.rt.provider)?.reportsKey : undefined);
    return adminKey ? { baseUrl, adminKey, timeoutMs: 30_000 } : undefined;
  }

  /** Whose bill a report is: the request's provider, else its format's (see ReconcileRequest). */
  providerOf(format: ReportFormat, named?: string): string {
    if (named !== undefined) {
      if (!this.rt.providers.get(named)) {
        throw new ReconcileInputError(
          'provider',
          `no provider named ${JSON.stringify(named)} (known: ${this.rt.providers.names().join(', ')})`,
        );
      }
      return named;
    }
    const kind = FORMAT_KIND[format];
    if (!kind) return this.rt.providers.defaultName;
    return this.rt.providers.ofKind(kind) ?? kind;
  }

  /** The ledger's spend per model for the day (model calls that reached `provider`). */
  async ledger(day: string, provider?: string): Promise<LedgerModel[]> {
    const range = dayRange(day)!;
    const rows = await this.rt.store.spend({
      by: 'model',
      since: range.since,
      until: range.until,
      ...(provider ? { provider } : {}),
    });
    const byModel = new Map<string, LedgerModel>();
    for (const r of rows) {
      if (r.key.startsWith('tool:')) continue;
      const model = this.rt.prices.lookup(r.key, range.since)?.model ?? r.key;
      const m = byModel.get(model) ?? {
        model,
        cost: 0,
        calls: 0,
        tokens: { input: 0, cacheWrite5m: 0, cacheWrite1h: 0, cacheRead: 0, output: 0 },
      };
      m.cost += r.cost;
      m.calls += r.calls;
      for (const k of Object.keys(m.tokens) as Array<keyof typeof m.tokens>) m.tokens[k] += r.tokens[k];
      byModel.set(model, m);
    }
    return [...byModel.values()];
  }

  /** Parses (or fetches) the provider's figures; throws ReconcileInputError / ReportError / AdminReportError. */
  async provider(req: Pick<ReconcileRequest, 'day' | 'report' | 'format'>): Promise<ProviderFigures> {
    const range = dayRange(req.day)!;
    if (req.report !== undefined) {
      return parseReport(req.report, req.day, { format: req.format, prices: this.rt.prices });
    }
    if (req.format === 'csv') {
      throw new ReconcileInputError(
        'format',
        'csv needs a report: the provider serves only its own JSON reports',
      );
    }
    const source = this.providerReports();
    if (!source) {
      throw new ReconcileInputError(
        'report',
        'no report given and no Admin API key to fetch one: pass a report, or set ANTHROPIC_ADMIN_KEY (or provider.adminApiKey)',
      );
    }
    const kind = req.format === 'anthropic-usage' ? 'usage' : 'cost';
    const json = await fetchAdminReport(source, kind, {
      startingAt: new Date(range.since).toISOString(),
      endingAt: new Date(range.until).toISOString(),
    });
    return parseReport(JSON.stringify(json), req.day, {
      format: kind === 'usage' ? 'anthropic-usage' : 'anthropic-cost',
      prices: this.rt.prices,
    });
  }

  /** Runs one reconciliation: nothing is stored unless the report parsed and the ledger was read. */
  async run(req: ReconcileRequest): Promise<Reconciliation> {
    const started = performance.now();
    const range = dayRange(req.day);
    if (!range)
      throw new ReconcileInputError('day', `expected a date like 2026-01-31, got ${JSON.stringify(req.day)}`);
    if (range.since > this.rt.now())
      throw new ReconcileInputError('day', `${req.day} has not started yet (UTC)`);
    const figures = await this.provider(req);
    const provider = this.providerOf(figures.format, req.provider);
    const id = newId('rec');
    // Expired worst-case charges are corrected first, so the comparison reads the corrected ledger.
    const bill = await requestBill(this.rt, req.requests).catch((err) => {
      if (err instanceof ReportError) throw new ReconcileInputError('requests', err.message);
      throw err;
    });
    const corrections = bill ? await correctDay(this.rt.store, req.day, bill, id) : undefined;
    const ledger = await this.ledger(req.day, provider);
    const tol = this.settings.tolerance;
    const result: Reconciliation = {
      id,
      at: this.rt.now(),
      day: req.day,
      provider,
      trigger: req.trigger,
      actor: req.actor,
      source: { kind: req.report === undefined ? 'fetched' : 'report', format: figures.format },
      tolerance: tol,
      ...compare(ledger, figures, tol),
      ...(corrections ? { corrections } : {}),
      durationMs: 0,
    };
    if (result.verdict === 'divergent') {
      const alarm = this.rt.events.raise('reconciliation', `day:${req.day}`, divergenceSummary(result), {
        reconciliation: result.id,
        day: req.day,
        models: result.rows
          .filter((r) => r.verdict === 'divergent')
          .map((r) => ({
            model: r.model,
            ledger_usd: formatUsd(r.ledger),
            provider_usd: formatUsd(r.provider),
            gap_usd: formatUsd(r.diff),
            gap_micros: r.diff,
            relative: percent(r.relative),
          })),
        total: { ledger_usd: formatUsd(result.total.ledger), provider_usd: formatUsd(result.total.provider) },
      });
      result.alarmId = alarm.id;
      if (this.settings.webhookUrl)
        result.webhook = await this.notify(this.settings.webhookUrl, alarm, result);
    }
    result.durationMs = Math.round(performance.now() - started);
    await this.store.save(result);
    this.rt.log.info('reconciled', {
      reconciliation: result.id,
      day: result.day,
      verdict: result.verdict,
      ledger_usd: formatUsd(result.total.ledger),
      provider_usd: formatUsd(result.total.provider),
      source: result.source.kind,
      format: result.source.format,
      ...(corrections
        ? { corrected: corrections.corrected, corrected_usd: formatUsd(corrections.amount) }
        : {}),
      trigger: result.trigger,
      ms: result.durationMs,
    });
    return result;
  }

  /** POSTs the alarm to the webhook (5 s timeout); the outcome is kept with the result. */
  private async notify(
    url: string,
    alarm: ReturnType<Runtime['events']['raise']>,
    r?: Reconciliation,
  ): Promise<NonNullable<Reconciliation['webhook']>> {
    // Webhook URLs often carry a secret (Slack, Teams): only the origin is ever logged or stored.
    const origin = safeOrigin(url);
    const body = {
      type: 'chokepoint.alarm',
      alarm: { ...alarm, at: new Date(alarm.at).toISOString() },
      reconciliation: r && {
        id: r.id,
        day: r.day,
        verdict: r.verdict,
        rows: r.rows.map((x) => ({
          model: x.model,
          ledger_usd: formatUsd(x.ledger),
          provider_usd: formatUsd(x.provider),
          diff_usd: formatUsd(x.diff),
          relative: percent(x.relative),
          verdict: x.verdict,
        })),
        total: {
          ledger_usd: formatUsd(r.total.ledger),
          provider_usd: formatUsd(r.total.provider),
          diff_usd: formatUsd(r.total.diff),
          relative: percent(r.total.relative),
        },
      },
    };
    try {
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': 'chokepoint-reconcile' },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(5_000),
      });
      await res.arrayBuffer().catch(() => undefined);
      if (!res.ok)
        this.rt.log.warn('reconciliation webhook refused the alarm', { webhook: origin, status: res.status });
      return { url: origin, ok: res.ok, status: res.status };
    } catch (err) {
      this.rt.log.warn('reconciliation webhook unreachable', {
        webhook: origin,
        error: (err as Error).message,
      });
      return { url: origin, ok: false, error: (err as Error).message };
    }
  }

  list(filter: { day?: string; trigger?: Trigger; limit?: number } = {}): Promise<Reconciliation[]> {
    return this.store.list({ ...filter, limit: filter.limit ?? 50 });
  }

  get(id: string): Promise<Reconciliation | undefined> {
    return this.store.get(id);
  }

  /** A scheduled run of `day`: any failure is an alarm too (a reconciliation that could not run is news). */
  async scheduled(day: string): Promise<Reconciliation | undefined> {
    try {
      return await this.run({ day, trigger: 'schedule', actor: 'schedule' });
    } catch (err) {
      const why = redact(err instanceof Error ? err.message : String(err)) as string;
      const alarm = this.rt.events.raise(
        'reconciliation',
        `day:${day}`,
        `reconciliation ${day} could not run: ${why}`,
        { day, error: why },
      );
      if (this.settings.webhookUrl) await this.notify(this.settings.webhookUrl, alarm);
      return undefined;
    }
  }
}

function safeOrigin(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return '(invalid url)';
  }
}
