import { z } from 'zod';
import { providerKinds } from '../../adapters/providers.ts';
import { isScopeKey, parseRateScope, RATE_SCOPE_KINDS, SCOPE_KINDS } from '../identity.ts';
import { tryParseUsd } from '../money.ts';
import type { WindowSpec } from '../store/port.ts';

/**
 * The one config file (`chokepoint.config.yaml`), as a zod schema: validation, types and error
 * messages come from here. Every key is optional; the defaults are the embedded, emulator-backed,
 * conservative setup that `npm start` runs. Unknown keys are errors (a typo must not silently
 * drop a ceiling).
 */

const DURATION = /^(\d+)(ms|s|m|h|d)$/;
const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** `"500ms"`, `"30s"`, `"10m"`, `"24h"`, `"7d"` to milliseconds; undefined if it does not parse. */
export function parseDuration(input: string): number | undefined {
  const m = DURATION.exec(input.trim());
  if (!m) return undefined;
  return Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
}

export const money = z.union([z.string(), z.number()]).transform((v, ctx) => {
  const micros = tryParseUsd(v);
  if (micros === undefined) {
    ctx.addIssue({
      code: 'custom',
      message: `expected a dollar amount like "50.00", got ${JSON.stringify(v)}`,
    });
    return z.NEVER;
  }
  return micros;
});

export const duration = z.string().transform((v, ctx) => {
  const ms = parseDuration(v);
  if (ms === undefined || ms <= 0) {
    ctx.addIssue({
      code: 'custom',
      message: `expected a duration like "30s", "10m" or "24h", got ${JSON.stringify(v)}`,
    });
    return z.NEVER;
  }
  return ms;
});

export const windowSpec = z.string().transform((v, ctx) => {
  if (v === 'day' || v === 'month' || v === 'total') return v as WindowSpec;
  if (/^\d+(m|h|d)$/.test(v) && (parseDuration(v) ?? 0) > 0) return v as WindowSpec;
  ctx.addIssue({
    code: 'custom',
    message: `expected a window: "day", "month", "total" or a rolling duration like "24h", got ${JSON.stringify(v)}`,
  });
  return z.NEVER;
});

const budgetDefault = z.strictObject({ ceiling: money, window: windowSpec, owner: z.string().optional() });

const budgetDefaults = z.strictObject(
  Object.fromEntries(SCOPE_KINDS.map((k) => [k, budgetDefault.optional()])) as Record<
    (typeof SCOPE_KINDS)[number],
    z.ZodOptional<typeof budgetDefault>
  >,
);

const rates = z.strictObject({
  input: z.number().nonnegative(),
  cacheWrite5m: z.number().nonnegative(),
  cacheWrite1h: z.number().nonnegative(),
  cacheRead: z.number().nonnegative(),
  output: z.number().nonnegative(),
});

const priceEntry = z.strictObject({
  model: z.string().min(1),
  /** The provider kind these rates are for (`bedrock`, `vertex`, `openai`); absent: Anthropic's list. */
  provider: z.string().optional(),
  aliases: z.array(z.string()).default([]),
  from: z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'expected a date like "2026-01-31"'),
  rates,
  longContext: z.strictObject({ threshold: z.number().int().positive(), rates }).optional(),
  fast: rates.optional(),
  maxOutputTokens: z.number().int().positive(),
  displayName: z.string().optional(),
  released: z
    .string()
    .regex(/^\d{4}-\d{2}-\d{2}$/, 'expected a date like "2026-01-31"')
    .optional(),
  retires: z
    .string()
    .regex(/^\d{4}-\d{2}-\d{2}$/, 'expected a date like "2026-01-31"')
    .optional(),
  usOnly: z.boolean().optional(),
});

/** The model classes a config without `routing.classes` gets: today's models, cheap to premium. */
export const DEFAULT_CLASSES: Record<string, string[]> = {
  cheap: ['claude-haiku-5-5'],
  standard: ['claude-sonnet-5-5'],
  premium: ['claude-opus-5-5'],
};

const routingRule = z.strictObject({
  match: z
    .strictObject({
      team: z.string().optional(),
      env: z.string().optional(),
      seat: z.string().optional(),
      workflow: z.string().optional(),
    })
    .default({}),
  /** Model classes this identity may use. */
  allow: z.array(z.string()).min(1),
  /** The class used when a request asks for a class name, or when rewriting. */
  default: z.string().optional(),
  /** What to do with a model outside `allow`: refuse with model_not_allowed, or rewrite to the default. */
  onViolation: z.enum(['refuse', 'rewrite']).default('refuse'),
  /** Above this share of any budget (0..1), route to the cheaper class. */
  downgrade: z.strictObject({ above: z.number().gt(0).lt(1), to: z.string() }).optional(),
  /** When a call's worst case does not fit the budget: `fit` lowers max_tokens, `refuse` refuses. */
  maxTokens: z.enum(['fit', 'refuse']).optional(),
  /** The providers this identity's calls go to, in order: the next is tried when one fails (5xx, 529, unreachable). */
  providers: z.array(z.string()).min(1).optional(),
  /** `budget`: a provider whose own budget has no room goes to the end of the list (committed spend first). */
  providerChoice: z.enum(['order', 'budget']).optional(),
});

/**
 * A rate limit: `limit` units per rolling `window`, admitted with the money (429 `rate_limited`).
 * `scope` is a kind — every scope of it gets its own limit (`seat`, `key`, `model`) — or one
 * scope (`team:payments`, `key:key_1`, `model:claude-opus-5`, `global`).
 *
 * @example rateLimits: [{ scope: seat, unit: requests, limit: 60, window: 1m }]
 */
const rateLimit = z.strictObject({
  scope: z.string().refine((s) => (RATE_SCOPE_KINDS as readonly string[]).includes(s) || isRateScope(s), {
    error: (i) =>
      `expected a scope kind (${RATE_SCOPE_KINDS.join(', ')}) or one scope like "team:payments", got ${JSON.stringify(i.input)}`,
  }),
  unit: z.enum(['requests', 'input_tokens', 'output_tokens', 'concurrent']),
  limit: z.number().int().nonnegative(),
  /** Rolling; `concurrent` counts calls in flight and ignores it. */
  window: z
    .string()
    .regex(/^[1-9]\d{0,5}[mhd]$/, 'expected a rolling window like "1m" or "1h"')
    .default('1m')
    .transform((w) => w as WindowSpec),
});

function isRateScope(s: string): boolean {
  try {
    parseRateScope(s);
    return true;
  } catch {
    return false;
  }
}

const providerKind = z.string().refine((k) => providerKinds().includes(k), {
  error: (i) => `unknown provider ${JSON.stringify(i.input)}: expected one of ${providerKinds().join(', ')}`,
});

/**
 * One more provider, by a name of your choosing (`bedrock`, `vertex`, `openai`, `bedrock-eu`).
 * Fields other than these are the kind's own (a Bedrock `region`, a Vertex `project`); a string
 * value `env:VAR` is read from the environment.
 */
const namedProvider = z.looseObject({
  kind: providerKind,
  baseUrl: z.string().url().optional(),
  /** The credential (`env:VAR`); OPENAI_API_KEY is the default for kind openai. */
  apiKey: z.string().min(1).optional(),
  timeout: duration.optional(),
  /** A budget of its own (a committed spend): its calls are also admitted against `provider:<name>`. */
  budget: budgetDefault.optional(),
});

const operator = z.strictObject({
  name: z.string().min(1),
  role: z.enum(['viewer', 'operator', 'admin']),
  /** The token itself, or `env:VAR` to read it from the environment. */
  token: z.string().min(16, 'operator tokens must be at least 16 characters').optional(),
  /** Or its SHA-256 (hex), so the config file holds no secret. */
  tokenSha256: z
    .string()
    .regex(/^[0-9a-f]{64}$/, 'expected 64 hex characters')
    .optional(),
  /** Teams an `operator` may start runs under (besides workflows.runAs.team); admins: any. */
  teams: z.array(z.string().refine(isScopeKey, 'a team name')).min(1).optional(),
});

/** A budget alert threshold: a percentage of the ceiling, or `refused` (a call was refused for it). */
const alertThreshold = z.union([z.number().int().min(1).max(1000), z.literal('refused')]);
const alertThresholds = z.array(alertThreshold);

/** A URL, or `env:VAR` to read it from the environment (incoming-webhook URLs are secrets). */
const secretUrl = z.string().refine((v) => v.startsWith('env:') || URL.canParse(v), {
  error: (i) => `expected a URL or env:VAR, got ${JSON.stringify(i.input)}`,
});

/** Budget alerts (runtime/alerts): thresholds, forecasts, where they go. */
const alerts = z
  .strictObject({
    enabled: z.boolean().default(true),
    /** For every budget unless `kinds` or `budgets` says otherwise. */
    thresholds: alertThresholds.default([50, 80, 90, 100, 'refused']),
    /** Per budget kind; runs' spend boxes are silent (`run: []`) unless named here. */
    kinds: z.partialRecord(z.enum(SCOPE_KINDS), alertThresholds).default({}),
    /** Per budget, by scope (`team:payments`). */
    budgets: z.record(z.string(), alertThresholds).default({}),
    forecast: z
      .strictObject({
        /** Alert once per window when the recent spend rate passes the ceiling before the window ends. */
        enabled: z.boolean().default(true),
        /** The rate is the spend over this much of the recent past. */
        lookback: duration.default(3_600_000),
        /** No forecast from less history than this. */
        minHistory: duration.default(300_000),
      })
      .prefault({}),
    /** JSON POSTs signed with HMAC-SHA256 (`x-chokepoint-signature`). */
    webhooks: z
      .array(
        z.strictObject({
          url: secretUrl,
          /** The signing secret, or `env:VAR`. */
          secret: z
            .string()
            .refine(
              (v) => v.startsWith('env:') || v.length >= 16,
              'expected env:VAR or at least 16 characters',
            ),
          name: z.string().optional(),
        }),
      )
      .default([]),
    /** Slack incoming webhooks (`{"text", "blocks"}`). */
    slack: z.array(z.strictObject({ url: secretUrl, name: z.string().optional() })).default([]),
    retry: z
      .strictObject({
        /** Tries per delivery (the first one included). */
        attempts: z.number().int().min(1).max(10).default(4),
        /** The wait before the first retry; doubled each time. */
        backoff: duration.default(2_000),
      })
      .prefault({}),
    /** Budgets are checked this long after calls settle (at most once per interval each). */
    debounce: duration.default(1_000),
    /** And all of them this often (tool spend, other replicas' calls, forecasts). */
    sweep: duration.default(60_000),
  })
  .prefault({});

export const configSchema = z.strictObject({
  server: z
    .strictObject({
      /** The interface to bind; "0.0.0.0" (or "::") for every one, never implied by an empty value. */
      host: z
        .string()
        .trim()
        .min(1, 'expected a host like "127.0.0.1" or "0.0.0.0", got an empty string')
        .default('127.0.0.1'),
      port: z.number().int().min(0).max(65535).default(8787),
      /** Largest request body accepted on /v1/messages (bytes); bigger is a 413. */
      maxBodyBytes: z
        .number()
        .int()
        .positive()
        .default(32 * 1024 * 1024),
    })
    .prefault({}),
  /** Where the embedded store, the admin token and other local state live. */
  dataDir: z.string().default('.chokepoint'),
  store: z
    .strictObject({
      /** `embedded` (SQLite, default) or `redis` (chosen automatically when REDIS_URL is set). */
      backend: z.enum(['embedded', 'redis']).optional(),
      redisUrl: z.string().optional(),
      /** Key prefix on Redis; keep the {hash tag} so scripts run on Redis Cluster. */
      prefix: z.string().default('{cp}'),
      /**
       * How many partitions (hash tags) the money store spreads the budgets' spend, the reservations
       * and the ledger over (runtime/backends/redis/money/partitioned.ts). Default 8 on a Redis
       * Cluster (`redis-cluster://`), 0 on one Redis: everything in one slot.
       */
      partitions: z.number().int().min(0).max(1024).optional(),
      /** A reservation not settled within this is released and recorded as expired. */
      reservationTtl: duration.default(15 * 60_000),
      /**
       * Budget leases (runtime/store/leases.ts): admit calls from slices reserved in the store, in
       * memory, journal each call on local disk, and write settlements in batches. On by default
       * (`true` or an object of its settings); `false`: one store step per admission and one per
       * settlement.
       */
      leases: z
        .union([
          z.boolean(),
          z.strictObject({
            /** A slice is at most this many times the call's worst case… */
            callsPerLease: z.number().int().min(1).max(100_000).default(64),
            /** …and at most this… */
            maxLease: money.default(5_000_000),
            /** …and at most the tightest budget's room divided by this. */
            share: z.number().int().min(1).max(1_000_000).default(8),
            /** How long the store holds the slices of a process that stopped renewing them (it died). */
            ttl: duration.default(60_000),
            /** A slice no call used for this long goes back to its budgets. */
            idle: duration.default(5_000),
            /** The longest a process admits from memory since it last read the kill switches. */
            validity: duration.default(2_000),
            /** How often settled calls go to the store in one batch (each is in the lease journal first). */
            ship: duration.default(200),
          }),
        ])
        .default(true),
    })
    .prefault({}),
  provider: z
    .strictObject({
      /** `emulator` (default without ANTHROPIC_API_KEY), `anthropic`, or any kind adapters/providers.ts registers. */
      kind: providerKind.optional(),
      baseUrl: z.string().url().optional(),
      /** Per-call timeout towards the provider. */
      timeout: duration.default(10 * 60_000),
      /** Near a ceiling, ask the provider's count_tokens for a precise estimate before refusing. */
      countTokensNearCeiling: z.boolean().default(true),
      /** Admin API key for the cost and usage reports (reconciliation): `env:VAR`, or ANTHROPIC_ADMIN_KEY. */
      adminApiKey: z.string().min(1).optional(),
      /** A budget of its own, as `providers.<name>.budget`: calls are also admitted against `provider:anthropic`. */
      budget: budgetDefault.optional(),
    })
    .prefault({}),
  budgets: z
    .strictObject({
      /** IANA time zone for `day` and `month` windows. */
      timeZone: z
        .string()
        .refine(isTimeZone, { message: 'expected an IANA time zone like "UTC" or "Europe/Berlin"' })
        .default('UTC'),
      defaults: budgetDefaults.prefault({}),
    })
    .prefault({}),
  routing: z
    .strictObject({
      /** Model classes: names of your choosing mapped to model ids (first is the class default). */
      classes: z.record(z.string(), z.array(z.string()).min(1)).default(DEFAULT_CLASSES),
      rules: z.array(routingRule).default([]),
      /** Per model class, the providers its calls go to, in failover order (default: the default provider). */
      providers: z.record(z.string(), z.array(z.string()).min(1)).default({}),
      /** How a list of providers is used when a rule does not say: in order, or budget-aware. */
      providerChoice: z.enum(['order', 'budget']).default('order'),
    })
    .prefault({}),
  /** Providers besides the default one (`provider:`), by name: Bedrock, Vertex, OpenAI, more regions. */
  providers: z
    .record(z.string().regex(/^[a-z][a-z0-9-]{0,31}$/, 'lower-case letters, digits and -'), namedProvider)
    .default({}),
  gateway: z
    .strictObject({
      /**
       * A call whose worst case (max_tokens at the output price) does not fit a budget: `fit` lowers
       * max_tokens to what the budget can still pay for (down to `maxTokensFloor`), `refuse` refuses
       * with budget_exhausted. Keys and routing rules may override it.
       */
      maxTokens: z.enum(['fit', 'refuse']).default('fit'),
      /** `fit` never lowers max_tokens below this; a budget that cannot pay for it refuses. */
      maxTokensFloor: z.number().int().positive().default(1024),
      /** The organisation's default `inference_geo` at the provider ("us" prices every call at 1.1×). */
      inferenceGeo: z.enum(['global', 'us']).default('global'),
    })
    .prefault({}),
  workflows: z
    .strictObject({
      dir: z.string().default('workflows'),
      /** Reload the folder when a workflow file changes (development; also `serve --watch`). */
      watch: z.boolean().default(false),
      /** Team and env of runs started by an operator (the seat is the operator's name). */
      runAs: z
        .strictObject({
          team: z.string().refine(isScopeKey, 'use letters, digits, . _ @ -').default('default'),
          env: z.string().refine(isScopeKey, 'use letters, digits, . _ @ -').default('default'),
        })
        .prefault({}),
      /** A run's lease: a process that dies hands its runs to the others after this long. */
      lease: duration.default(30_000),
    })
    .prefault({}),
  approvals: z
    .strictObject({
      /** How long an approval item waits for a human before it expires (a workflow may set its own). */
      timeout: duration.default(24 * 3_600_000),
      /** What an undecided item does at its timeout: the run ends `expired`, or `deny` it. */
      onTimeout: z.enum(['expire', 'deny']).default('expire'),
    })
    .prefault({}),
  workers: z
    .strictObject({
      /** Run workers in `serve` (off: `serve --no-workers`, leaving runs to `chokepoint worker`). */
      enabled: z.boolean().default(true),
      /** Runs one process works on at once (a run mostly waits on model calls: keep it generous). */
      concurrency: z.number().int().positive().default(32),
      /** At most this many runs of a workflow at once in one process, e.g. `{ research: 4 }`. */
      perWorkflow: z.record(z.string(), z.number().int().positive()).default({}),
    })
    .prefault({}),
  mcp: z
    .strictObject({
      /** MCP tool results above this many bytes are cut, with a `[truncated: N of M bytes]` note. */
      maxResultBytes: z
        .number()
        .int()
        .positive()
        .default(64 * 1024),
      /** Per-call timeout of MCP tool calls (a workflow's server entry may set its own). */
      timeout: duration.default(60_000),
      /** How long loading a workflow waits for one of its MCP servers to start and answer. */
      connectTimeout: duration.default(15_000),
      /** A workflow left out because its MCP server could not be reached is tried again this often. */
      retry: duration.default(30_000),
      /** The user stdio MCP servers run as when Chokepoint runs as root (default nobody; "none" keeps root). */
      runAs: z.string().min(1).optional(),
    })
    .prefault({}),
  metrics: z
    .strictObject({
      /** Serve /metrics without an operator token (default: a viewer token is needed). */
      public: z.boolean().default(false),
      /** Budgets exported per scope; add `seat` or `run` only if their number is small. */
      budgetKinds: z.array(z.enum(SCOPE_KINDS)).default(['global', 'team', 'env', 'workflow']),
      /** Distinct values one label may take; later ones are counted under `_other`. */
      maxLabelValues: z.number().int().positive().default(200),
      /** Node.js process metrics (memory, CPU, event loop, GC). */
      process: z.boolean().default(true),
    })
    .prefault({}),
  reconcile: z
    .strictObject({
      /** A difference beyond the larger of the two bounds is an alarm. */
      tolerance: z
        .strictObject({
          /** Share of the larger figure, 0..1 (0.01 = 1%). */
          relative: z.number().min(0).max(1).default(0.01),
          /** The floor: differences up to this are never alarms (rounding); default one cent. */
          absolute: money.default(10_000),
        })
        .prefault({}),
      /** Divergence alarms are POSTed here (JSON) as well as stored. */
      webhookUrl: z.string().url().optional(),
      /** The daily job that reconciles yesterday (needs an Admin API key, or the emulator). */
      schedule: z.boolean().default(true),
      /** When the daily job runs, UTC. */
      at: z
        .string()
        .regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'expected a UTC time like "02:00"')
        .default('02:00'),
      /** Instead of daily: every this long (development). */
      every: duration.optional(),
    })
    .prefault({}),
  auth: z
    .strictObject({
      operators: z.array(operator).default([]),
      /** An inbox session unused this long ends (the next request goes to the login page). */
      sessionIdle: duration.default(30 * 60_000),
      /** An inbox session ends this long after its login, however busy. */
      sessionLifetime: duration.default(12 * 3_600_000),
    })
    .prefault({}),
  alerts,
  prices: z.array(priceEntry).default([]),
  /** Rate limits as budgets of other units (requests, tokens, calls in flight): see `rateLimit`. */
  rateLimits: z.array(rateLimit).default([]),
  log: z
    .strictObject({ level: z.enum(['debug', 'info', 'warn', 'error', 'silent']).default('info') })
    .prefault({}),
});

export type ConfigFile = z.input<typeof configSchema>;
export type ParsedConfig = z.output<typeof configSchema>;

function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}
