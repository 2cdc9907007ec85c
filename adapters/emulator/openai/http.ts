/**
 * The OpenAI face's plumbing: bearer keys, OpenAI's error envelope
 * (`{"error":{"message","type","param","code"}}`), and its response headers (`x-request-id`).
 * Errors raised by shared emulator code (`ApiError`, e.g. a malformed directive) are turned into
 * this envelope here, in one place.
 */
import { ApiError } from '../errors.ts';
import type { EmulatorState, PendingFault } from '../http.ts';
import { newId } from '../ids.ts';

/** An error as OpenAI answers it. Never billed. */
export class OpenAIError extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    message: string,
    readonly param: string | null = null,
    readonly code: string | null = null,
  ) {
    super(message);
    this.name = 'OpenAIError';
  }
}

/** A 400 naming the parameter that is wrong. */
export function badParam(param: string, message: string, code: string | null = null): OpenAIError {
  return new OpenAIError(400, 'invalid_request_error', message, param, code);
}

/** The 404 OpenAI answers for a model it does not serve. */
export function unknownModel(model: string): OpenAIError {
  return new OpenAIError(
    404,
    'invalid_request_error',
    `The model \`${model}\` does not exist or you do not have access to it.`,
    null,
    'model_not_found',
  );
}

/** What OpenAI answers for an injected status (type and code as its API uses them). */
export function errorForStatus(status: number, message?: string): OpenAIError {
  if (status === 429)
    return new OpenAIError(
      429,
      'requests',
      message ?? 'Rate limit reached for requests',
      null,
      'rate_limit_exceeded',
    );
  if (status === 401)
    return new OpenAIError(401, 'invalid_request_error', message ?? 'Unauthorized', null, null);
  if (status === 503)
    return new OpenAIError(
      503,
      'server_error',
      message ?? 'The server is overloaded or not ready yet.',
      null,
      null,
    );
  if (status >= 500)
    return new OpenAIError(
      status,
      'server_error',
      message ?? 'The server had an error while processing your request.',
    );
  return new OpenAIError(status, 'invalid_request_error', message ?? 'Invalid request');
}

/** The envelope, as JSON text. */
export function errorJson(e: OpenAIError): string {
  return JSON.stringify({ error: { message: e.message, type: e.type, param: e.param, code: e.code } });
}

/** The OpenAI error response for anything thrown (unknown errors become a logged 500). */
export function openaiError(e: unknown, requestId: string): Response {
  let err: OpenAIError;
  if (e instanceof OpenAIError) err = e;
  else if (e instanceof ApiError) err = errorForStatus(e.status, e.message);
  else {
    console.error('[emulator] internal error', e);
    err = errorForStatus(500);
  }
  return new Response(errorJson(err), {
    status: err.status,
    headers: { 'content-type': 'application/json', 'x-request-id': requestId },
  });
}

export const requestIdOf = () => newId('req_');

function bearer(h: Headers): string | undefined {
  const auth = h.get('authorization');
  return auth?.startsWith('Bearer ') ? auth.slice(7).trim() : undefined;
}

const NO_KEY =
  "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).";

/** Checks the bearer key; returns its label (the `project_id` the costs API groups by). */
export function authenticateOpenAI(h: Headers, state: EmulatorState): string {
  const key = bearer(h);
  if (!key) throw new OpenAIError(401, 'invalid_request_error', NO_KEY);
  const label = state.apiKeys.get(key);
  if (label === undefined) {
    throw new OpenAIError(
      401,
      'invalid_request_error',
      `Incorrect API key provided: ${key.slice(0, 3)}*****${key.slice(-4)}. You can find your API key at https://platform.openai.com/account/api-keys.`,
      null,
      'invalid_api_key',
    );
  }
  return label;
}

/** The organization endpoints take the admin key only. */
export function authenticateOpenAIAdmin(h: Headers, state: EmulatorState): void {
  const key = bearer(h);
  if (key !== state.adminKey) {
    throw new OpenAIError(
      401,
      'invalid_request_error',
      'This endpoint requires an admin API key.',
      null,
      key ? 'invalid_api_key' : null,
    );
  }
}

/** The next injected fault (shared with the other faces: `/_emulator/faults`). */
export function takeFault(state: EmulatorState): PendingFault | undefined {
  const f = state.faults[0];
  if (!f) return undefined;
  if (--f.count <= 0) state.faults.shift();
  return f;
}

/** The request body as a JSON object, or OpenAI's 400. */
export async function readBody(raw: Request): Promise<Record<string, unknown>> {
  const text = await raw.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new OpenAIError(
      400,
      'invalid_request_error',
      "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly.)",
    );
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new OpenAIError(400, 'invalid_request_error', 'The request body must be a JSON object.');
  }
  return body as Record<string, unknown>;
}

/** Success headers. */
export function okHeaders(requestId: string, type: string): Record<string, string> {
  return { 'content-type': type, 'x-request-id': requestId, 'openai-processing-ms': '1' };
}
