import type { Api, ApiAnswer } from '../api/in-process.ts';

/**
 * The MCP server acts through the operator API, in-process, as the operator whose token opened
 * the session (the same `webOperator` binding the inbox uses): the role checks, the validation
 * and the audit entries are the API's own, so a decision taken from an MCP client is recorded
 * exactly like one taken with the CLI or in the inbox.
 */

export { type Api, type ApiAnswer, inProcessApi } from '../api/in-process.ts';

/** The API's error envelope: `{type:'error', error:{type,message}, chokepoint:{code, field?}}`. */
interface Envelope {
  error?: { message?: string };
  chokepoint?: { code?: string; field?: string };
}

/** A non-2xx answer of the API: its message (which names the field or the role it needs). */
export class ApiRefusal extends Error {
  constructor(
    readonly status: number,
    readonly code: string | undefined,
    readonly field: string | undefined,
    message: string,
  ) {
    super(message);
    this.name = 'ApiRefusal';
  }
}

/** The answer's body, or an `ApiRefusal` carrying the API's own message. */
export function unwrap<T>(a: ApiAnswer<T>): T {
  if (a.status < 300) return a.body;
  const env = a.body as Envelope;
  const field = env.chokepoint?.field;
  let message = env.error?.message ?? `HTTP ${a.status}`;
  if (field && !message.includes(field)) message = `${field}: ${message}`;
  throw new ApiRefusal(a.status, env.chokepoint?.code, field, message);
}

/** GET/POST through the API and unwrap. */
export async function call<T = Record<string, unknown>>(
  api: Api,
  method: string,
  path: string,
  body?: unknown,
): Promise<T> {
  return unwrap(await api<T>(method, path, body));
}

/** A query string of the set values. */
export function query(params: Record<string, string | number | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}
