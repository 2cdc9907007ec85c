/**
 * Bedrock errors ↔ Anthropic error envelopes, both ways.
 *
 * Bedrock answers an error with a status, `x-amzn-ErrorType: <Name>[:<namespace>]` and a body
 * `{"message": "…"}` (statuses from the Bedrock Runtime service model in
 * @aws-sdk/client-bedrock-runtime 3.1164: docs/research/bedrock-2026-12.md §3). The adapter turns
 * them into the Anthropic envelope the call path reads; the gateway's Bedrock face turns our
 * envelopes (refusals included) into Bedrock's shape so AWS clients parse them as typed errors.
 *
 * Budget refusals: both AWS clients retry 429s (the AWS SDK also any `ThrottlingException`, 500,
 * 502, 503, 504 and errors whose shape is marked retryable, like `ModelNotReadyException`). A
 * refusal retried is three refused calls and a slower "no". So `budget_exhausted` and
 * `time_box_exceeded` go out as **400 `ServiceQuotaExceededException`** with `x-should-retry:
 * false`: the AWS SDK surfaces it once as its typed `ServiceQuotaExceededException` (non-429, not
 * a throttling code, no retryable trait), @anthropic-ai/bedrock-sdk once as a `BadRequestError`
 * (it obeys `x-should-retry`, and never retries a 400). test/adapters/bedrock-errors.test.ts
 * proves both with a counting server.
 *
 * Rate limits are the exception: `rate_limited` is congestion that passes, so it goes out as Bedrock's
 * own **429 `ThrottlingException`**, which both clients retry (the face passes `retry-after` on).
 */

/** An Anthropic error envelope's error type and the status to answer it with. */
export interface AnthropicError {
  status: number;
  type: string;
}

/** Bedrock's HTTP errors by `x-amzn-ErrorType`, as the Anthropic error they mean. */
const FROM_BEDROCK: Record<string, AnthropicError> = {
  ThrottlingException: { status: 429, type: 'rate_limit_error' },
  ServiceQuotaExceededException: { status: 429, type: 'rate_limit_error' },
  ValidationException: { status: 400, type: 'invalid_request_error' },
  ConflictException: { status: 400, type: 'invalid_request_error' },
  AccessDeniedException: { status: 403, type: 'permission_error' },
  UnrecognizedClientException: { status: 401, type: 'authentication_error' },
  InvalidSignatureException: { status: 401, type: 'authentication_error' },
  MissingAuthenticationTokenException: { status: 401, type: 'authentication_error' },
  ExpiredTokenException: { status: 401, type: 'authentication_error' },
  ResourceNotFoundException: { status: 404, type: 'not_found_error' },
  ModelNotReadyException: { status: 529, type: 'overloaded_error' },
  ServiceUnavailableException: { status: 503, type: 'overloaded_error' },
  InternalServerException: { status: 500, type: 'api_error' },
  ModelErrorException: { status: 500, type: 'api_error' },
  ModelStreamErrorException: { status: 500, type: 'api_error' },
  ModelTimeoutException: { status: 504, type: 'timeout_error' },
};

/** `ValidationException:http://internal.amazon.com/coral/…` → `ValidationException`. */
export function errorTypeName(header: string | string[] | undefined): string | undefined {
  const v = Array.isArray(header) ? header[0] : header;
  const name = v?.split(':')[0]?.split('#').at(-1)?.trim();
  return name || undefined;
}

/**
 * A Bedrock error answer → the Anthropic error envelope (JSON text) and its status. Unknown
 * error types fall back on the status (4xx → invalid_request_error, 5xx → api_error); the
 * message is Bedrock's, or the raw body when it is not the `{"message"}` shape.
 */
export function anthropicErrorOf(
  status: number,
  errorType: string | string[] | undefined,
  body: Buffer,
): { status: number; body: string } {
  const name = errorTypeName(errorType);
  const known = name ? FROM_BEDROCK[name] : undefined;
  const mapped = known ?? {
    status,
    type: status >= 500 ? 'api_error' : status === 429 ? 'rate_limit_error' : 'invalid_request_error',
  };
  const text = body.toString('utf8');
  let message = text.trim().slice(0, 2000) || `${name ?? 'Bedrock error'} (HTTP ${status})`;
  let extra: Record<string, unknown> = {};
  try {
    const parsed = JSON.parse(text) as Record<string, unknown>;
    const m = parsed.message ?? parsed.Message;
    if (typeof m === 'string') message = m;
    // A chokepoint upstream (another gateway) keeps its machine-readable refusal.
    if (parsed.chokepoint) extra = { chokepoint: parsed.chokepoint };
  } catch {
    // not JSON: the raw text is the message
  }
  const envelope = {
    type: 'error',
    error: { type: mapped.type, message: name ? `${name}: ${message}` : message },
  };
  return { status: mapped.status, body: JSON.stringify({ ...envelope, ...extra }) };
}

/** Stream exceptions (`:exception-type`, lowerCamel) → Anthropic error types. */
const EXCEPTION_TO_ANTHROPIC: Record<string, string> = {
  throttlingException: 'rate_limit_error',
  serviceQuotaExceededException: 'rate_limit_error',
  validationException: 'invalid_request_error',
  modelTimeoutException: 'timeout_error',
  serviceUnavailableException: 'overloaded_error',
  modelNotReadyException: 'overloaded_error',
  internalServerException: 'api_error',
  modelStreamErrorException: 'api_error',
};

/** A stream `exception` message's type → the Anthropic SSE `error` event's type. */
export function anthropicTypeOfException(exceptionType: string): string {
  const lower = exceptionType.charAt(0).toLowerCase() + exceptionType.slice(1);
  return EXCEPTION_TO_ANTHROPIC[lower] ?? 'api_error';
}

/** Anthropic error types → Bedrock's HTTP error (status, `x-amzn-ErrorType`). */
const TO_BEDROCK: Record<string, { status: number; name: string }> = {
  invalid_request_error: { status: 400, name: 'ValidationException' },
  request_too_large: { status: 400, name: 'ValidationException' },
  authentication_error: { status: 403, name: 'UnrecognizedClientException' },
  permission_error: { status: 403, name: 'AccessDeniedException' },
  billing_error: { status: 403, name: 'AccessDeniedException' },
  not_found_error: { status: 404, name: 'ResourceNotFoundException' },
  rate_limit_error: { status: 429, name: 'ThrottlingException' },
  api_error: { status: 500, name: 'InternalServerException' },
  timeout_error: { status: 408, name: 'ModelTimeoutException' },
  overloaded_error: { status: 503, name: 'ServiceUnavailableException' },
};

/** Our refusals by `chokepoint.code`: the Bedrock error no AWS client retries (see the header). */
const REFUSALS: Record<string, { status: number; name: string }> = {
  budget_exhausted: { status: 400, name: 'ServiceQuotaExceededException' },
  time_box_exceeded: { status: 400, name: 'ServiceQuotaExceededException' },
  rate_limited: { status: 429, name: 'ThrottlingException' },
  killed: { status: 403, name: 'AccessDeniedException' },
  model_not_allowed: { status: 403, name: 'AccessDeniedException' },
  unauthenticated: { status: 403, name: 'UnrecognizedClientException' },
  prefix_drift: { status: 400, name: 'ValidationException' },
  invalid_request: { status: 400, name: 'ValidationException' },
};

/** A Bedrock error answer: what the gateway face writes. */
export interface BedrockErrorAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * The Bedrock error for a budget refusal: 400 `ServiceQuotaExceededException`, not retried by
 * @aws-sdk/client-bedrock-runtime nor @anthropic-ai/bedrock-sdk. `chokepoint` (the refusal's
 * machine-readable object) is kept in the body.
 */
export function budgetRefusal(message: string, chokepoint?: unknown): BedrockErrorAnswer {
  return errorAnswer(REFUSALS.budget_exhausted!, message, chokepoint, false);
}

/**
 * An Anthropic error envelope (any status; ours with its `chokepoint` object) → the Bedrock error
 * answer: status, `x-amzn-ErrorType`, `{"message", "chokepoint"?}`. Refusals map by their code
 * so none is retried; other errors by their Anthropic type (an overload stays retryable).
 */
export function bedrockErrorOf(status: number, envelope: Buffer | string): BedrockErrorAnswer {
  const text = typeof envelope === 'string' ? envelope : envelope.toString('utf8');
  let type: string | undefined;
  let message = text.trim().slice(0, 2000) || `HTTP ${status}`;
  let chokepoint: { code?: unknown } | undefined;
  try {
    const parsed = JSON.parse(text) as {
      error?: { type?: unknown; message?: unknown };
      chokepoint?: unknown;
    };
    if (typeof parsed.error?.type === 'string') type = parsed.error.type;
    if (typeof parsed.error?.message === 'string') message = parsed.error.message;
    if (parsed.chokepoint && typeof parsed.chokepoint === 'object') chokepoint = parsed.chokepoint;
  } catch {
    // not an envelope: mapped by status below
  }
  const refusal = typeof chokepoint?.code === 'string' ? REFUSALS[chokepoint.code] : undefined;
  // A rate limit frees with time: left retryable, as Bedrock's own throttling (see the header).
  if (refusal) return errorAnswer(refusal, message, chokepoint, refusal.status === 429 ? undefined : false);
  const byType = type ? TO_BEDROCK[type] : undefined;
  const mapped =
    byType ??
    (status === 429
      ? TO_BEDROCK.rate_limit_error!
      : status >= 500
        ? TO_BEDROCK.api_error!
        : TO_BEDROCK.invalid_request_error!);
  return errorAnswer(mapped, message, chokepoint, status >= 500 || status === 429 ? undefined : false);
}

function errorAnswer(
  e: { status: number; name: string },
  message: string,
  chokepoint: unknown,
  retry: boolean | undefined,
): BedrockErrorAnswer {
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'x-amzn-errortype': e.name,
  };
  if (retry === false) headers['x-should-retry'] = 'false';
  const body = JSON.stringify({ message, ...(chokepoint ? { chokepoint } : {}) });
  return { status: e.status, headers, body };
}

/** Anthropic SSE error types → the stream exception Bedrock sends in their place. */
const TYPE_TO_EXCEPTION: Record<string, string> = {
  rate_limit_error: 'throttlingException',
  invalid_request_error: 'validationException',
  timeout_error: 'modelTimeoutException',
  overloaded_error: 'serviceUnavailableException',
  api_error: 'internalServerException',
};

/** An Anthropic SSE `error` event's type → the `:exception-type` of Bedrock's exception message. */
export function exceptionTypeOfAnthropic(type: string): string {
  return TYPE_TO_EXCEPTION[type] ?? 'modelStreamErrorException';
}
