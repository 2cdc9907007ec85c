import { parseScope, ScopeError } from '../../identity.ts';
import { CliError, type CommandContext } from './command.ts';

/**
 * The operator API client used by the remote CLI commands (budgets, kill, unkill, keys): base
 * URL and token resolution, JSON in and out, and the mapping of every failure to a `CliError`
 * the user can act on (exit 2: fix the command line; exit 1: the server or the API said no).
 */

export const DEFAULT_URL = 'http://127.0.0.1:8787';
export const REQUEST_TIMEOUT_MS = 30_000;

export const TOKEN_HINT =
  'pass --token or set CHOKEPOINT_TOKEN; `npm start` prints the admin token, also in .chokepoint/admin-token';

/** The API's error envelope: `{type:'error', error:{type,message}, chokepoint:{code, field?}}`. */
export interface ApiErrorBody {
  type: 'error';
  error: { type: string; message: string };
  chokepoint?: { code: string; field?: string; [k: string]: unknown };
}

/** The API answered with an error: exit 1, the API's own message, the envelope kept for --json. */
export class ApiError extends CliError {
  constructor(
    message: string,
    readonly status: number,
    readonly body: unknown,
    readonly code?: string,
    readonly field?: string,
  ) {
    super(message, 1);
    this.name = 'ApiError';
  }
}

type Values = CommandContext['values'];

export interface RemoteSettings {
  url: string;
  token: string;
  json: boolean;
}

/** --url / --token / --json with their environment defaults; a missing token is a usage error. */
export function remoteSettings(values: Values, env: NodeJS.ProcessEnv = process.env): RemoteSettings {
  const rawUrl = str(values.url) ?? (env.CHOKEPOINT_URL || undefined) ?? DEFAULT_URL;
  let url: URL;
  try {
    url = new URL(rawUrl);
  } catch {
    url = new URL('invalid:');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new CliError(`--url: expected an http(s) URL like ${DEFAULT_URL}, got ${JSON.stringify(rawUrl)}`);
  }
  const token = (str(values.token) ?? env.CHOKEPOINT_TOKEN ?? '').trim();
  if (!token) throw new CliError(`no operator token: ${TOKEN_HINT}`);
  return { url: rawUrl.replace(/\/+$/, ''), token, json: values.json === true };
}

export class ApiClient {
  constructor(
    readonly url: string,
    private readonly token: string,
    private readonly timeoutMs = REQUEST_TIMEOUT_MS,
  ) {}

  static from(values: Values, env?: NodeJS.ProcessEnv): { client: ApiClient; json: boolean } {
    const s = remoteSettings(values, env);
    return { client: new ApiClient(s.url, s.token), json: s.json };
  }

  get<T>(path: string): Promise<T> {
    return this.request<T>('GET', path);
  }

  post<T>(path: string, body: Record<string, unknown> = {}): Promise<T> {
    return this.request<T>('POST', path, body);
  }

  async request<T>(method: string, path: string, body?: Record<string, unknown>): Promise<T> {
    const target = `${this.url}${path}`;
    let res: Response;
    let text: string;
    try {
      res = await fetch(target, {
        method,
        headers: {
          authorization: `Bearer ${this.token}`,
          accept: 'application/json',
          ...(body ? { 'content-type': 'application/json' } : {}),
        },
        body: body ? JSON.stringify(body) : undefined,
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      text = await res.text();
    } catch (err) {
      throw this.networkError(err);
    }
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : {};
    } catch {
      const snippet = text.slice(0, 120).replace(/\s+/g, ' ');
      throw new CliError(
        `unexpected answer from ${this.url} (HTTP ${res.status}, not JSON: ${JSON.stringify(snippet)}); is --url a Chokepoint server?`,
        1,
      );
    }
    if (!res.ok) throw apiError(this.url, res.status, parsed);
    return parsed as T;
  }

  private networkError(err: unknown): CliError {
    const e = err as Error & { cause?: { code?: string; message?: string } };
    if (e?.name === 'TimeoutError' || e?.name === 'AbortError') {
      return new CliError(`no answer from Chokepoint at ${this.url} within ${this.timeoutMs / 1000}s`, 1);
    }
    const why = e?.cause?.code ?? e?.cause?.message ?? e?.message ?? String(err);
    return new CliError(
      `cannot reach Chokepoint at ${this.url} (${why}): is the server running? ` +
        'Start it with `chokepoint serve`, or point --url / CHOKEPOINT_URL at it',
      1,
    );
  }
}

function apiError(url: string, status: number, body: unknown): ApiError {
  const env = body as Partial<ApiErrorBody> | undefined;
  const code = env?.chokepoint?.code;
  let message = env?.error?.message ?? `HTTP ${status} ${JSON.stringify(body).slice(0, 200)}`;
  if (status === 401) message = `${url} refused the operator token: ${TOKEN_HINT}`;
  return new ApiError(message, status, body, code, env?.chokepoint?.field);
}

// ---- helpers shared by the remote commands ---------------------------------------------------

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

/** `--reason` is required for every audited change; an empty one is as good as none. */
export function requireReason(values: Values, what: string): string {
  const reason = str(values.reason)?.trim();
  if (!reason) {
    throw new CliError(`--reason is required: say why you ${what} (it goes to the audit log)`);
  }
  return reason;
}

/** Checks a scope locally so a typo is a usage error, not a round trip. */
export function checkScope(scope: string): string {
  try {
    parseScope(scope);
  } catch (err) {
    if (err instanceof ScopeError) throw new CliError(err.message);
    throw err;
  }
  return scope;
}

/** A subcommand's usage: positionals by name, the options that apply, and a usage line. */
export interface SubUsage {
  command: string;
  usage: string;
  args: string[];
  options?: string[];
}

const ALWAYS = new Set(['help', 'url', 'token', 'json']);

/** Checks the positional count and the options against one subcommand; returns the positionals. */
export function subArgs(sub: SubUsage, values: Values, positionals: string[]): string[] {
  const usage = `usage: chokepoint ${sub.usage}`;
  for (const [name, v] of Object.entries(values)) {
    if (v === undefined || ALWAYS.has(name) || sub.options?.includes(name)) continue;
    throw new CliError(`--${name} does not apply to \`chokepoint ${sub.command}\`\n${usage}`);
  }
  if (positionals.length < sub.args.length) {
    throw new CliError(`missing ${sub.args[positionals.length]}\n${usage}`);
  }
  if (positionals.length > sub.args.length) {
    const extra = positionals[sub.args.length]!;
    const quote = sub.options?.includes('reason') ? ' (quote a reason with spaces: --reason "...")' : '';
    throw new CliError(`unexpected argument ${JSON.stringify(extra)}${quote}\n${usage}`);
  }
  return positionals;
}

/** Prints an API answer as indented JSON (the `--json` output); returns the exit code 0. */
export function printJson(out: (line: string) => void, body: unknown): 0 {
  out(JSON.stringify(body, null, 2));
  return 0;
}

/**
 * Runs a command body; with --json an API error also prints its envelope on stdout so scripts
 * can read the code and field, while the one-line message still goes to stderr.
 */
export async function withJsonErrors(
  json: boolean,
  out: (line: string) => void,
  body: () => Promise<number | undefined>,
): Promise<number | undefined> {
  try {
    return await body();
  } catch (err) {
    if (json && err instanceof ApiError) printJson(out, err.body);
    throw err;
  }
}
