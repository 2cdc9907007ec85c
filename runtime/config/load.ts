import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { parseScope, type ScopeKind } from '../identity.ts';
import { BUILT_IN_PRICES, type PriceEntry } from '../pricing/prices.ts';
import type { BudgetSpec } from '../store/port.ts';
import { ConfigError } from './error.ts';
import { type TracingSettings, tracingFromEnv } from './otel.ts';
import { configSchema, type ParsedConfig } from './schema.ts';
import type { AlertSettings, MetricsSettings, ReconcileSettings } from './settings.ts';

/** The resolved configuration: file + environment + defaults, validated. */
export interface Config {
  /** The file it came from, if any. */
  file?: string;
  server: ParsedConfig['server'];
  dataDir: string;
  store: {
    backend: 'embedded' | 'redis';
    redisUrl?: string;
    prefix: string;
    /** Partitions of the Redis money store (0: one slot). */
    partitions: number;
    reservationTtlMs: number;
    /** Budget leases (runtime/store/leases.ts LeaseOptions), or false for per-call admission. */
    leases:
      | false
      | {
          callsPerLease: number;
          maxLease: number;
          share: number;
          ttlMs: number;
          idleMs: number;
          validityMs: number;
          shipMs: number;
        };
  };
  provider: {
    /** A kind adapters/providers.ts knows: `emulator`, `anthropic`, … */
    kind: string;
    baseUrl?: string;
    /** Provider credential; never logged, never returned by any API. */
    apiKey?: string;
    timeoutMs: number;
    countTokensNearCeiling: boolean;
    /** Admin API key for the cost and usage reports; never logged, never returned by any API. */
    adminApiKey?: string;
    /** A budget of its own, admitted as `provider:anthropic`. */
    budget?: BudgetSpec;
  };
  /**
   * The providers besides the default one, by name. The default (`provider:`) is named
   * `anthropic`; on the emulator, `bedrock`, `vertex` and `openai` are added against it unless
   * configured here.
   */
  providers: Record<string, NamedProvider>;
  budgets: { timeZone: string; defaults: Record<ScopeKind, BudgetSpec> };
  routing: ParsedConfig['routing'];
  /** The gateway's admission policy: max_tokens fitting, the organisation's inference geo. */
  gateway: ParsedConfig['gateway'];
  workflowsDir: string;
  workflows: { watch: boolean; runAs: { team: string; env: string }; leaseMs: number };
  approvals: { timeoutMs: number; onTimeout: 'expire' | 'deny' };
  workers: { enabled: boolean; concurrency: number; perWorkflow: Record<string, number> };
  /** MCP tool calls of workflows: result size cap, call and connect timeouts. */
  mcp: {
    maxResultBytes: number;
    timeoutMs: number;
    connectTimeoutMs: number;
    retryMs: number;
    runAs?: string;
  };
  operators: ParsedConfig['auth']['operators'];
  /** Inbox sessions: idle timeout and absolute lifetime (ms). */
  sessions: { idleMs: number; lifetimeMs: number };
  /** /metrics: token or public, budget kinds exported, label bounds. */
  metrics: MetricsSettings;
  /** Reconciliation with the provider's bill: tolerance, webhook, the daily job. */
  reconcile: ReconcileSettings;
  /** Budget alerts: thresholds, forecasts, webhooks and Slack. */
  alerts: AlertSettings;
  prices: PriceEntry[];
  /** Rate limits (`rateLimits:`): requests, tokens or calls in flight per rolling window and scope. */
  rateLimits: ParsedConfig['rateLimits'];
  logLevel: ParsedConfig['log']['level'];
  /** From CHOKEPOINT_ADMIN_TOKEN: lets the server run and be scripted headless. */
  adminToken?: string;
  /** OpenTelemetry traces, from the OTEL_* variables (config/otel.ts); absent = off. */
  tracing?: TracingSettings;
}

/** One configured provider: its kind, endpoint and credential, and the kind's own settings. */
export interface NamedProvider {
  kind: string;
  baseUrl?: string;
  /** Never logged, never returned by any API. */
  apiKey?: string;
  timeoutMs: number;
  /** The kind's own fields (`region`, `project`, …), `env:VAR` values read. */
  options: Record<string, unknown>;
  /** A budget of its own (a committed spend), admitted as `provider:<name>`. */
  budget?: BudgetSpec;
}

/** The name of the default provider (`provider:` in the config). */
export const DEFAULT_PROVIDER = 'anthropic';

/** Environment variables that hold a kind's credential when `apiKey` is not set. */
const KEY_ENV: Record<string, string> = { openai: 'OPENAI_API_KEY' };

function namedProviders(
  c: ParsedConfig,
  env: NodeJS.ProcessEnv,
  defaultTimeoutMs: number,
  problems: string[],
): Record<string, NamedProvider> {
  const out: Record<string, NamedProvider> = {};
  for (const [name, p] of Object.entries(c.providers)) {
    const at = `providers.${name}`;
    if (name === DEFAULT_PROVIDER) {
      problems.push(
        `${at}: "${DEFAULT_PROVIDER}" is the default provider's name (set it under provider:); choose another`,
      );
      continue;
    }
    const { kind, baseUrl, apiKey, timeout, budget, ...rest } = p;
    const options: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(rest)) {
      options[k] =
        typeof v === 'string' && v.startsWith('env:') ? fromEnv(env, v.slice(4), `${at}.${k}`, problems) : v;
    }
    let key = apiKey?.startsWith('env:') ? fromEnv(env, apiKey.slice(4), `${at}.apiKey`, problems) : apiKey;
    if (key === undefined && KEY_ENV[kind]) key = env[KEY_ENV[kind]!] || undefined;
    out[name] = {
      kind,
      ...(baseUrl ? { baseUrl } : {}),
      ...(key ? { apiKey: key } : {}),
      timeoutMs: (timeout as number | undefined) ?? defaultTimeoutMs,
      options,
      ...(budget ? { budget: { owner: 'platform', ...(budget as BudgetSpec) } } : {}),
    };
  }
  const known = new Set([DEFAULT_PROVIDER, ...Object.keys(out), ...Object.keys(c.providers)]);
  const check = (names: string[] | undefined, at: string) => {
    for (const [i, n] of (names ?? []).entries()) {
      if (!known.has(n))
        problems.push(`${at}.${i}: unknown provider "${n}" (known: ${[...known].join(', ')})`);
    }
  };
  for (const [cls, names] of Object.entries(c.routing.providers)) {
    if (!c.routing.classes[cls])
      problems.push(`routing.providers.${cls}: no model class "${cls}" in routing.classes`);
    check(names, `routing.providers.${cls}`);
  }
  for (const [i, r] of c.routing.rules.entries()) check(r.providers, `routing.rules.${i}.providers`);
  return out;
}

/** `alerts:` with `env:VAR` URLs and secrets read; a URL read from the environment is checked too. */
function alertSettings(c: ParsedConfig, env: NodeJS.ProcessEnv, problems: string[]): AlertSettings {
  const a = c.alerts;
  const read = (v: string, at: string) => (v.startsWith('env:') ? fromEnv(env, v.slice(4), at, problems) : v);
  const url = (v: string, at: string) => {
    const u = read(v, at);
    if (u !== undefined && !/^https?:\/\//.test(u))
      problems.push(`${at}: expected an http(s) URL${v.startsWith('env:') ? ` in ${v.slice(4)}` : ''}`);
    return u ?? '';
  };
  for (const scope of Object.keys(a.budgets)) {
    try {
      parseScope(scope);
    } catch (err) {
      problems.push(`alerts.budgets.${scope}: ${(err as Error).message}`);
    }
  }
  const secret = (v: string, at: string) => {
    const s = read(v, at);
    if (s !== undefined && s.length < 16) problems.push(`${at}: the secret must be at least 16 characters`);
    return s ?? '';
  };
  return {
    enabled: a.enabled,
    thresholds: a.thresholds,
    // A suspended run is already in the inbox: runs alert only when named.
    kinds: { run: [], ...a.kinds },
    budgets: a.budgets,
    forecast: {
      enabled: a.forecast.enabled,
      lookbackMs: a.forecast.lookback,
      minHistoryMs: a.forecast.minHistory,
    },
    webhooks: a.webhooks.map((w, i) => ({
      url: url(w.url, `alerts.webhooks.${i}.url`),
      secret: secret(w.secret, `alerts.webhooks.${i}.secret`),
      ...(w.name ? { name: w.name } : {}),
    })),
    slack: a.slack.map((w, i) => ({
      url: url(w.url, `alerts.slack.${i}.url`),
      ...(w.name ? { name: w.name } : {}),
    })),
    retry: { attempts: a.retry.attempts, backoffMs: a.retry.backoff },
    debounceMs: a.debounce,
    sweepMs: a.sweep,
  };
}

function fromEnv(env: NodeJS.ProcessEnv, name: string, at: string, problems: string[]): string | undefined {
  const v = env[name];
  if (!v) problems.push(`${at}: ${name} is not set in the environment`);
  return v || undefined;
}

/** Conservative ceilings: access never exists without a budget, and a new scope starts small. */
export const DEFAULT_BUDGETS: Record<ScopeKind, BudgetSpec> = {
  global: { ceiling: 100_000_000, window: 'day', owner: 'platform' },
  team: { ceiling: 50_000_000, window: 'day', owner: 'platform' },
  env: { ceiling: 50_000_000, window: 'day', owner: 'platform' },
  seat: { ceiling: 10_000_000, window: 'day', owner: 'platform' },
  workflow: { ceiling: 20_000_000, window: 'day', owner: 'platform' },
  run: { ceiling: 2_000_000, window: 'total', owner: 'platform' },
  // Only for providers given a budget of their own (providers.<name>.budget, which wins).
  provider: { ceiling: 100_000_000, window: 'day', owner: 'platform' },
};

export const DEFAULT_CONFIG_FILE = 'chokepoint.config.yaml';

export interface LoadOptions {
  /** Explicit path (--config); a missing explicit file is an error, a missing default one is not. */
  path?: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Values that win over the file (CLI flags). */
  overrides?: { port?: number; host?: string };
}

export function loadConfig(opts: LoadOptions = {}): Config {
  const env = opts.env ?? process.env;
  const cwd = opts.cwd ?? process.cwd();
  const explicit = opts.path ?? env.CHOKEPOINT_CONFIG;
  const file = resolve(cwd, explicit ?? DEFAULT_CONFIG_FILE);
  let raw: unknown = {};
  let from: string | undefined;
  if (existsSync(file)) {
    from = file;
    try {
      raw = parseYaml(readFileSync(file, 'utf8')) ?? {};
    } catch (err) {
      throw new ConfigError([`not valid YAML: ${(err as Error).message.split('\n')[0]}`], file);
    }
    if (typeof raw !== 'object' || Array.isArray(raw)) {
      throw new ConfigError(['the file must hold a mapping (key: value lines) at the top level'], file);
    }
  } else if (explicit) {
    throw new ConfigError([`file not found: ${file} (pass --config with an existing file, or omit it)`]);
  }
  return resolveConfig(raw, { env, cwd, file: from, overrides: opts.overrides });
}

/** Validates a parsed config object and applies environment variables and defaults. */
export function resolveConfig(
  raw: unknown,
  ctx: { env?: NodeJS.ProcessEnv; cwd?: string; file?: string; overrides?: LoadOptions['overrides'] } = {},
): Config {
  const env = ctx.env ?? process.env;
  const cwd = ctx.cwd ?? process.cwd();
  const problems: string[] = [];
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const path = issue.path.join('.') || '(top level)';
      problems.push(`${path}: ${issueMessage(issue, raw)}`);
    }
  }
  const port = envInt(env, 'CHOKEPOINT_PORT', problems);
  const tracing = tracingFromEnv(env, problems);
  if (problems.length || !parsed.success) throw new ConfigError(problems, ctx.file);
  const c = parsed.data;

  const defaults = { ...DEFAULT_BUDGETS };
  for (const [kind, spec] of Object.entries(c.budgets.defaults)) {
    if (spec) defaults[kind as ScopeKind] = { owner: 'platform', ...spec };
  }
  const redisUrl = c.store.redisUrl ?? env.REDIS_URL ?? undefined;
  const backend = c.store.backend ?? (redisUrl ? 'redis' : 'embedded');
  if (backend === 'redis' && !redisUrl) {
    throw new ConfigError(['store.backend: "redis" needs a URL: set REDIS_URL or store.redisUrl'], ctx.file);
  }
  const providers = namedProviders(c, env, c.provider.timeout, problems);
  const alerts = alertSettings(c, env, problems);
  if (problems.length) throw new ConfigError(problems, ctx.file);
  const apiKey = env.ANTHROPIC_API_KEY || undefined;
  const kind = c.provider.kind ?? (apiKey ? 'anthropic' : 'emulator');
  if (kind === 'anthropic' && !apiKey) {
    throw new ConfigError(
      ['provider.kind: "anthropic" needs ANTHROPIC_API_KEY in the environment'],
      ctx.file,
    );
  }

  let adminApiKey = env.ANTHROPIC_ADMIN_KEY || undefined;
  const adminRaw = c.provider.adminApiKey;
  if (adminRaw?.startsWith('env:')) {
    adminApiKey = env[adminRaw.slice(4)] || undefined;
    if (!adminApiKey) {
      throw new ConfigError(
        [`provider.adminApiKey: ${adminRaw.slice(4)} is not set in the environment`],
        ctx.file,
      );
    }
  } else if (adminRaw) adminApiKey = adminRaw;

  return {
    file: ctx.file,
    server: {
      ...c.server,
      // An empty CHOKEPOINT_HOST is unset (Node would bind every interface to ""): the default stays.
      host: ctx.overrides?.host || env.CHOKEPOINT_HOST?.trim() || c.server.host,
      port: ctx.overrides?.port ?? port ?? c.server.port,
    },
    dataDir: resolve(cwd, env.CHOKEPOINT_DATA_DIR ?? c.dataDir),
    store: {
      backend,
      redisUrl,
      prefix: c.store.prefix,
      partitions: c.store.partitions ?? (redisUrl && /^rediss?-cluster:\/\//.test(redisUrl) ? 8 : 0),
      reservationTtlMs: c.store.reservationTtl,
      leases: leasesOf(c.store.leases, env.CHOKEPOINT_LEASES),
    },
    provider: {
      kind,
      baseUrl: c.provider.baseUrl ?? env.ANTHROPIC_BASE_URL ?? undefined,
      apiKey,
      timeoutMs: c.provider.timeout,
      countTokensNearCeiling: c.provider.countTokensNearCeiling,
      adminApiKey,
      ...(c.provider.budget ? { budget: { owner: 'platform', ...c.provider.budget } } : {}),
    },
    providers,
    budgets: { timeZone: c.budgets.timeZone, defaults },
    routing: c.routing,
    gateway: c.gateway,
    workflowsDir: workflowsDir(raw, c.workflows.dir, env, cwd),
    workflows: { watch: c.workflows.watch, runAs: c.workflows.runAs, leaseMs: c.workflows.lease },
    approvals: { timeoutMs: c.approvals.timeout, onTimeout: c.approvals.onTimeout },
    workers: c.workers,
    mcp: {
      maxResultBytes: c.mcp.maxResultBytes,
      timeoutMs: c.mcp.timeout,
      connectTimeoutMs: c.mcp.connectTimeout,
      retryMs: c.mcp.retry,
      runAs: c.mcp.runAs,
    },
    operators: c.auth.operators,
    sessions: { idleMs: c.auth.sessionIdle, lifetimeMs: c.auth.sessionLifetime },
    metrics: c.metrics,
    reconcile: {
      tolerance: c.reconcile.tolerance,
      webhookUrl: c.reconcile.webhookUrl,
      schedule: c.reconcile.schedule,
      at: c.reconcile.at,
      everyMs: c.reconcile.every,
    },
    alerts,
    prices: [...BUILT_IN_PRICES, ...c.prices],
    rateLimits: c.rateLimits,
    logLevel: (env.CHOKEPOINT_LOG_LEVEL as Config['logLevel']) ?? c.log.level,
    adminToken: env.CHOKEPOINT_ADMIN_TOKEN || undefined,
    ...(tracing ? { tracing } : {}),
  };
}

/**
 * The workflows that come with Chokepoint: workflows/ of the checkout, or the compiled copies of
 * the installed package (dist/workflows).
 */
export const EXAMPLE_WORKFLOWS_DIR = fileURLToPath(new URL('../../workflows', import.meta.url));

/**
 * $CHOKEPOINT_WORKFLOWS_DIR, or workflows.dir of the file; when neither is set, ./workflows if the
 * working folder has one, else the example workflows (so `chokepoint serve` in an empty folder
 * comes up with something to run).
 */
function workflowsDir(raw: unknown, dir: string, env: NodeJS.ProcessEnv, cwd: string): string {
  const set = (raw as { workflows?: { dir?: unknown } } | null)?.workflows?.dir !== undefined;
  if (env.CHOKEPOINT_WORKFLOWS_DIR || set) return resolve(cwd, env.CHOKEPOINT_WORKFLOWS_DIR || dir);
  const own = resolve(cwd, dir);
  return existsSync(own) ? own : EXAMPLE_WORKFLOWS_DIR;
}

function envInt(env: NodeJS.ProcessEnv, name: string, problems: string[]): number | undefined {
  const v = env[name];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) {
    problems.push(`${name}: expected a port number 0-65535, got ${JSON.stringify(v)}`);
    return undefined;
  }
  return n;
}

/**
 * zod's "Invalid input: expected number, received string" as "expected a number, got a string
 * "x"" (the value as written), and "required" only for a key that is missing.
 */
function issueMessage(
  issue: { code: string; message: string; path: PropertyKey[]; expected?: unknown },
  raw: unknown,
): string {
  if (issue.code !== 'invalid_type') return issue.message;
  let v: unknown = raw;
  for (const k of issue.path)
    v = v && typeof v === 'object' ? (v as Record<PropertyKey, unknown>)[k] : undefined;
  const expected = String(issue.expected ?? 'a value');
  const article = /^(array|object|int)/.test(expected) ? 'an' : 'a';
  if (v === undefined) return `required: expected ${article} ${expected}`;
  return `expected ${article} ${expected}, got ${describe(v)}`;
}

function describe(v: unknown): string {
  if (v === null) return 'null (an empty value)';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return `a string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
  return `${typeof v === 'number' ? 'a number' : typeof v === 'boolean' ? 'a boolean' : typeof v} ${String(v)}`;
}

/** What `store.leases: true` (or CHOKEPOINT_LEASES=on) means: runtime/store/leases.ts LEASE_DEFAULTS. */
const LEASE_CONFIG_DEFAULTS = {
  callsPerLease: 64,
  maxLease: 5_000_000,
  share: 8,
  ttl: 60_000,
  idle: 5_000,
  validity: 2_000,
  ship: 200,
};

/** `store.leases` as the runtime takes it; CHOKEPOINT_LEASES=on|off overrides the file. */
function leasesOf(l: ParsedConfig['store']['leases'], env: string | undefined): Config['store']['leases'] {
  if (env === 'off' || env === 'false' || env === '0') return false;
  if (l === false && env !== 'on' && env !== 'true' && env !== '1') return false;
  if (typeof l === 'boolean') l = LEASE_CONFIG_DEFAULTS;
  return {
    callsPerLease: l.callsPerLease,
    maxLease: l.maxLease,
    share: l.share,
    ttlMs: l.ttl,
    idleMs: l.idle,
    validityMs: l.validity,
    shipMs: l.ship,
  };
}
