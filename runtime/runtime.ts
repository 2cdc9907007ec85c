import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { Provider } from '../adapters/provider.ts';
import { type Emulator, emulatorOf, emulatorSiblings, openProvider } from '../adapters/providers.ts';
import { KeyRing } from './auth/keys.ts';
import { loadOperators, type OperatorSetup } from './auth/operators.ts';
import { openBackend } from './backends/open.ts';
import type { Backend } from './backends/ports.ts';
import type { Broadcast } from './broadcast.ts';
import { type Config, DEFAULT_PROVIDER } from './config/load.ts';
import { EventLog } from './events.ts';
import { type CallDeps, CallPath } from './gateway/call.ts';
import type { CallObserver } from './gateway/observe.ts';
import { ProviderSet } from './gateway/providers.ts';
import { Router } from './gateway/routing.ts';
import { StreamTracker } from './gateway/streams.ts';
import { type Identity, scopesOf } from './identity.ts';
import type { Logger } from './log.ts';
import { PriceTable } from './pricing/pricing.ts';
import { keepSettlements } from './settlements.ts';
import type { ApprovalItem } from './store/approvals.ts';
import { privateDir } from './store/data-dir.ts';
import { recoverJournals } from './store/lease-journal.ts';
import { type LeasedMoneyStore, openLeases } from './store/leases.ts';
import type { BudgetSpec, LedgerEntry, LedgerInput, MoneyStore, Reservation } from './store/port.ts';
import type { RunRecord } from './store/runs.ts';

/** What the call path reports to, once per call (Prometheus: observability/metrics.ts). */
export type CallMetrics = CallObserver;

/**
 * Where runs and approvals report their spans (OpenTelemetry traces, when configured:
 * observability/tracing.ts). Absent when tracing is off: callers check, nothing else is paid.
 */
export interface RunTraces {
  /** A run that has ended (done, failed, killed, denied, expired). */
  run(record: RunRecord): void;
  /** An approval item that has been decided (or expired). */
  approval(item: ApprovalItem): void;
}

/**
 * Everything a running Chokepoint holds, opened once: config, store, prices, routing, the
 * provider client, operators. The HTTP server, the workflow executor, the MCP server and the CLI
 * all work on one of these.
 */
export interface Runtime {
  config: Config;
  log: Logger;
  /** Every store and queue of the configured kind (runtime/backends): the one seam. */
  backend: Backend;
  /** The backend's money store. */
  store: MoneyStore;
  /** The price table and routing in force; replaced whole (never edited) by `swapPrices`. */
  readonly prices: PriceTable;
  readonly router: Router;
  /** Puts a reloaded price table and routing in force: the next call uses them. */
  swapPrices(prices: PriceTable, router: Router): void;
  streams: StreamTracker;
  events: EventLog;
  /** The default provider (adapters/providers.ts opens the one `provider.kind` names). */
  provider: Provider;
  /** Every provider, by name: the default one (`anthropic`) and the config's `providers:`. */
  providers: ProviderSet;
  /** The call path: every model call and priced tool call goes through it. */
  calls: CallPath;
  keys: KeyRing;
  operatorSetup: OperatorSetup;
  /** Messages to every process sharing the backend (run changes for live views). */
  broadcast: Broadcast;
  /** Set when the provider is the emulator (the in-process one also sets `emulator`). */
  emulatorUrl?: string;
  emulator?: Emulator;
  /** The in-process emulator's admin key (its cost and usage reports), random per start. */
  emulatorAdminKey?: string;
  /** The emulator's API key (random per start for the in-process one). */
  emulatorApiKey?: string;
  now(): number;
  /** The fullest budget of the identity, as a share of its ceiling (0..1). */
  utilisation(identity: Identity): Promise<number>;
  recordLedger(entry: LedgerInput): Promise<LedgerEntry>;
  /** Settles, retrying; a settlement the store cannot take is kept on disk and replayed: never lost. */
  settleSafely(r: Reservation, entry: LedgerInput): Promise<LedgerEntry | undefined>;
  releaseSafely(r: Reservation, entry: LedgerInput): Promise<LedgerEntry | undefined>;
  /** Traces of runs and approvals; undefined when tracing is off. */
  readonly traces?: RunTraces;
  close(): Promise<void>;
}

/**
 * Budget leases over the backend's money store when configured. They keep a journal under the data
 * directory; a process that died with calls in flight on its slices left them there, and they are
 * settled at start even with leases now off.
 */
async function leasesOf(
  config: Config,
  backend: Backend,
  deps: { now: () => number; log: Logger },
): Promise<LeasedMoneyStore | undefined> {
  // A journal belongs to its store: the embedded file is this data folder's; a Redis store is its
  // URL and prefix (a folder shared by processes of different stores never mixes their journals).
  const { backend: kind, redisUrl, prefix } = config.store;
  const journalDir = join(
    config.dataDir,
    'leases',
    kind === 'embedded'
      ? 'embedded'
      : `redis-${createHash('sha256').update(`${redisUrl} ${prefix}`).digest('hex').slice(0, 16)}`,
  );
  if (!config.store.leases) {
    await recoverJournals(backend.money, journalDir, deps);
    return undefined;
  }
  return openLeases(backend.money, config.store.leases, {
    ...deps,
    broadcast: backend.broadcast,
    journalDir,
    reservationTtlMs: config.store.reservationTtlMs,
  });
}

export async function openRuntime(
  config: Config,
  log: Logger,
  opts: {
    now?: () => number;
    backend?: Backend;
    /** The sink every call is reported to (the metrics and the call log), made once the core exists. */
    observe?: (rt: Runtime) => CallObserver;
    /** Traces of runs and approvals (the calls' go through `observe`). */
    traces?: RunTraces;
  } = {},
): Promise<Runtime> {
  const now = opts.now ?? Date.now;
  // A backend handed in stays its opener's to close; one opened here closes with the runtime.
  const backend = opts.backend ?? (await openBackend(config, { now, log }));
  const ownBackend = !opts.backend;
  let leases: LeasedMoneyStore | undefined;
  try {
    leases = await leasesOf(config, backend, { now, log });
  } catch (err) {
    if (ownBackend) await backend.close().catch(() => {});
    throw err;
  }
  const store: MoneyStore = leases ?? backend.money;
  let keys: KeyRing;
  try {
    keys = await KeyRing.open(backend.keys);
  } catch (err) {
    if (ownBackend) await backend.close().catch(() => {});
    throw err;
  }
  const operatorSetup = loadOperators(config);
  const prices = new PriceTable(config.prices);
  let providers: ProviderSet;
  try {
    providers = await openProviders(config, log);
  } catch (err) {
    if (ownBackend) await backend.close().catch(() => {});
    throw err;
  }
  const provider = providers.default;
  const emulator = emulatorOf(provider);
  let observer: CallObserver | undefined;

  const rt: Runtime = {
    config,
    log,
    backend,
    store,
    prices,
    router: new Router(config.routing, prices),
    streams: new StreamTracker(),
    events: new EventLog(log, backend.alarms),
    provider,
    providers,
    calls: new CallPath(
      callDeps(
        () => rt,
        providers,
        () => observer,
      ),
    ),
    keys,
    operatorSetup,
    broadcast: backend.broadcast,
    ...(emulator
      ? {
          emulatorUrl: emulator.url,
          emulatorApiKey: emulator.apiKey,
          ...(emulator.instance ? { emulator: emulator.instance } : {}),
          ...(emulator.adminKey ? { emulatorAdminKey: emulator.adminKey } : {}),
        }
      : {}),
    now,
    swapPrices(prices, router) {
      // On the core object itself: the services (and every face) read through to it.
      Object.assign(rt, { prices, router });
    },
    async utilisation(identity) {
      let max = 0;
      for (const scope of scopesOf(identity)) {
        const b = await store.getBudget(scope);
        if (b && b.ceiling > 0) max = Math.max(max, (b.spent + b.reserved) / b.ceiling);
      }
      return max;
    },
    recordLedger: (entry) => store.appendLedger(entry),
    settleSafely: (r, entry) => settlements.settle(r, entry),
    releaseSafely: (r, entry) => settlements.release(r, entry),
    ...(opts.traces ? { traces: opts.traces } : {}),
    async close() {
      // Idle slices go back and the settlements in flight are written before the store closes.
      await leases?.stop();
      await providers.close();
      // Keys, alarms and every other port are the backend's: it closes them.
      if (ownBackend) await backend.close();
    },
  };

  const settlements = keepSettlements(rt, join(config.dataDir, 'unsettled.jsonl'));
  const close = rt.close;
  rt.close = async () => {
    await settlements.stop();
    await close();
  };

  observer = opts.observe?.(rt);

  await settlements.replay();
  return rt;
}

/**
 * Every provider, through the registry (adapters/providers.ts): the default one `provider.kind`
 * names, the config's `providers:`, and on the emulator its Bedrock, Vertex and OpenAI faces
 * under those names unless the config names them. One that fails to open closes the others.
 */
async function openProviders(config: Config, log: Logger): Promise<ProviderSet> {
  const common = {
    dataDir: () => {
      privateDir(config.dataDir);
      return config.dataDir;
    },
    warn: (message: string, fields?: Record<string, unknown>) => log.warn(message, fields),
  };
  const opened = new Map<string, Provider>();
  try {
    const main = await openProvider({
      kind: config.provider.kind,
      baseUrl: config.provider.baseUrl,
      apiKey: config.provider.apiKey,
      timeoutMs: config.provider.timeoutMs,
      name: DEFAULT_PROVIDER,
      ...common,
    });
    opened.set(DEFAULT_PROVIDER, main);
    for (const [name, p] of Object.entries(config.providers)) {
      opened.set(name, await openProvider({ ...p, name, ...common }));
    }
    for (const s of emulatorSiblings(main)) {
      if (opened.has(s.name)) continue;
      opened.set(s.name, await openProvider({ ...s, timeoutMs: config.provider.timeoutMs, ...common }));
    }
  } catch (err) {
    await Promise.allSettled([...opened.values()].map((p) => p.close()));
    throw err;
  }
  const budgets = new Map<string, BudgetSpec>();
  if (config.provider.budget) budgets.set(DEFAULT_PROVIDER, config.provider.budget);
  for (const [name, p] of Object.entries(config.providers)) if (p.budget) budgets.set(name, p.budget);
  return new ProviderSet(opened, DEFAULT_PROVIDER, budgets);
}

/**
 * What the call path is handed: the runtime's parts, read live (a config reload swaps `prices`
 * and `router`), and the observation sink (the metrics and the call log).
 */
function callDeps(
  rt: () => Runtime,
  providers: ProviderSet,
  observed: () => CallObserver | undefined,
): CallDeps {
  const observer: CallObserver = {
    call: (call, record, timing, prefixHash) => observed()?.call(call, record, timing, prefixHash),
    rejected: (requestId, code, status) => observed()?.rejected(requestId, code, status),
    tool: (call, seen, timing) => observed()?.tool?.(call, seen, timing),
  };
  let policy: CallDeps['policy'] | undefined;
  return {
    get store() {
      return rt().store;
    },
    get prices() {
      return rt().prices;
    },
    get router() {
      return rt().router;
    },
    get streams() {
      return rt().streams;
    },
    get events() {
      return rt().events;
    },
    get log() {
      return rt().log;
    },
    providers,
    observer,
    // Not reloaded (gateway and provider settings need a restart): read once.
    get policy() {
      const c = rt().config;
      policy ??= {
        inferenceGeo: c.gateway.inferenceGeo,
        countTokensNearCeiling: c.provider.countTokensNearCeiling,
      };
      return policy;
    },
    get rateLimits() {
      return rt().config.rateLimits;
    },
    now: () => rt().now(),
    utilisation: (identity) => rt().utilisation(identity),
    settleSafely: (r, entry) => rt().settleSafely(r, entry),
    releaseSafely: (r, entry) => rt().releaseSafely(r, entry),
  };
}
