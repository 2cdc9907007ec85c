import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { PassThrough } from 'node:stream';
import { ReadBuffer, serializeMessage } from '@modelcontextprotocol/sdk/shared/stdio.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';

/**
 * The stdio transport for third-party MCP servers, with least privilege: the child gets a scrubbed
 * environment (PATH, HOME, LANG and what its server entry declares — never the runtime's own
 * variables, so no ANTHROPIC_* or CHOKEPOINT_* secret), and, when this process runs as root, a
 * separate user (`mcp.runAs`, default `nobody`), so it can read neither this process's
 * `/proc/<pid>/environ` nor the data folder (0700) with the admin token. A process that is not
 * root cannot switch users: the child then runs as the same user (see README, "MCP tools in
 * workflows", for what that allows).
 */

/** The user a stdio MCP server runs as. */
export interface RunAsUser {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

/** Variables a stdio server inherits from this process (each only if set). */
export const INHERITED_ENV = ['PATH', 'LANG'] as const;

/**
 * Looks a user up in /etc/passwd (no shell-out): undefined if there is no such user. A number is
 * taken as a uid (its group the same number unless /etc/passwd names it).
 */
export function lookupUser(name: string, passwd = '/etc/passwd'): RunAsUser | undefined {
  let text = '';
  try {
    text = readFileSync(passwd, 'utf8');
  } catch {
    // no passwd file: only a numeric uid can be used
  }
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f.length < 7) continue;
    if (f[0] === name || (/^\d+$/.test(name) && f[2] === name)) {
      return { name: f[0]!, uid: Number(f[2]), gid: Number(f[3]), home: f[5] || '/' };
    }
  }
  if (/^\d+$/.test(name)) return { name, uid: Number(name), gid: Number(name), home: '/' };
  return undefined;
}

/**
 * Whom stdio MCP servers run as. `setting`: a user name or uid (`mcp.runAs`), or `none`/`false`
 * to keep this process's user. Root without a setting: `nobody`. Not root: undefined (switching
 * users needs root). Throws when the named user does not exist.
 */
export function resolveRunAs(
  setting: string | false | undefined,
  uid: number | undefined = process.getuid?.(),
): RunAsUser | undefined {
  if (setting === false || setting === 'none' || setting === '') return undefined;
  if (uid !== 0) return undefined;
  const name = setting ?? 'nobody';
  const user = lookupUser(name);
  if (!user) {
    throw new Error(
      `mcp.runAs: no user '${name}' to run stdio MCP servers as (create it, name another, or set mcp.runAs: none to run them as root)`,
    );
  }
  return user;
}

/** The environment of a stdio server: the inherited few, its HOME, and what its entry declares. */
export function serverEnv(
  declared: Record<string, string> | undefined,
  runAs: RunAsUser | undefined,
  parent: NodeJS.ProcessEnv = process.env,
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const k of INHERITED_ENV) {
    const v = parent[k];
    if (v !== undefined && !v.startsWith('()')) env[k] = v;
  }
  const home = runAs ? runAs.home : parent.HOME;
  if (home) env.HOME = home;
  return { ...env, ...(declared ?? {}) };
}

export interface SandboxedStdioParams {
  command: string;
  args?: string[];
  env?: Record<string, string>;
  cwd?: string;
  runAs?: RunAsUser;
}

export class SandboxedStdioTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: (message: JSONRPCMessage) => void;
  private process?: ChildProcess;
  private readonly buffer = new ReadBuffer();
  /** The child's stderr, available before start so no early line is lost. */
  readonly stderr = new PassThrough();

  constructor(private readonly params: SandboxedStdioParams) {}

  get pid(): number | undefined {
    return this.process?.pid;
  }

  start(): Promise<void> {
    if (this.process) throw new Error('SandboxedStdioTransport already started');
    const { params } = this;
    return new Promise((resolve, reject) => {
      const child = spawn(params.command, params.args ?? [], {
        env: serverEnv(params.env, params.runAs),
        stdio: ['pipe', 'pipe', 'pipe'],
        shell: false,
        cwd: params.cwd,
        ...(params.runAs ? { uid: params.runAs.uid, gid: params.runAs.gid } : {}),
      });
      this.process = child;
      child.on('error', (err) => {
        reject(err);
        this.onerror?.(err);
      });
      child.on('spawn', () => resolve());
      child.on('close', () => {
        this.process = undefined;
        this.onclose?.();
      });
      child.stdin?.on('error', (err) => this.onerror?.(err));
      child.stdout?.on('data', (chunk: Buffer) => {
        this.buffer.append(chunk);
        for (;;) {
          let message: JSONRPCMessage | null;
          try {
            message = this.buffer.readMessage();
          } catch (err) {
            this.onerror?.(err as Error);
            continue;
          }
          if (message === null) break;
          this.onmessage?.(message);
        }
      });
      child.stdout?.on('error', (err) => this.onerror?.(err));
      child.stderr?.pipe(this.stderr);
    });
  }

  send(message: JSONRPCMessage): Promise<void> {
    return new Promise((resolve, reject) => {
      const stdin = this.process?.stdin;
      if (!stdin) {
        reject(new Error('Not connected'));
        return;
      }
      if (stdin.write(serializeMessage(message))) resolve();
      else stdin.once('drain', resolve);
    });
  }

  /** Ends stdin, then SIGTERM after 2 s and SIGKILL 2 s later if the server has not exited. */
  async close(): Promise<void> {
    const child = this.process;
    this.process = undefined;
    if (child) {
      const exited = new Promise<void>((r) => child.once('close', () => r()));
      const wait = () => Promise.race([exited, new Promise((r) => setTimeout(r, 2000).unref())]);
      try {
        child.stdin?.end();
      } catch {
        // already gone
      }
      await wait();
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await wait();
      }
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    this.buffer.clear();
  }
}
