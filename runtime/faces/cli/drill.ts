import { randomBytes } from 'node:crypto';
import { formatUsd, type Micros, parseUsd, usd } from '../../money.ts';
import { PriceTable } from '../../pricing/pricing.ts';

/**
 * The drill answers one question against a running Chokepoint: "would a runaway workload be
 * refused, or merely reported?" It replays a runaway coding-agent session — a loop that keeps
 * sending a long, growing context, the shape of the incident where one session billed $29,875,
 * most of it 6.47 billion uncached input tokens — on a throwaway seat with a small ceiling, and
 * measures what got through, when and how it was refused, what the loop would have cost unbounded,
 * how fast a kill switch bites, and whether a timestamp in the system prompt is caught as drift.
 * It talks to Chokepoint's own HTTP faces only, and cleans up (keys revoked, switches lifted).
 */
export interface DrillOptions {
  url: string;
  token: string;
  /** Ceiling of the throwaway seat, in dollars. */
  ceiling: string;
  model: string;
  /** Safety bound: the drill fails if this many calls get through without a refusal. */
  maxCalls: number;
  /** How many loop iterations the unbounded estimate extrapolates to. */
  unboundedCalls: number;
  progress: (line: string) => void;
}

export interface DrillReport {
  seat: string;
  model: string;
  ceilingUsd: string;
  callsThrough: number;
  spentUsd: string;
  refusedAtCall: number | null;
  refusalCode: string | null;
  refusalMessage: string | null;
  secondsToRefusal: number | null;
  withinCeiling: boolean;
  unbounded: { calls: number; inputTokens: number; uncachedUsd: string; cachedUsd: string };
  killSwitch: { tookEffectOnNextRequest: boolean; msFromFlipToRefusal: number | null };
  drift: { caught: boolean; description: string | null };
  passed: boolean;
}

const PROJECT = `You are an autonomous coding agent working in a large monorepo. ${'Follow the house style, run the tests after every change, and never push to main. '.repeat(60)}`;
const FILE_CHUNK = `// src/payments/ledger.ts (excerpt)\n${'export function settle(amount: number) { return Math.round(amount * 100) / 100; }\n'.repeat(40)}`;

interface Http {
  status: number;
  body: Record<string, any>;
}

// long: the drill is one scenario — seat, runaway loop, kill switch, drift, clean-up — that an
// operator reads top to bottom next to its report; its HTTP helper and phases share the seat's key.
export async function runDrill(o: DrillOptions): Promise<DrillReport> {
  const call = async (
    method: string,
    path: string,
    body?: unknown,
    auth?: Record<string, string>,
  ): Promise<Http> => {
    const res = await fetch(`${o.url}${path}`, {
      method,
      headers: { 'content-type': 'application/json', ...(auth ?? { authorization: `Bearer ${o.token}` }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    let parsed: Record<string, any> = {};
    try {
      parsed = text ? JSON.parse(text) : {};
    } catch {
      parsed = { raw: text };
    }
    return { status: res.status, body: parsed };
  };
  const must = (r: Http, what: string) => {
    if (r.status >= 300)
      throw new Error(`${what} failed (${r.status}): ${r.body?.error?.message ?? JSON.stringify(r.body)}`);
    return r.body;
  };

  const ceiling = parseUsd(o.ceiling);
  const id = randomBytes(4).toString('hex');
  const seat = `drill-${id}`;
  const keys: string[] = [];
  const kills: string[] = [];
  const prices = new PriceTable();
  try {
    must(await call('GET', '/readyz', undefined, {}), 'readiness check');
    const mk = async (s: string, extra: Record<string, unknown> = {}) => {
      const k = must(
        await call('POST', '/api/keys', {
          team: 'drill',
          env: 'drill',
          seat: s,
          label: 'chokepoint drill',
          ...extra,
        }),
        'creating a drill key',
      );
      keys.push(k.record.id);
      return k.key as string;
    };
    const key = await mk(seat);
    must(
      await call('POST', `/api/budgets/seat:${seat}/ceiling`, {
        amount: o.ceiling,
        reason: 'chokepoint drill: throwaway seat',
      }),
      'setting the drill ceiling',
    );
    o.progress(`drill seat ${seat}: ceiling ${usd(ceiling)}, model ${o.model}`);

    // The runaway: every turn resends the whole, growing context.
    const messages: Array<{ role: 'user' | 'assistant'; content: string }> = [
      { role: 'user', content: 'Fix the failing ledger tests.' },
    ];
    let through = 0;
    let refusedAt: number | null = null;
    let refusal: Http | null = null;
    const started = Date.now();
    for (let i = 1; i <= o.maxCalls; i++) {
      const r = await call(
        'POST',
        '/v1/messages',
        { model: o.model, max_tokens: 1024, system: PROJECT, messages: [...messages] },
        { 'x-api-key': key, 'x-chokepoint-session': `drill-${id}` },
      );
      if (r.status !== 200) {
        refusedAt = i;
        refusal = r;
        break;
      }
      through++;
      const text = (r.body.content ?? []).map((b: { text?: string }) => b.text ?? '').join('');
      messages.push({ role: 'assistant', content: text || 'Running the tests again.' });
      messages.push({ role: 'user', content: `Tests still fail. Here is the file again:\n${FILE_CHUNK}` });
      if (i % 5 === 0) o.progress(`  call ${i}: through, context ${messages.length} messages`);
    }
    const seconds = (Date.now() - started) / 1000;
    const budget = must(await call('GET', `/api/budgets/seat:${seat}`), 'reading the drill budget').budget;
    const spent: Micros = budget.spent_micros;
    if (refusal)
      o.progress(
        `  call ${refusedAt}: refused ${refusal.status} ${refusal.body?.chokepoint?.code}: ${refusal.body?.error?.message}`,
      );
    else o.progress(`  no refusal within ${o.maxCalls} calls`);

    // What the same loop costs unbounded: input grows by one turn per call.
    const perTurn = Math.ceil(Buffer.byteLength(FILE_CHUNK) / 4) + 60;
    const base = Math.ceil(Buffer.byteLength(PROJECT) / 4) + 20;
    let inputTokens = 0;
    let uncached = 0;
    let cached = 0;
    for (let i = 0; i < o.unboundedCalls; i++) {
      const input = base + i * perTurn;
      inputTokens += input;
      uncached += prices.cost(o.model, {
        input,
        cacheWrite5m: 0,
        cacheWrite1h: 0,
        cacheRead: 0,
        output: 300,
      });
      const prev = i === 0 ? 0 : base + (i - 1) * perTurn;
      cached += prices.cost(o.model, {
        input: 0,
        cacheWrite5m: input - prev,
        cacheWrite1h: 0,
        cacheRead: prev,
        output: 300,
      });
    }

    // Kill switch: flip it on a fresh seat, then the very next request must be refused.
    const killSeat = `${seat}-k`;
    const killKey = await mk(killSeat);
    const ping = () =>
      call(
        'POST',
        '/v1/messages',
        { model: o.model, max_tokens: 16, messages: [{ role: 'user', content: 'ping' }] },
        { 'x-api-key': killKey },
      );
    await ping();
    const flip = Date.now();
    must(
      await call('POST', '/api/kill-switches', { scope: `seat:${killSeat}`, reason: 'chokepoint drill' }),
      'flipping a kill switch',
    );
    kills.push(`seat:${killSeat}`);
    const next = await ping();
    const killMs = Date.now() - flip;
    const killOk = next.status === 403 && next.body?.chokepoint?.code === 'killed';
    o.progress(
      `kill switch: next request ${killOk ? 'refused' : `NOT refused (${next.status})`} ${killMs} ms after the flip`,
    );

    // Drift: a timestamp pasted into the system prompt must be caught.
    const driftKey = await mk(`${seat}-d`);
    for (let i = 0; i < 2; i++) {
      await call(
        'POST',
        '/v1/messages',
        {
          model: o.model,
          max_tokens: 16,
          system: `${PROJECT}\nCurrent time: ${new Date(Date.now() + i * 1000).toISOString()}`,
          messages: [{ role: 'user', content: 'hi' }],
        },
        { 'x-api-key': driftKey },
      );
    }
    const alarms = must(await call('GET', '/api/alarms?limit=200'), 'reading alarms').alarms as Array<{
      kind: string;
      message: string;
      identity?: { seat?: string };
    }>;
    const drift = alarms.find((a) => a.kind === 'prefix_drift' && a.identity?.seat === `${seat}-d`);
    o.progress(`drift: ${drift ? `caught — ${drift.message}` : 'NOT caught'}`);

    const withinCeiling = spent <= ceiling;
    const refusedRight = refusal?.status === 429 && refusal.body?.chokepoint?.code === 'budget_exhausted';
    return {
      seat,
      model: o.model,
      ceilingUsd: formatUsd(ceiling),
      callsThrough: through,
      spentUsd: formatUsd(spent),
      refusedAtCall: refusedAt,
      refusalCode: refusal?.body?.chokepoint?.code ?? null,
      refusalMessage: refusal?.body?.error?.message ?? null,
      secondsToRefusal: refusal ? seconds : null,
      withinCeiling,
      unbounded: {
        calls: o.unboundedCalls,
        inputTokens,
        uncachedUsd: formatUsd(uncached),
        cachedUsd: formatUsd(cached),
      },
      killSwitch: { tookEffectOnNextRequest: killOk, msFromFlipToRefusal: killOk ? killMs : null },
      drift: { caught: Boolean(drift), description: drift?.message ?? null },
      passed: Boolean(refusedRight && withinCeiling),
    };
  } finally {
    for (const scope of kills)
      await call('POST', `/api/kill-switches/${scope}/lift`, { reason: 'chokepoint drill cleanup' }).catch(
        () => undefined,
      );
    for (const k of keys)
      await call('POST', `/api/keys/${k}/revoke`, { reason: 'chokepoint drill cleanup' }).catch(
        () => undefined,
      );
  }
}
