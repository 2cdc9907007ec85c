import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Anthropic from '@anthropic-ai/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compose, type Services } from '../../runtime/compose.ts';
import { resolveConfig } from '../../runtime/config/load.ts';
import { createApp } from '../../runtime/faces/http/app.ts';
import { listen } from '../../runtime/faces/http/listen.ts';
import { createLogger } from '../../runtime/log.ts';
import { ADMIN_TOKEN, type Backend, REDIS_URL } from '../helpers/harness.ts';
import { startReceiver, verifySignature } from '../runtime/alerts/receiver.ts';

const SECRET = 'whsec_test-secret-0123456789';
/** One call: 16 input tokens and 1,000 output tokens of claude-haiku-5-5 = 502 µ$. */
const CALL = 502;
/** Twenty calls fill the team's budget exactly (near the ceiling the input is counted exactly). */
const CEILING = 20 * CALL;

interface Node {
  rt: Services;
  url: string;
  close(): Promise<void>;
}

/**
 * A burst of calls through real gateways (on Redis: two replicas sharing the store) crossing 50,
 * 80, 90 and 100% of a team's budget and then refused: one alert per threshold to a signed webhook
 * and to a Slack-format receiver, one alarm each in /api/alarms, and nothing again after a restart.
 */
describe.each<Backend>(['embedded', 'redis'])('budget alerts end to end (%s)', (backend) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'cp-alerts-'));
  const prefix = `{cpalerts${process.pid}${backend[0]}}`;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  const open: Node[] = [];

  const start = async (): Promise<Node> => {
    const raw = {
      dataDir,
      ...(backend === 'redis' ? { store: { backend: 'redis', redisUrl: REDIS_URL, prefix } } : {}),
      budgets: { defaults: { team: { ceiling: (CEILING / 1e6).toFixed(6), window: 'day' } } },
      alerts: {
        webhooks: [{ url: `${receiver.url}/hook`, secret: SECRET }],
        slack: [{ url: `${receiver.url}/slack` }],
        debounce: '20ms',
        sweep: '1h',
        forecast: { enabled: false },
        retry: { attempts: 3, backoff: '10ms' },
      },
    };
    const config = resolveConfig(raw, { env: { CHOKEPOINT_ADMIN_TOKEN: ADMIN_TOKEN } });
    const rt = await compose(config, createLogger({ level: 'silent' }), { workflows: false });
    const l = await listen(createApp(rt), { port: 0, host: '127.0.0.1' });
    const node = {
      rt,
      url: l.url,
      close: async () => {
        await l.close(1000);
        await rt.close();
      },
    };
    open.push(node);
    return node;
  };

  const api = async (n: Node, method: string, path: string, body?: unknown) => {
    const res = await fetch(`${n.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return (await res.json()) as any;
  };

  const clientOf = async (n: Node) => {
    const { key } = await api(n, 'POST', '/api/keys', { team: 'payments', env: 'prod', seat: 'bot' });
    return new Anthropic({ baseURL: n.url, apiKey: key, maxRetries: 0 });
  };

  const call = (c: Anthropic) =>
    c.messages
      .create({
        model: 'claude-haiku-5-5',
        max_tokens: 1000,
        messages: [{ role: 'user', content: 'go [[emulator:output_tokens=1000]]' }],
      })
      .then(
        () => 'ok' as const,
        (err: { status?: number }) => (err.status === 429 ? ('refused' as const) : ('error' as const)),
      );

  const kinds = (path: string) =>
    receiver
      .at(path)
      .map((r) => (path === '/hook' ? `${r.json.kind}:${r.json.threshold ?? ''}` : r.json.text));

  beforeAll(async () => {
    receiver = await startReceiver();
  });

  afterAll(async () => {
    for (const n of open.splice(0)) await n.close().catch(() => {});
    await receiver.close();
    rmSync(dataDir, { recursive: true, force: true });
    if (backend === 'redis') {
      const { Redis } = await import('ioredis');
      const redis = new Redis(REDIS_URL);
      const keys = await redis.keys(`${prefix}*`);
      if (keys.length) await redis.del(...keys);
      redis.disconnect();
    }
  });

  it('delivers one signed webhook and one Slack message per threshold crossed, and one refused', async () => {
    const a = await start();
    // On Redis a second replica shares the store and sees the same calls settle.
    const b = backend === 'redis' ? await start() : a;
    const ca = await clientOf(a);
    const cb = await clientOf(b);
    // The burst: 16 calls, four at a time, over both replicas (80% exactly) ...
    const burst: string[] = [];
    for (let i = 0; i < 16; i += 4)
      burst.push(...(await Promise.all([0, 1, 2, 3].map((j) => call((i + j) % 2 ? cb : ca)))));
    expect(burst).toEqual(Array(16).fill('ok'));
    // ... then one at a time to the ceiling, and past it.
    const tail: string[] = [];
    for (let i = 0; i < 6; i++) tail.push(await call(i % 2 ? cb : ca));
    expect(tail).toEqual(['ok', 'ok', 'ok', 'ok', 'refused', 'refused']);
    const budget = await a.rt.store.getBudget('team:payments');
    expect(budget!.spent).toBe(CEILING);

    await Promise.all([a.rt.alerts.drain(), b.rt.alerts.drain()]);
    await Promise.all([a.rt.alerts.sweep(), b.rt.alerts.sweep()]);
    await Promise.all([a.rt.alerts.drain(), b.rt.alerts.drain()]);

    expect(kinds('/hook').sort()).toEqual([
      'refused:',
      'threshold:100',
      'threshold:50',
      'threshold:80',
      'threshold:90',
    ]);
    for (const r of receiver.at('/hook')) {
      expect(verifySignature(r, SECRET)).toBe(true);
      expect(verifySignature(r, 'not-the-secret-0123456789')).toBe(false);
      expect(r.headers['x-chokepoint-alert-id']).toBe(r.json.id);
      expect(r.json).toMatchObject({
        type: 'chokepoint.budget_alert',
        budget: { scope: 'team:payments', window: 'day', ceiling_usd: '0.01004' },
      });
    }
    // The spend named is the budget's when the alert was built: on a loaded machine the later
    // calls may have landed by then (up to the whole ceiling).
    const p80 = receiver.at('/hook').find((r) => r.json.threshold === 80)!;
    expect(p80.json.message).toMatch(
      /^team 'payments' daily budget passed 80%: spent \$0\.0\d+ of \$0\.01004 \((8\d|9\d|100)%\)/,
    );

    const slack = receiver.at('/slack');
    expect(slack).toHaveLength(5);
    for (const s of slack) {
      expect(Object.keys(s.json).sort()).toEqual(['blocks', 'text']);
      expect(s.json.blocks[0]).toMatchObject({ type: 'section', text: { type: 'mrkdwn' } });
    }
    expect(slack.filter((s) => /Budget exhausted/.test(s.json.text))).toHaveLength(1);

    // The inbox: one alarm per alert, whichever replica claimed it.
    const alarms = (await api(a, 'GET', '/api/alarms?limit=100')).alarms as Array<{
      kind: string;
      id: string;
    }>;
    const budgetAlarms = alarms.filter((x) => x.kind.startsWith('budget_'));
    expect(budgetAlarms.map((x) => x.kind).sort()).toEqual([
      'budget_exhausted',
      'budget_near_ceiling',
      'budget_near_ceiling',
      'budget_near_ceiling',
      'budget_near_ceiling',
    ]);
    expect(new Set(budgetAlarms.map((x) => x.id))).toEqual(
      new Set(receiver.at('/hook').map((r) => r.json.id)),
    );

    // And in the web inbox: the spend page's alarm list, a table of its own.
    const login = await fetch(`${a.url}/login`, {
      method: 'POST',
      body: new URLSearchParams({ token: ADMIN_TOKEN, next: '/spend' }),
      redirect: 'manual',
    });
    const cookie = login.headers
      .getSetCookie()
      .find((c) => c.startsWith('cp_session='))!
      .split(';')[0]!;
    const page = await fetch(`${a.url}/spend`, { headers: { cookie } });
    expect(page.status).toBe(200);
    const html = await page.text();
    // The inbox's one alarm table (latest first, five rows): the budget alerts are the latest.
    const at = html.indexOf('data-table="alarms"');
    expect(at).toBeGreaterThan(0);
    expect(html.slice(at)).toMatch(/data-kind="budget_/);
    expect(html.slice(at)).toMatch(/team (&#39;|')payments(&#39;|') daily budget passed 80%/);
  }, 90_000);

  it('sends nothing again after a restart: not from the sweep, not from a new refusal', async () => {
    const before = receiver.received.length;
    for (const n of open.splice(0)) await n.close();
    const again = await start();
    expect(await call(await clientOf(again))).toBe('refused');
    await again.rt.alerts.drain();
    await again.rt.alerts.sweep();
    await again.rt.alerts.drain();
    expect(receiver.received.length).toBe(before);
    const alarms = (await api(again, 'GET', '/api/alarms?limit=100')).alarms as Array<{ kind: string }>;
    expect(alarms.filter((x) => x.kind.startsWith('budget_'))).toHaveLength(5);
  }, 60_000);
});
