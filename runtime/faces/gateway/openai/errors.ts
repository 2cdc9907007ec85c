import type { IncomingHttpHeaders } from 'node:http';
import type { Refusal } from '../../../gateway/refusal.ts';

/**
 * Error answers in OpenAI's envelope, `{"error":{"message","type","param","code"}}`. A Chokepoint
 * refusal keeps its `chokepoint` object, both beside `error` (where the Anthropic face puts it)
 * and inside it (the `openai` SDK exposes only `error`, as `err.error`); `code` is the refusal
 * code and `param` the field a 400 names. Status and retry headers carry over, so the `openai`
 * SDK, which obeys `x-should-retry` before looking at the status, raises a budget refusal's
 * RateLimitError once, without retrying.
 */
export interface OpenAIErrorAnswer {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

const TYPE: Record<string, string> = {
  invalid_request_error: 'invalid_request_error',
  request_too_large: 'invalid_request_error',
  not_found_error: 'invalid_request_error',
  authentication_error: 'authentication_error',
  permission_error: 'permission_error',
  billing_error: 'insufficient_quota',
  rate_limit_error: 'rate_limit_error',
  api_error: 'server_error',
  overloaded_error: 'server_error',
  timeout_error: 'server_error',
};

const CODE: Record<string, string> = {
  rate_limit_error: 'rate_limit_exceeded',
  overloaded_error: 'overloaded',
  billing_error: 'insufficient_quota',
  timeout_error: 'timeout',
};

/** Headers passed on from an Anthropic error answer (or a refusal) to its OpenAI form. */
const KEPT = ['retry-after', 'retry-after-ms', 'x-should-retry'];

/**
 * The OpenAI status for an Anthropic one: the same, except 529 (Anthropic's "overloaded", which
 * OpenAI does not use) answered as 503, OpenAI's status for an overloaded engine.
 */
export function openAIStatus(status: number): number {
  return status === 529 ? 503 : status;
}

/** An Anthropic error envelope (with or without our `chokepoint` object) in OpenAI's shape. */
export function openAIErrorBody(envelope: unknown, status: number): Record<string, unknown> {
  const env = (envelope ?? {}) as Record<string, unknown>;
  const err = (env.error ?? {}) as Record<string, unknown>;
  const type =
    typeof err.type === 'string' ? err.type : status >= 500 ? 'api_error' : 'invalid_request_error';
  const chokepoint = env.chokepoint as Record<string, unknown> | undefined;
  const message =
    typeof err.message === 'string' ? err.message : `the provider answered ${status} without a message`;
  const error: Record<string, unknown> = {
    message,
    type: TYPE[type] ?? (status >= 500 ? 'server_error' : 'invalid_request_error'),
    param: typeof chokepoint?.field === 'string' ? chokepoint.field : null,
    code: typeof chokepoint?.code === 'string' ? chokepoint.code : (CODE[type] ?? null),
  };
  if (chokepoint) error.chokepoint = chokepoint;
  return { error, ...(chokepoint ? { chokepoint } : {}) };
}

/** A whole Anthropic error answer (status, headers, body bytes) as an OpenAI one. */
export function toOpenAIError(
  status: number,
  headers: IncomingHttpHeaders | Record<string, string>,
  body: Buffer,
): OpenAIErrorAnswer {
  let envelope: unknown;
  try {
    envelope = JSON.parse(body.toString('utf8'));
  } catch {
    envelope = { error: { type: undefined, message: body.toString('utf8').slice(0, 500) || undefined } };
  }
  const out: Record<string, string> = { 'content-type': 'application/json' };
  for (const name of KEPT) {
    const v = headers[name];
    if (typeof v === 'string') out[name] = v;
  }
  const requestId = headers['request-id'];
  if (typeof requestId === 'string') out['x-request-id'] = requestId;
  return {
    status: openAIStatus(status),
    headers: out,
    body: Buffer.from(JSON.stringify(openAIErrorBody(envelope, status))),
  };
}

/** A refusal (budget, kill switch, bad field...) as the OpenAI face answers it. */
export function refusalToOpenAI(refusal: Refusal, requestId?: string): OpenAIErrorAnswer {
  const headers = refusal.headers(requestId);
  return toOpenAIError(
    refusal.status,
    { ...headers, ...(requestId ? { 'request-id': requestId } : {}) },
    Buffer.from(JSON.stringify(refusal.envelope(requestId))),
  );
}

/** An error in the middle of a stream, from an Anthropic `error` event's data. */
export function streamErrorOf(data: unknown): Record<string, unknown> {
  const type = ((data as { error?: { type?: unknown } } | undefined)?.error?.type ?? 'api_error') as string;
  const status = type === 'overloaded_error' ? 503 : type === 'rate_limit_error' ? 429 : 500;
  return openAIErrorBody(data, status).error as Record<string, unknown>;
}
