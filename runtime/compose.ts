import { openApprovals } from '../approvals/open.ts';
import type { Approvals } from '../approvals/service.ts';
import { AlertService } from './alerts/service.ts';
import type { Config } from './config/load.ts';
import { SessionBoxes } from './gateway/sessions.ts';
import type { Logger } from './log.ts';
import { Metrics } from './observability/metrics.ts';
import { callObserver } from './observability/observe.ts';
import { openTracer } from './observability/tracing.ts';
import type { ReconcileService } from './reconciler/open.ts';
import { openReconciliation } from './reconciler/open.ts';
import { openRuntime, type Runtime } from './runtime.ts';
import type { RunHost } from './workflows/host.ts';
import { type OpenRunHostOptions, openRunHost } from './workflows/open.ts';

/**
 * THE composition root. Every process — `serve`, `worker`, `mcp --embedded`, the test harness,
 * the benchmarks — builds its services here, in one order:
 *
 *   backend and call path (`openRuntime`: stores, prices, routing, provider, keys)
 *   → observation (Prometheus metrics and the call log) and reconciliation with the provider's bill
 *   → runs (workflows, executor, the runs queue and this process's workers)
 *   → approvals (items, decisions, expiry; they know runs only through `RunsPort`)
 *   → work starts (the queue's runs are taken once approvals listen)
 *
 * and closes them in reverse, here and nowhere else. The faces (HTTP, inbox, MCP, CLI) are given
 * the returned services; nothing is assigned into them afterwards.
 */
export interface Services extends Runtime {
  /** The Prometheus metrics of this process (the call path reports every call to them). */
  readonly metrics: Metrics;
  /** Reconciliation with the provider's bill, and its daily job. */
  readonly reconcile: ReconcileService;
  /** Budget alerts: thresholds, forecasts, refusals, to the inbox, webhooks and Slack. */
  readonly alerts: AlertService;
  /** The workflow runs, when this process hosts workflows. */
  readonly runs?: RunHost;
  /** Approval items and decisions, alongside `runs`. */
  readonly approvals?: Approvals;
  /** Session time boxes of outside agents on the gateway (past its box, a session waits in the inbox). */
  readonly sessions: SessionBoxes;
  /** The named steps of shutdown, in order: for a deadline that says which step did not finish. */
  shutdownSteps(): ShutdownStep[];
  /** Closes everything, in reverse order of opening. */
  close(): Promise<void>;
}

export interface ShutdownStep {
  name: string;
  close(): Promise<unknown> | undefined;
}

export interface ComposeOptions {
  now?: () => number;
  /**
   * Host workflows (runs, approvals, sessions). Default true; `false` for the processes that only
   * need the call path and the store (benchmarks of the gateway alone).
   */
  workflows?: boolean | Pick<OpenRunHostOptions, 'dir' | 'watch' | 'killPollMs' | 'workers' | 'noQueue'>;
}

export async function compose(config: Config, log: Logger, opts: ComposeOptions = {}): Promise<Services> {
  // The metrics read the services at scrape time (runs, approvals): made once those exist.
  let metrics: Metrics | undefined;
  // OpenTelemetry traces, when the OTEL_* variables configure them (config/otel.ts); else none.
  const tracer =
    config.tracing && openTracer(config.tracing, log, (provider) => core.providers.get(provider)?.kind);
  let alerts: AlertService | undefined;
  const core = await openRuntime(config, log, {
    now: opts.now,
    observe: (rt) =>
      callObserver(
        () => rt.log,
        () => metrics,
        () => alerts,
        tracer,
      ),
    traces: tracer,
  });
  let reconcile: ReconcileService | undefined;
  let runs: RunHost | undefined;
  let approvals: Approvals | undefined;
  const sessions = new SessionBoxes(
    core.now,
    core.backend.sessions,
    core.backend.approvals,
    config.approvals.timeoutMs,
  );

  // Each step closes once, whether from `close` or from a shutdown that walks the steps itself.
  const once = (fn: () => Promise<unknown> | undefined) => {
    let p: Promise<unknown> | undefined;
    return () => (p ??= Promise.resolve(fn()));
  };
  const ordered: ShutdownStep[] = [
    // Runs stop first: in-flight calls are aborted and released, live runs handed back (on Redis
    // to the runs queue for another worker); a run that suspends meanwhile still gets its item.
    { name: 'workflow runs (handing live runs back)', close: once(() => runs?.stopWork()) },
    { name: 'approvals', close: once(() => approvals?.close()) },
    { name: 'session time boxes', close: once(() => sessions.close()) },
    { name: 'workflow runs (run store, MCP servers)', close: once(() => runs?.close()) },
    { name: 'budget alerts', close: once(() => alerts?.close()) },
    { name: 'reconciliation', close: once(() => reconcile?.close()) },
    { name: 'traces (the last spans sent)', close: once(() => tracer?.close()) },
    { name: 'the store and the provider', close: once(() => core.close()) },
  ];
  const steps = () => ordered;
  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      for (const step of ordered) await step.close();
    })();
    return closing;
  };

  alerts = new AlertService(config.alerts, {
    store: core.store,
    alarms: core.backend.alarms,
    events: core.events,
    log: core.log,
    now: core.now,
    timeZone: config.budgets.timeZone,
  }).start();
  try {
    reconcile = await openReconciliation(core, config.reconcile);
  } catch (err) {
    await close().catch(() => {});
    throw err;
  }
  if (opts.workflows !== false) {
    try {
      // Recovery is the runs queue's: at start every running run nobody works on is queued
      // again, and on Redis BullMQ's stalled-job check hands a dead worker's runs on.
      runs = await openRunHost(core, { ...(opts.workflows === true ? {} : opts.workflows), recover: false });
      approvals = await openApprovals(core, runs);
      await runs.startWork();
    } catch (err) {
      await close().catch(() => {});
      throw err;
    }
  }

  const services: Services = Object.create(core, {
    metrics: { get: () => metrics, enumerable: true },
    reconcile: { value: reconcile, enumerable: true },
    alerts: { value: alerts, enumerable: true },
    runs: { value: runs, enumerable: true },
    approvals: { value: approvals, enumerable: true },
    sessions: { value: sessions, enumerable: true },
    shutdownSteps: { value: steps },
    close: { value: close },
  });
  metrics = new Metrics(services, config.metrics);
  return Object.freeze(services);
}
