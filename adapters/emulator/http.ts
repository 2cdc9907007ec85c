/**
 * HTTP plumbing shared by the emulator's handlers: its state, key checks, JSON bodies, and the one
 * place an error becomes the Anthropic envelope.
 */
import type { z } from 'zod';
import type { BatchStore } from './batches.ts';
import type { BillingRecord } from './billing.ts';
import type { PromptCache } from './cache.ts';
import { ApiError, errorBody, errorForStatus, errorHeaders, invalid } from './errors.ts';
import { newId } from './ids.ts';
import type { Script } from './script.ts';

/** A fault to inject into the next `count` calls of `POST /v1/messages`. */
export interface Fault {
  /** HTTP status to answer with (omit for latency only). */
  status?: number;
  /** How many calls it affects (default 1). */
  count?: number;
  latencyMs?: number;
  message?: string;
}

/** A queued fault with its remaining count. */
export interface PendingFault extends Fault {
  count: number;
}

/** Everything the handlers read and mutate; owned by `createEmulator`. */
export interface EmulatorState {
  /** API key → label (the label lands in the billing record and the usage report). */
  readonly apiKeys: ReadonlyMap<string, string>;
  readonly adminKey: string;
  readonly now: () => number;
  readonly latencyMs: number;
  readonly rateLimitHeaders: boolean;
  readonly cache: PromptCache;
  readonly billing: BillingRecord;
  readonly script: Script;
  readonly faults: PendingFault[];
  /** Message Batches, by id. */
  readonly batches: BatchStore;
  /** A batch ends once the clock passes `created + batchDelayMs` (0: on the next look at it). */
  readonly batchDelayMs: number;
  /** Serve retired models instead of answering 404 (default false: the API's behaviour). */
  readonly serveRetiredModels: boolean;
  /** The AWS credentials the Bedrock face verifies SigV4 signatures with. */
  readonly aws: { readonly accessKeyId: string; readonly secretAccessKey: string };
}

export const JSON_TYPE = 'application/json';

function keyOf(h: Headers): string | undefined {
  const key = h.get('x-api-key');
  if (key) return key;
  const auth = h.get('authorization');
  return auth?.startsWith('Bearer ') ? auth.slice(7) : undefined;
}

// The API refuses a call without `anthropic-version`; a gateway that drops the header must fail here too.
function requireVersion(h: Headers): void {
  if (!h.get('anthropic-version')) throw invalid('anthropic-version: header is required');
}

function apiKeyLabel(h: Headers, state: EmulatorState): string {
  const key = keyOf(h);
  if (!key) throw new ApiError(401, 'authentication_error', 'x-api-key header is required');
  const label = state.apiKeys.get(key);
  if (label === undefined) throw new ApiError(401, 'authentication_error', 'invalid x-api-key');
  return label;
}

/**
 * Checks an API key (`x-api-key` or `Authorization: Bearer`) and the `anthropic-version` header;
 * returns the key's label.
 */
export function authenticate(h: Headers, state: EmulatorState): string {
  const label = apiKeyLabel(h, state);
  requireVersion(h);
  return label;
}

/** Checks the Admin API key (usage and cost reports) and the `anthropic-version` header. */
export function authenticateAdmin(h: Headers, state: EmulatorState): void {
  if (keyOf(h) !== state.adminKey) {
    throw new ApiError(
      401,
      'authentication_error',
      'invalid x-api-key: this endpoint requires an Admin API key',
    );
  }
  requireVersion(h);
}

/** Control endpoints (`/_emulator/*`) take either kind of key and no version header. */
export function authenticateControl(h: Headers, state: EmulatorState): void {
  if (keyOf(h) !== state.adminKey) apiKeyLabel(h, state);
}

/**
 * Success headers. The `anthropic-ratelimit-*` family is opt-in: writing seven headers costs a
 * Node server about a third of its throughput, and the emulator is the benchmarks' upstream.
 */
export function headersFor(requestId: string, state: EmulatorState, type: string): Record<string, string> {
  if (!state.rateLimitHeaders) return { 'content-type': type, 'request-id': requestId };
  return {
    'content-type': type,
    'request-id': requestId,
    'anthropic-ratelimit-requests-limit': '4000',
    'anthropic-ratelimit-requests-remaining': '3999',
    'anthropic-ratelimit-requests-reset': new Date(state.now() + 60_000).toISOString(),
    'anthropic-ratelimit-input-tokens-limit': '2000000',
    'anthropic-ratelimit-output-tokens-limit': '400000',
  };
}

/** The Anthropic error envelope for any thrown value (non-`ApiError`s become a logged 500). */
export function errorResponse(e: unknown, requestId: string): Response {
  const err = e instanceof ApiError ? e : errorForStatus(500, 'Internal server error');
  if (!(e instanceof ApiError)) console.error('[emulator] internal error', e);
  return new Response(errorBody(err, requestId), {
    status: err.status,
    headers: { 'content-type': JSON_TYPE, 'request-id': requestId, ...errorHeaders(err) },
  });
}

/** The request body as JSON, or a 400. */
export async function readJson(req: Request): Promise<unknown> {
  const text = await req.text();
  try {
    return JSON.parse(text);
  } catch (e) {
    throw invalid(`The request body is not valid JSON: ${(e as Error).message}`);
  }
}

/** Validates a control body with its zod schema, as a 400 naming the first wrong field. */
export function parseBody<T>(schema: z.ZodType<T>, body: unknown): T {
  const r = schema.safeParse(body);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  throw invalid(`${issue?.path.join('.') || 'body'}: ${issue?.message ?? 'invalid'}`);
}

/** A JSON handler behind a key check, answering errors with the envelope. */
export function guarded(auth: (h: Headers) => void, handler: (req: Request) => unknown) {
  return async (c: { req: { raw: Request } }): Promise<Response> => {
    const requestId = newId('req_011C');
    try {
      auth(c.req.raw.headers);
      const result = await handler(c.req.raw);
      return new Response(JSON.stringify(result), {
        headers: { 'content-type': JSON_TYPE, 'request-id': requestId },
      });
    } catch (e) {
      return errorResponse(e, requestId);
    }
  };
}
