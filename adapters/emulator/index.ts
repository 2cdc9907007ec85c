/**
 * The Anthropic Messages API emulator: the provider for the default install and for every test.
 * Faithful usage accounting (prompt caching by prefix and breakpoint, TTLs, minimum cacheable
 * length, streaming, tool use), scripted replies, injected faults and latency, and its own billing
 * record with Admin-API-shaped usage and cost reports.
 *
 * @example
 * const emu = createEmulator();
 * const { url, close } = await emu.listen();
 * const client = new Anthropic({ baseURL: url, apiKey: 'sk-emulator-local' });
 * emu.script([{ when: { turn: 1 }, reply: { toolUse: [{ name: 'get_weather', input: { city: 'Paris' } }] } }]);
 * // … run the agent …
 * emu.billing.total(); // µ$ the "provider" would invoice
 * await close();
 */
import type { Hono } from 'hono';
import { listenDual } from '../http/h2c.ts';
import { createApp } from './app.ts';
import { BatchStore, endBatch } from './batches.ts';
import { BillingRecord } from './billing.ts';
import { PromptCache } from './cache.ts';
import type { EmulatorState, Fault } from './http.ts';
import { DEFAULT_ADMIN_KEY, DEFAULT_API_KEY, DEFAULT_AWS_ACCESS_KEY_ID } from './keys.ts';
import { openaiCacheOf } from './openai/call.ts';
import { Script, type ScriptRule } from './script.ts';

export type { BilledBy, BillingEntry, BillingRecord } from './billing.ts';
export {
  lifecycleOf,
  MODELS,
  type ModelInfo,
  type PriceMods,
  priceCall,
  resolveModel,
  type TokenUsage,
} from './catalog.ts';
export type { Fault } from './http.ts';
export { DEFAULT_ADMIN_KEY, DEFAULT_API_KEY, DEFAULT_AWS_ACCESS_KEY_ID, randomAdminKey } from './keys.ts';
export type { ReplySpec, ScriptCondition, ScriptedToolUse, ScriptRule } from './script.ts';
export { WEB_SEARCH_MICROS } from './server-tools.ts';
export { countTokens, TOKEN_COSTS, textTokens } from './tokens.ts';

export interface EmulatorOptions {
  /** The API key to accept (default {@link DEFAULT_API_KEY}); billed under the label `default`. */
  apiKey?: string;
  /** More keys, by label: `{ 'team-a': 'sk-a' }`; each call is billed under its key's label. */
  apiKeys?: Record<string, string>;
  /** Admin key for the usage and cost reports (default {@link DEFAULT_ADMIN_KEY}). */
  adminKey?: string;
  /** Clock for cache TTLs and billing timestamps (epoch ms); inject one to expire entries in tests. */
  now?: () => number;
  /** Latency added to every `POST /v1/messages`, in ms (default 0). */
  latencyMs?: number;
  /** Send `anthropic-ratelimit-*` headers on successful calls (default false: they cost throughput). */
  rateLimitHeaders?: boolean;
  /** How many recent calls `billing.list()` keeps (default 100,000; totals and reports keep all). */
  maxBillingEntries?: number;
  /** Keep the billing record in this file across restarts (JSON lines); default: memory only. */
  billingFile?: string;
  /**
   * Message Batches: a batch ends the first time it is looked at once the clock has passed its
   * creation + this many ms (default 0: on the next retrieve/list/results call).
   */
  batchDelayMs?: number;
  /**
   * Serve retired models instead of answering 404 (default false — the real API refuses them;
   * set it to replay traffic recorded before a retirement).
   */
  serveRetiredModels?: boolean;
  /**
   * The AWS credentials of the Bedrock face (`/bedrock`, SigV4-verified): default access key id
   * {@link DEFAULT_AWS_ACCESS_KEY_ID}, secret = the API key. Calls are billed under the key id.
   */
  aws?: { accessKeyId?: string; secretAccessKey?: string };
}

export interface Listening {
  /** Base URL, e.g. `http://127.0.0.1:40123` (give it to the SDK as `baseURL`). */
  url: string;
  port: number;
  close(): Promise<void>;
}

export interface Emulator {
  readonly app: Hono;
  /** The app's fetch handler (no server needed: `emu.fetch(new Request(...))`). */
  readonly fetch: (req: Request) => Response | Promise<Response>;
  /** Every billed call, with exact µ$ costs. */
  readonly billing: BillingRecord;
  /** The key of the reports and the control endpoints (`/_emulator/*`). */
  readonly adminKey: string;
  /** What the Bedrock face accepts: sign with these (service `bedrock`, any region). */
  readonly awsCredentials: { readonly accessKeyId: string; readonly secretAccessKey: string };
  /** Replaces the scripted rules (first match wins; `[]` clears). */
  script(rules: readonly ScriptRule[]): void;
  /** Makes the next `count` (default 1) `POST /v1/messages` calls fail and/or wait. */
  injectFault(fault: Fault): void;
  clearFaults(): void;
  /** Empties the prompt cache (every prefix misses next time). */
  resetCache(): void;
  /** Ends a Message Batch now (runs and bills its requests), whatever the clock says. */
  endBatch(id: string): void;
  /** Serves the app over HTTP (keep-alive on). `port: 0` (default) picks a free port. */
  listen(opts?: { port?: number; host?: string }): Promise<Listening>;
}

/** Creates an emulator with its own cache, script, faults and billing record. */
export function createEmulator(options: EmulatorOptions = {}): Emulator {
  const now = options.now ?? Date.now;
  const apiKeys = new Map<string, string>([[options.apiKey ?? DEFAULT_API_KEY, 'default']]);
  for (const [label, key] of Object.entries(options.apiKeys ?? {})) apiKeys.set(key, label);
  const state: EmulatorState = {
    apiKeys,
    adminKey: options.adminKey ?? DEFAULT_ADMIN_KEY,
    now,
    latencyMs: options.latencyMs ?? 0,
    rateLimitHeaders: options.rateLimitHeaders ?? false,
    cache: new PromptCache(now),
    billing: new BillingRecord(options.maxBillingEntries, options.billingFile),
    script: new Script(),
    faults: [],
    batches: new BatchStore(),
    batchDelayMs: options.batchDelayMs ?? 0,
    serveRetiredModels: options.serveRetiredModels ?? false,
    aws: {
      accessKeyId: options.aws?.accessKeyId ?? DEFAULT_AWS_ACCESS_KEY_ID,
      secretAccessKey: options.aws?.secretAccessKey ?? options.apiKey ?? DEFAULT_API_KEY,
    },
  };
  const app = createApp(state);
  return {
    app,
    fetch: (req) => app.fetch(req),
    billing: state.billing,
    adminKey: state.adminKey,
    awsCredentials: state.aws,
    script: (rules) => state.script.set(rules),
    injectFault: (fault) => {
      state.faults.push({ ...fault, count: fault.count ?? 1 });
    },
    clearFaults: () => {
      state.faults.length = 0;
    },
    resetCache: () => {
      state.cache.clear();
      openaiCacheOf(state).clear();
    },
    endBatch: (id) => endBatch(state.batches.get(id), state),
    listen: async ({ port = 0, host = '127.0.0.1' } = {}) => {
      // HTTP/1.1 and h2c on one port: the AWS SDK's Bedrock Runtime client speaks HTTP/2.
      const served = await listenDual(app.fetch, port, host);
      const shown =
        host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
      return { url: `http://${shown}:${served.port}`, port: served.port, close: served.close };
    },
  };
}
