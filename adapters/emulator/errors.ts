/**
 * Provider errors as values: each one knows its HTTP status and Anthropic error type, and is
 * turned into the Anthropic envelope in exactly one place ({@link errorBody}).
 */

export type ErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'billing_error'
  | 'permission_error'
  | 'not_found_error'
  | 'request_too_large'
  | 'rate_limit_error'
  | 'api_error'
  | 'timeout_error'
  | 'overloaded_error';

/** Status → error type, as documented at platform.claude.com/docs/en/api/errors. */
const TYPE_BY_STATUS: Record<number, ErrorType> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  402: 'billing_error',
  403: 'permission_error',
  404: 'not_found_error',
  413: 'request_too_large',
  429: 'rate_limit_error',
  500: 'api_error',
  504: 'timeout_error',
  529: 'overloaded_error',
};

const DEFAULT_MESSAGE: Record<ErrorType, string> = {
  invalid_request_error: 'Invalid request',
  authentication_error: 'invalid x-api-key',
  billing_error: 'Your credit balance is too low to access the Anthropic API.',
  permission_error: 'Your API key does not have permission to use the specified resource.',
  not_found_error: 'Not found',
  request_too_large: 'Request exceeds the maximum allowed number of bytes.',
  rate_limit_error: 'This request would exceed the rate limit for your organization. Please retry later.',
  api_error: 'Internal server error',
  timeout_error: 'Request timed out',
  overloaded_error: 'Overloaded',
};

/** An error the emulated provider answers with. Not billed. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly type: ErrorType,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** An `ApiError` for any status (unknown 4xx → invalid_request_error, unknown 5xx → api_error). */
export function errorForStatus(status: number, message?: string): ApiError {
  const type = TYPE_BY_STATUS[status] ?? (status >= 500 ? 'api_error' : 'invalid_request_error');
  return new ApiError(status, type, message ?? DEFAULT_MESSAGE[type]);
}

/** A 400 naming the field that is wrong, worded like the API (`"max_tokens: Field required"`). */
export function invalid(message: string): ApiError {
  return new ApiError(400, 'invalid_request_error', message);
}

/** The Anthropic error envelope, as JSON text. */
export function errorBody(err: ApiError, requestId: string): string {
  return JSON.stringify({
    type: 'error',
    error: { type: err.type, message: err.message },
    request_id: requestId,
  });
}

/** Headers the API adds to errors that a client may (or must not) retry. */
export function errorHeaders(err: ApiError): Record<string, string> {
  if (err.status === 429) return { 'retry-after': '1', 'x-should-retry': 'true' };
  if (err.status >= 500) return { 'x-should-retry': 'true' };
  return { 'x-should-retry': 'false' };
}
