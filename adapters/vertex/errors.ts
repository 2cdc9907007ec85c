/**
 * Error envelopes between Google's and Anthropic's shapes, both ways.
 *
 * Google APIs answer `{"error":{"code":429,"message":"…","status":"RESOURCE_EXHAUSTED",
 * "details":[…]}}` (some front ends wrap it in a one-element list). Vertex passes errors raised by
 * the Claude model itself through in Anthropic's envelope (`{"type":"error","error":{…}}`), so
 * both arrive from upstream. The Provider port speaks Anthropic's envelope only
 * (docs/providers.md); the gateway's Vertex face answers in Google's. A `chokepoint` object on a
 * refusal survives both directions, and the Anthropic error type rides along in an `ErrorInfo`
 * detail so the round trip is lossless.
 */

/** Anthropic error type → the Google canonical status of the same meaning. */
const STATUS_BY_TYPE: Readonly<Record<string, string>> = {
  invalid_request_error: 'INVALID_ARGUMENT',
  authentication_error: 'UNAUTHENTICATED',
  billing_error: 'FAILED_PRECONDITION',
  permission_error: 'PERMISSION_DENIED',
  not_found_error: 'NOT_FOUND',
  request_too_large: 'INVALID_ARGUMENT',
  rate_limit_error: 'RESOURCE_EXHAUSTED',
  api_error: 'INTERNAL',
  timeout_error: 'DEADLINE_EXCEEDED',
  overloaded_error: 'UNAVAILABLE',
};

/** Google canonical status → Anthropic error type (when the HTTP status alone is ambiguous). */
const TYPE_BY_STATUS_NAME: Readonly<Record<string, string>> = {
  INVALID_ARGUMENT: 'invalid_request_error',
  FAILED_PRECONDITION: 'invalid_request_error',
  OUT_OF_RANGE: 'invalid_request_error',
  UNAUTHENTICATED: 'authentication_error',
  PERMISSION_DENIED: 'permission_error',
  NOT_FOUND: 'not_found_error',
  ALREADY_EXISTS: 'invalid_request_error',
  ABORTED: 'api_error',
  RESOURCE_EXHAUSTED: 'rate_limit_error',
  CANCELLED: 'api_error',
  INTERNAL: 'api_error',
  UNKNOWN: 'api_error',
  DATA_LOSS: 'api_error',
  UNIMPLEMENTED: 'not_found_error',
  UNAVAILABLE: 'overloaded_error',
  DEADLINE_EXCEEDED: 'timeout_error',
};

/** HTTP status → Anthropic error type, as Anthropic documents them. */
const TYPE_BY_HTTP: Readonly<Record<number, string>> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  402: 'billing_error',
  403: 'permission_error',
  404: 'not_found_error',
  413: 'request_too_large',
  429: 'rate_limit_error',
  500: 'api_error',
  503: 'overloaded_error',
  504: 'timeout_error',
  529: 'overloaded_error',
};

/** HTTP status → Google canonical status (google.rpc.Code's HTTP mapping). */
const STATUS_BY_HTTP: Readonly<Record<number, string>> = {
  400: 'INVALID_ARGUMENT',
  401: 'UNAUTHENTICATED',
  403: 'PERMISSION_DENIED',
  404: 'NOT_FOUND',
  409: 'ABORTED',
  413: 'INVALID_ARGUMENT',
  429: 'RESOURCE_EXHAUSTED',
  499: 'CANCELLED',
  500: 'INTERNAL',
  501: 'UNIMPLEMENTED',
  503: 'UNAVAILABLE',
  504: 'DEADLINE_EXCEEDED',
  529: 'UNAVAILABLE',
};

const ERROR_INFO = 'type.googleapis.com/google.rpc.ErrorInfo';
/** The `ErrorInfo.domain` under which our details carry the Anthropic error type. */
export const ERROR_DOMAIN = 'chokepoint.anthropic';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The Anthropic error type of an HTTP status (unknown 4xx: invalid_request_error, 5xx: api_error). */
export function anthropicTypeOf(status: number): string {
  return TYPE_BY_HTTP[status] ?? (status >= 500 ? 'api_error' : 'invalid_request_error');
}

/** The Google status name of an HTTP status and Anthropic type. */
export function googleStatusOf(status: number, type?: string): string {
  return (
    STATUS_BY_HTTP[status] ??
    (type ? STATUS_BY_TYPE[type] : undefined) ??
    (status >= 500 ? 'INTERNAL' : 'FAILED_PRECONDITION')
  );
}

export interface AnthropicEnvelope {
  type: 'error';
  error: { type: string; message: string };
  request_id?: string;
  chokepoint?: unknown;
}

export interface GoogleEnvelope {
  error: { code: number; message: string; status: string; details?: unknown[] };
  chokepoint?: unknown;
}

/** The Google envelope inside a parsed body (an object, or the first element of a list). */
function googleError(body: unknown): (Obj & { error: Obj }) | undefined {
  const first = Array.isArray(body) ? body[0] : body;
  if (isObj(first) && isObj(first.error) && first.type !== 'error') return first as Obj & { error: Obj };
  return undefined;
}

/**
 * Any error body from Vertex as an Anthropic envelope: an Anthropic one is kept as it is (with
 * its `chokepoint`), a Google one (object or list) is mapped by its status and details, anything
 * else (HTML from a proxy, empty) becomes the status's type with the text as its message.
 */
export function toAnthropicError(status: number, body: Buffer | string): AnthropicEnvelope {
  const text = typeof body === 'string' ? body : body.toString('utf8');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  if (
    isObj(parsed) &&
    parsed.type === 'error' &&
    isObj(parsed.error) &&
    typeof parsed.error.type === 'string'
  ) {
    return parsed as unknown as AnthropicEnvelope;
  }
  const g = googleError(parsed);
  if (g) {
    const info = (Array.isArray(g.error.details) ? g.error.details : []).find(
      (d): d is Obj => isObj(d) && d['@type'] === ERROR_INFO && d.domain === ERROR_DOMAIN,
    );
    const carried = isObj(info?.metadata) ? info.metadata.type : undefined;
    const byName = typeof g.error.status === 'string' ? TYPE_BY_STATUS_NAME[g.error.status] : undefined;
    const type =
      typeof carried === 'string' ? carried : (TYPE_BY_HTTP[status] ?? byName ?? anthropicTypeOf(status));
    const message = typeof g.error.message === 'string' ? g.error.message : JSON.stringify(g.error);
    return {
      type: 'error',
      error: { type, message },
      ...(g.chokepoint !== undefined ? { chokepoint: g.chokepoint } : {}),
    };
  }
  const message = text.trim() ? text.trim().slice(0, 2000) : `HTTP ${status} with an empty body`;
  return { type: 'error', error: { type: anthropicTypeOf(status), message } };
}

/**
 * An Anthropic error body as Google's envelope, for answers that must look like Vertex's own.
 * The `chokepoint` object stays at the top level; the Anthropic type travels in an ErrorInfo
 * detail (`reason` is the chokepoint code when there is one, else the type in capitals).
 */
export function toGoogleError(status: number, body: Buffer | string | AnthropicEnvelope): GoogleEnvelope {
  let env: AnthropicEnvelope;
  if (typeof body === 'string' || Buffer.isBuffer(body)) env = toAnthropicError(status, body);
  else env = body;
  const cp = isObj(env.chokepoint) ? env.chokepoint : undefined;
  const reason = typeof cp?.code === 'string' ? cp.code.toUpperCase() : env.error.type.toUpperCase();
  return {
    error: {
      code: status,
      message: env.error.message,
      status: googleStatusOf(status, env.error.type),
      details: [{ '@type': ERROR_INFO, reason, domain: ERROR_DOMAIN, metadata: { type: env.error.type } }],
    },
    ...(env.chokepoint !== undefined ? { chokepoint: env.chokepoint } : {}),
  };
}
