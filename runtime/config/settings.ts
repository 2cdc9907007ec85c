import type { ScopeKind } from '../identity.ts';
import type { Micros } from '../money.ts';

/*
 * The settings of features, as data. Config is data: it names what a feature needs and the feature
 * imports it from here, never the other way round.
 */

/** Prometheus `/metrics` (observability/metrics.ts). */
export interface MetricsSettings {
  /** `/metrics` without an operator token (default false: a viewer token is needed). */
  public: boolean;
  /** Budgets exported per scope (kind + key). Seats and runs are left out by default. */
  budgetKinds: ScopeKind[];
  /** Distinct values one label may take before the rest go under `_other`. */
  maxLabelValues: number;
  /** Node.js process metrics (memory, CPU, event loop lag, GC). */
  process: boolean;
}

/** How far ledger and provider may differ before it is an alarm: the larger of the two bounds. */
export interface Tolerance {
  /** Share of the larger of the two figures (0.01 = 1%). */
  relative: number;
  /** µ$. */
  absolute: Micros;
}

/** Reconciliation with the provider's bill (reconcile/service.ts). */
export interface ReconcileSettings {
  tolerance: Tolerance;
  /** Divergence alarms are POSTed here too (JSON). */
  webhookUrl?: string;
  /** The daily job (on when provider reports can be fetched). */
  schedule: boolean;
  /** UTC time of day of the daily job, `HH:MM`. */
  at: string;
  /** Instead of daily at `at`: every this many ms (development and tests). */
  everyMs?: number;
}

/** A budget alert threshold: percent of the ceiling, or `refused`. */
export type AlertThreshold = number | 'refused';

/** Budget alerts (alerts/service.ts); URLs and secrets already read from the environment. */
export interface AlertSettings {
  enabled: boolean;
  thresholds: AlertThreshold[];
  kinds: Partial<Record<ScopeKind, AlertThreshold[]>>;
  /** By scope. */
  budgets: Record<string, AlertThreshold[]>;
  forecast: { enabled: boolean; lookbackMs: number; minHistoryMs: number };
  /** Never logged: only a URL's origin is. */
  webhooks: Array<{ url: string; secret: string; name?: string }>;
  slack: Array<{ url: string; name?: string }>;
  retry: { attempts: number; backoffMs: number };
  debounceMs: number;
  sweepMs: number;
}
