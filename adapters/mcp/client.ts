import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { ErrorCode, McpError } from '@modelcontextprotocol/sdk/types.js';
import { type RunAsUser, resolveRunAs, SandboxedStdioTransport } from './stdio-transport.ts';

/**
 * MCP client connections: the only code that talks to MCP servers. A pool holds one connection
 * per server config (stdio: a child process; streamable HTTP: a session), made on first use and
 * shared by every workflow naming the same server. A connection that fails (the process died,
 * the session is gone, the network broke) is dropped, and the next call connects again. Calls
 * are never retried here: a tool call may have consequences, and whether to repeat it is the
 * caller's decision. A leaf: knows MCP, not policy.
 */

export interface StdioServer {
  command: string;
  args?: string[];
  /**
   * The server's whole environment besides PATH, HOME and LANG: nothing else of the parent's is
   * passed on (no ANTHROPIC_* or CHOKEPOINT_* secret).
   */
  env?: Record<string, string>;
  cwd?: string;
}

export interface HttpServer {
  url: string;
  /** Sent with every request, e.g. `{ authorization: 'Bearer …' }`. */
  headers?: Record<string, string>;
}

/** Where an MCP server is: exactly one of `stdio` and `http`. */
export type McpServerConfig = { name?: string } & (
  | { stdio: StdioServer; http?: undefined }
  | { http: HttpServer; stdio?: undefined }
);

export interface McpToolInfo {
  name: string;
  description?: string;
  inputSchema: Record<string, unknown>;
}

export interface McpCallResult {
  /** Text content joined by newlines; non-text content summarised (`[image image/png, 1024 bytes]`). */
  content: string;
  isError: boolean;
  /** UTF-8 size of `content`. */
  bytes: number;
}

export interface CallOptions {
  signal?: AbortSignal;
  /** Default: the pool's `callTimeoutMs`. */
  timeoutMs?: number;
  /**
   * Sent as `_meta["chokepoint/idempotency-key"]` with a tools/call: the same key for every
   * attempt of one logical call, so a server that honours it carries out a call cut short and made
   * again (after a time box, a kill, a crash) only once. Servers that do not know it ignore it.
   */
  idempotencyKey?: string;
}

/** The `_meta` key of a tools/call's idempotency key. */
export const IDEMPOTENCY_META = 'chokepoint/idempotency-key';

/**
 * Why a call to an MCP server did not produce a tool result:
 * - `unreachable`: no connection could be made (the call was never sent);
 * - `timeout`: no answer in time (a cancellation was sent);
 * - `aborted`: the caller's signal fired (a cancellation was sent);
 * - `disconnected`: the connection broke while the call was out;
 * - `protocol`: the server answered with an error instead of a result (unknown tool, bad input).
 */
export type McpFailure = 'unreachable' | 'timeout' | 'aborted' | 'disconnected' | 'protocol';

export class McpClientError extends Error {
  constructor(
    readonly kind: McpFailure,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'McpClientError';
  }
}

export interface McpPoolOptions {
  /** How long connecting (spawn or HTTP, then `initialize`) may take (default 15 s). */
  connectTimeoutMs?: number;
  /** Default per-call timeout (default 60 s). */
  callTimeoutMs?: number;
  /** Where connection events and server stderr lines go (default: nowhere). */
  log?: (level: 'debug' | 'info' | 'warn', message: string, fields: Record<string, unknown>) => void;
  /** The client name sent in `initialize`. */
  clientName?: string;
  clientVersion?: string;
  /**
   * Run stdio servers as this user (needs root; see `resolveRunAs`); null: as this process's
   * user. Default: `resolveRunAs($CHOKEPOINT_MCP_RUN_AS)` (root: `nobody`).
   */
  runAs?: RunAsUser | null;
}

const STDERR_TAIL = 2_000;

/** What a server config is called in messages: never its env or headers (they may hold secrets). */
export function describeServer(config: McpServerConfig): string {
  const name = config.name ? `'${config.name}' ` : '';
  if (config.stdio)
    return `MCP server ${name}(stdio: ${[config.stdio.command, ...(config.stdio.args ?? [])].join(' ')})`;
  let url = config.http.url;
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    u.search = '';
    url = u.toString();
  } catch {
    // reported as given
  }
  return `MCP server ${name}(http: ${url})`;
}

/** The sharing key: the transport part of the config, canonical. */
export function serverKey(config: McpServerConfig): string {
  const t = config.stdio
    ? {
        stdio: {
          command: config.stdio.command,
          args: config.stdio.args ?? [],
          env: sorted(config.stdio.env ?? {}),
          cwd: config.stdio.cwd ?? null,
        },
      }
    : { http: { url: config.http.url, headers: sorted(lower(config.http.headers ?? {})) } };
  return JSON.stringify(t);
}

const sorted = (o: Record<string, string>) =>
  Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
const lower = (o: Record<string, string>) =>
  Object.fromEntries(Object.entries(o).map(([k, v]) => [k.toLowerCase(), v]));

/** One server: connected lazily, reconnected on the next call after a failure. */
export class McpConnection {
  private client?: Client;
  private transport?: Transport;
  private connecting?: Promise<Client>;
  private stderrTail = '';
  private closed = false;
  /** How many times a connection was made (1 after the first, 2 after a reconnect, …). */
  connects = 0;

  constructor(
    readonly config: McpServerConfig,
    private readonly opts: Required<Pick<McpPoolOptions, 'connectTimeoutMs' | 'callTimeoutMs'>> &
      McpPoolOptions,
  ) {}

  /** How messages name the server: its name, else its transport. */
  get label(): string {
    return this.config.name ? `MCP server '${this.config.name}'` : describeServer(this.config);
  }

  get connected(): boolean {
    return this.client !== undefined;
  }

  /** The server process id (stdio, while connected). */
  get pid(): number | undefined {
    const t = this.transport;
    return t instanceof SandboxedStdioTransport ? t.pid : undefined;
  }

  /** Every tool the server lists (all pages). */
  async listTools(opts: CallOptions = {}): Promise<McpToolInfo[]> {
    const client = await this.ensure(opts.signal);
    const tools: McpToolInfo[] = [];
    let cursor: string | undefined;
    try {
      do {
        const page = await client.listTools(cursor ? { cursor } : {}, this.requestOptions(opts));
        for (const t of page.tools) {
          tools.push({
            name: t.name,
            ...(t.description !== undefined ? { description: t.description } : {}),
            inputSchema: t.inputSchema as Record<string, unknown>,
          });
        }
        cursor = page.nextCursor;
      } while (cursor);
    } catch (err) {
      throw this.failed(client, err, 'tools/list', opts);
    }
    return tools;
  }

  /** Calls a tool. A tool that reports an error is a result (`isError`), not a throw; a call that
   * got no result throws `McpClientError` saying why. */
  async callTool(
    name: string,
    args: Record<string, unknown>,
    opts: CallOptions = {},
  ): Promise<McpCallResult> {
    const client = await this.ensure(opts.signal);
    let result: Awaited<ReturnType<Client['callTool']>>;
    try {
      const params = {
        name,
        arguments: args,
        ...(opts.idempotencyKey ? { _meta: { [IDEMPOTENCY_META]: opts.idempotencyKey } } : {}),
      };
      result = await client.callTool(params, undefined, this.requestOptions(opts));
    } catch (err) {
      throw this.failed(client, err, `tools/call ${name}`, opts);
    }
    const content = resultText(result as ToolResultLike);
    return { content, isError: result.isError === true, bytes: Buffer.byteLength(content, 'utf8') };
  }

  /** Closes the connection (a stdio server gets its stdin closed, then SIGTERM). */
  async close(): Promise<void> {
    this.closed = true;
    const pending = this.connecting;
    this.connecting = undefined;
    await pending?.catch(() => undefined);
    await this.disconnect();
  }

  private requestOptions(opts: CallOptions) {
    const timeout = opts.timeoutMs ?? this.opts.callTimeoutMs;
    return { timeout, maxTotalTimeout: timeout, ...(opts.signal ? { signal: opts.signal } : {}) };
  }

  /** Classifies a failed request; a broken connection is dropped so the next call reconnects. */
  private failed(client: Client, err: unknown, what: string, opts: CallOptions): McpClientError {
    if (opts.signal?.aborted) {
      return new McpClientError(
        'aborted',
        `${what} on ${this.label} aborted: ${String(opts.signal.reason)}`,
        {
          cause: err,
        },
      );
    }
    if (err instanceof McpError && err.code === ErrorCode.RequestTimeout) {
      const ms = opts.timeoutMs ?? this.opts.callTimeoutMs;
      return new McpClientError('timeout', `${what} on ${this.label} timed out after ${ms} ms`, {
        cause: err,
      });
    }
    if (err instanceof McpError && err.code !== ErrorCode.ConnectionClosed) {
      return new McpClientError('protocol', `${what} on ${this.label} failed: ${err.message}`, {
        cause: err,
      });
    }
    if (Array.isArray((err as { issues?: unknown })?.issues)) {
      // An answer came but it is not a valid result: the connection itself is fine.
      return new McpClientError('protocol', `${what} on ${this.label}: the answer is not a valid result`, {
        cause: err,
      });
    }
    // The connection is gone or unusable (closed, HTTP session lost, network error): drop it.
    if (this.client === client) void this.disconnect();
    const tail = this.tail();
    return new McpClientError(
      'disconnected',
      `${what} on ${this.label} failed: ${(err as Error)?.message ?? String(err)}${tail}`,
      { cause: err },
    );
  }

  private tail(): string {
    const t = this.stderrTail.trim();
    return t ? ` (server stderr: ${t.split('\n').slice(-5).join(' | ')})` : '';
  }

  private async ensure(signal?: AbortSignal): Promise<Client> {
    if (this.closed) throw new McpClientError('unreachable', `${this.label}: the pool is closed`);
    if (this.client) return this.client;
    this.connecting ??= this.connect().finally(() => {
      this.connecting = undefined;
    });
    const connecting = this.connecting;
    if (!signal) return connecting;
    signal.throwIfAborted();
    // The caller may give up waiting; the connection, shared, is still made for the next call.
    return new Promise<Client>((resolve, reject) => {
      const onAbort = () =>
        reject(
          new McpClientError('aborted', `connecting to ${this.label} aborted: ${String(signal.reason)}`),
        );
      signal.addEventListener('abort', onAbort, { once: true });
      connecting.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
    });
  }

  private async connect(): Promise<Client> {
    const { config } = this;
    this.stderrTail = '';
    let transport: Transport;
    if (config.stdio) {
      const stdio = new SandboxedStdioTransport({
        command: config.stdio.command,
        args: config.stdio.args ?? [],
        ...(config.stdio.env ? { env: config.stdio.env } : {}),
        ...(config.stdio.cwd ? { cwd: config.stdio.cwd } : {}),
        ...(this.opts.runAs ? { runAs: this.opts.runAs } : {}),
      });
      // Read stderr always (a full pipe would block the server); keep the tail for error messages.
      stdio.stderr.on('data', (chunk: Buffer) => {
        const text = chunk.toString('utf8');
        this.stderrTail = (this.stderrTail + text).slice(-STDERR_TAIL);
        this.opts.log?.('debug', 'mcp server stderr', { server: this.label, text: text.trimEnd() });
      });
      transport = stdio;
    } else {
      let url: URL;
      try {
        url = new URL(config.http.url);
      } catch {
        throw new McpClientError('unreachable', `${this.label}: not a URL`);
      }
      transport = new StreamableHTTPClientTransport(url, {
        requestInit: { headers: { ...(config.http.headers ?? {}) } },
      });
    }
    const client = new Client(
      { name: this.opts.clientName ?? 'chokepoint', version: this.opts.clientVersion ?? '0.1.0' },
      { capabilities: {} },
    );
    client.onclose = () => {
      if (this.client !== client) return;
      this.client = undefined;
      this.transport = undefined;
      this.opts.log?.('info', 'mcp server connection closed: the next call reconnects', {
        server: this.label,
      });
    };
    client.onerror = (err) =>
      this.opts.log?.('debug', 'mcp transport error', { server: this.label, error: err.message });
    try {
      await client.connect(transport, { timeout: this.opts.connectTimeoutMs });
    } catch (err) {
      await client.close().catch(() => undefined);
      const e = err as Error;
      const why =
        e instanceof McpError && e.code === ErrorCode.RequestTimeout
          ? `no answer to initialize within ${this.opts.connectTimeoutMs} ms`
          : (e?.message ?? String(err));
      throw new McpClientError(
        'unreachable',
        `cannot connect to ${describeServer(config)}: ${why}${this.tail()}`,
        {
          cause: err,
        },
      );
    }
    if (this.closed) {
      await client.close().catch(() => undefined);
      throw new McpClientError('unreachable', `${this.label}: the pool is closed`);
    }
    this.client = client;
    this.transport = transport;
    this.connects++;
    this.opts.log?.('info', 'mcp server connected', {
      server: this.label,
      version: client.getServerVersion()?.version,
      ...(this.pid ? { pid: this.pid } : {}),
    });
    return client;
  }

  private async disconnect(): Promise<void> {
    const client = this.client;
    const transport = this.transport;
    this.client = undefined;
    this.transport = undefined;
    if (!client) return;
    if (transport instanceof StreamableHTTPClientTransport && transport.sessionId) {
      // Polite: end the HTTP session (bounded: the server may be the thing that broke).
      await Promise.race([
        transport.terminateSession().catch(() => undefined),
        new Promise((r) => setTimeout(r, 1_000).unref()),
      ]);
    }
    await client.close().catch(() => undefined);
  }
}

/** Connections shared per server config. */
export class McpPool {
  private readonly connections = new Map<string, McpConnection>();
  private readonly opts: ConstructorParameters<typeof McpConnection>[1];
  private closed = false;

  constructor(opts: McpPoolOptions = {}) {
    // Least privilege by default: as root, stdio servers run as `nobody` (or $CHOKEPOINT_MCP_RUN_AS).
    const runAs = opts.runAs === undefined ? resolveRunAs(process.env.CHOKEPOINT_MCP_RUN_AS) : opts.runAs;
    this.opts = { connectTimeoutMs: 15_000, callTimeoutMs: 60_000, ...opts, runAs: runAs ?? undefined };
  }

  /** The connection for a server config (not connected until used). */
  get(config: McpServerConfig): McpConnection {
    if (this.closed) throw new McpClientError('unreachable', 'the MCP pool is closed');
    const key = serverKey(config);
    let c = this.connections.get(key);
    if (!c) {
      c = new McpConnection(config, this.opts);
      this.connections.set(key, c);
    }
    return c;
  }

  listTools(config: McpServerConfig, opts?: CallOptions): Promise<McpToolInfo[]> {
    return this.get(config).listTools(opts);
  }

  callTool(
    config: McpServerConfig,
    name: string,
    args: Record<string, unknown>,
    opts?: CallOptions,
  ): Promise<McpCallResult> {
    return this.get(config).callTool(name, args, opts);
  }

  get size(): number {
    return this.connections.size;
  }

  /** Closes every connection; the pool takes no more calls. */
  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.connections.values()];
    this.connections.clear();
    await Promise.all(all.map((c) => c.close()));
  }
}

interface ToolResultLike {
  content?: Array<{ type: string; [key: string]: unknown }>;
  structuredContent?: unknown;
  toolResult?: unknown;
}

const base64Bytes = (data: unknown) =>
  typeof data === 'string' ? Math.floor((data.replace(/=+$/, '').length * 3) / 4) : 0;

/** A tool result as text for the model: text blocks as they are, other content summarised. */
export function resultText(result: ToolResultLike): string {
  const parts: string[] = [];
  for (const block of result.content ?? []) {
    switch (block.type) {
      case 'text':
        parts.push(String(block.text ?? ''));
        break;
      case 'image':
      case 'audio':
        parts.push(`[${block.type} ${String(block.mimeType ?? '')}, ${base64Bytes(block.data)} bytes]`);
        break;
      case 'resource_link':
        parts.push(
          `[resource link: ${String(block.uri ?? '')}${block.name ? ` (${String(block.name)})` : ''}]`,
        );
        break;
      case 'resource': {
        const r = (block.resource ?? {}) as { uri?: string; mimeType?: string; text?: string; blob?: string };
        parts.push(
          typeof r.text === 'string'
            ? r.text
            : `[resource ${r.uri ?? ''}${r.mimeType ? ` ${r.mimeType}` : ''}, ${base64Bytes(r.blob)} bytes]`,
        );
        break;
      }
      default:
        parts.push(`[${block.type} content]`);
    }
  }
  if (parts.length === 0 && result.structuredContent !== undefined) {
    return JSON.stringify(result.structuredContent);
  }
  if (parts.length === 0 && result.toolResult !== undefined) return JSON.stringify(result.toolResult);
  return parts.join('\n');
}
