import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Anthropic from '@anthropic-ai/sdk';
import { compose, type Services } from '../../runtime/compose.ts';
import { type Config, resolveConfig } from '../../runtime/config/load.ts';
import { createApp } from '../../runtime/faces/http/app.ts';
import { type Listening, listen } from '../../runtime/faces/http/listen.ts';
import { createLogger, type Logger } from '../../runtime/log.ts';

export const ADMIN_TOKEN = 'cpo_test-admin-token-0123456789';
/** Two more operators the API tests log in as: a viewer and an operator. */
export const VIEWER_TOKEN = 'cpo_test-viewer-token-0123456789';
export const OPERATOR_TOKEN = 'cpo_test-oncall-token-0123456789';
/** Config adding `vera` (viewer) and `oncall` (operator) with those tokens. */
export const OPERATORS = {
  auth: {
    operators: [
      { name: 'vera', role: 'viewer', token: VIEWER_TOKEN },
      { name: 'oncall', role: 'operator', token: OPERATOR_TOKEN },
    ],
  },
};

export type Backend = 'embedded' | 'redis';

export const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';

export interface Harness {
  rt: Services;
  url: string;
  /** The listener: its fast HTTP/1.1 path's counts say which requests took it. */
  listening: Listening;
  config: Config;
  logs: string[];
  /** Operator API call with the admin token (or another). */
  api<T = Record<string, unknown>>(
    method: string,
    path: string,
    body?: unknown,
    token?: string,
  ): Promise<{ status: number; body: T }>;
  /** Creates a gateway key and returns an SDK client using it. */
  client(spec?: {
    team?: string;
    env?: string;
    seat?: string;
    workflow?: string;
    driftPolicy?: string;
  }): Promise<{
    client: Anthropic;
    key: string;
    id: string;
  }>;
  close(): Promise<void>;
}

let counter = 0;

/** A real Chokepoint server (in this process) on a free port, with the emulator as provider. */
export async function startHarness(
  opts: {
    backend?: Backend;
    config?: Record<string, unknown>;
    now?: () => number;
    prefix?: string;
    /** The Redis (or `redis-cluster://`) URL of the redis backend; default REDIS_URL. */
    redisUrl?: string;
    /** Host the workflows of this folder (the shipped `workflows/` with `true`). */
    workflows?: string | true;
    /** The level of the logger whose lines land in `logs` (default debug). */
    logLevel?: 'debug' | 'info' | 'warn' | 'error';
    /** More environment for the config (OTEL_* …). */
    env?: Record<string, string>;
  } = {},
): Promise<Harness> {
  const dataDir = mkdtempSync(join(tmpdir(), 'cp-test-'));
  const backend = opts.backend ?? 'embedded';
  const prefix = opts.prefix ?? `{cpt${process.pid}x${++counter}x${Date.now() % 100000}}`;
  const redisUrl = opts.redisUrl ?? REDIS_URL;
  const raw = {
    dataDir,
    server: { port: 0 },
    ...(backend === 'redis' ? { store: { backend: 'redis', redisUrl, prefix } } : {}),
    ...opts.config,
  };
  const config = resolveConfig(raw, { env: { CHOKEPOINT_ADMIN_TOKEN: ADMIN_TOKEN, ...opts.env } });
  const logs: string[] = [];
  const log: Logger = createLogger({
    level: opts.logLevel ?? 'debug',
    pretty: false,
    write: (l) => logs.push(l),
  });
  const dir = opts.workflows === true ? new URL('../../workflows', import.meta.url).pathname : opts.workflows;
  // As `serve` does when it hosts workflows; without, the gateway, API and stores alone.
  const rt = await compose(config, log, {
    now: opts.now,
    workflows: dir ? { dir, killPollMs: 100 } : false,
  });
  const l = await listen(createApp(rt), { port: 0, host: '127.0.0.1' });
  const url = l.url;

  const api: Harness['api'] = async (method, path, body, token = ADMIN_TOKEN) => {
    const res = await fetch(`${url}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : {} };
  };

  return {
    rt,
    url,
    listening: l,
    config,
    logs,
    api,
    async client(spec = {}) {
      const res = await api<{ key: string; record: { id: string } }>('POST', '/api/keys', {
        team: 'payments',
        env: 'prod',
        seat: `seat-${++counter}`,
        ...spec,
      });
      if (res.status !== 201) throw new Error(`key create failed: ${JSON.stringify(res.body)}`);
      return {
        key: res.body.key,
        id: res.body.record.id,
        client: new Anthropic({ baseURL: url, apiKey: res.body.key, maxRetries: 2 }),
      };
    },
    async close() {
      await l.close(1000);
      await rt.close();
      rmSync(dataDir, { recursive: true, force: true });
      // A test's own cluster is thrown away whole.
      if (backend === 'redis' && redisUrl === REDIS_URL) {
        const { Redis } = await import('ioredis');
        const redis = new Redis(REDIS_URL);
        const keys = await redis.keys(`${prefix}*`);
        if (keys.length) await redis.del(...keys);
        redis.disconnect();
      }
    },
  };
}
