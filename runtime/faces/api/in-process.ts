import type { Hono } from 'hono';
import type { Operator } from '../../auth/operators.ts';

/**
 * The operator API called in-process as an operator (the `webOperator` binding): how the inbox and
 * the MCP server act, so the role checks, the validation and the audit entries are the API's own
 * and a decision taken there is recorded exactly like one taken with the CLI.
 */

export interface ApiAnswer<T = Record<string, unknown>> {
  status: number;
  body: T;
}

export type Api = <T = Record<string, unknown>>(
  method: string,
  path: string,
  body?: unknown,
) => Promise<ApiAnswer<T>>;

/** The API as `operator`; an answer that is not JSON comes back as an error envelope. */
export function inProcessApi(app: Hono, operator: Operator): Api {
  return async <T>(method: string, path: string, body?: unknown) => {
    const res = await app.request(
      path,
      {
        method,
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      },
      { webOperator: operator },
    );
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : {};
    } catch {
      parsed = { error: { message: text.slice(0, 300) } };
    }
    return { status: res.status, body: parsed as T };
  };
}
