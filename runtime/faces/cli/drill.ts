import { randomBytes } from 'node:crypto';
import { formatUsd, type Micros, parseUsd, usd } from '../../money.ts';
import { PriceTable } from '../../pricing/pricing.ts';
import { type DrillFace, type DrillProvider, drillFace, type Http, type Turn } from './drill-faces.ts';

/**
 * The drill answers one question against a running Chokepoint: "would a runaway workload be
 * refused, or merely reported?" It replays a runaway coding-agent session — a loop that keeps
 * sending a long, growing context, the shape of the incident where one session billed $29,875,
 * most of it 6.47 billion uncached input tokens — on a throwaway seat with a small ceiling, and
 * measures what got through, when and how it was refused, what the loop would have cost unbounded,
 * how fast a kill switch bites, and whether a timestamp in the system prompt is caught as drift.
 * It talks to Chokepoint's own HTTP faces only — the model calls through the face of the
 * provider drilled (Anthropic, Bedrock or Vertex wire format, see drill-faces.ts) — and cleans
 * up (keys revoked, switches lifted).
 */
export interface DrillOptions {
  url: string;
  token: string;
  /** Ceiling of the throwaway seat, in dollars. */
  ceiling: string;
  model: string;
  /** The face the runaway goes through (default anthropic). */
  provider?: DrillProvider;
  /** Bedrock profile prefix or Vertex location (defaults: us, global). */
  geo?: string;
  /** Safety bound: the drill fails if this many calls get through without a refusal. */
  maxCalls: number;
  /** How many loop iterations the unbounded estimate extrapolates to. */
  unboundedCalls: number;
  progress: (line: string) => void;
}

export interface DrillReport {
  seat: string;
  model: string;
  /** The provider whose face was drilled, and the face's route. */
  provider: DrillProvider;
  face: string;
  ceilingUsd: string;
  callsThrough: number;
  spentUsd: string;
  /** The drill seat's spend by ledger provider (config name), from `/api/spend?by=provider`. */
  ledgerProviders: Array<{ provider: string; calls: number; costUsd: string }>;
  refusedAtCall: number | null;
  refusalStatus: number | null;
  /** The face's own name for the refusal (Anthropic type, `x-amzn-errortype`, Google status). */
  refusalErrorType: string | null;
  refusalCode: string | null;
  refusalMessage: string | null;
  secondsToRefusal: number | null;
  withinCeiling: boolean;
  unbounded: { calls: number; inputTokens: number; uncachedUsd: string; cachedUsd: string };
  killSwitch: {
    tookEffectOnNextRequest: boolean;
    msFromFlipToRefusal: number | null;
    status: number;
    code: string | null;
  };
  drift: { caught: boolean; description: string | null };
  passed: boolean;
}

const PROJECT = `You are an autonomous coding agent working in a large monorepo. ${'Follow the house style, run the tests after every change, and never push to main. '.repeat(60)}`;
const FILE_CHUNK = `// src/payments/ledger.ts (excerpt)\n${'export function settle(amount: number) { return Math.round(amount * 100) / 100; }\n'.repeat(40)}`;

/** What every phase shares: the operator's HTTP helper, the face, the seat and what to clean up. */
interface Drill {
  o: DrillOptions;
  face: DrillFace;
  call(method: string, path: string, body?: unknown, auth?: Record<string, string>): Promise<Http>;
  must(r: Http, what: string): Record<string, any>;
  /** Creates a key on a seat of the drill (revoked at the end) and returns it. */
  key(seat: string): Promise<string>;
  /** A model call through the drilled face with a seat's key. */
  ask(turn: Turn, key: string, session?: string): Promise<Http>;
  keys: string[];
  kills: string[];
}

/**
 * Runs the drill against `o.url` with the operator token, through the face `o.provider` names.
 *
 * @throws DrillFaceError for an unknown provider or geography; Error when the server cannot be used.
 */
export async function runDrill(o: DrillOptions): Promise<DrillReport> {
  const face = drillFace(o.provider ?? 'anthropic', o.model, o.geo);
  const d = drillOf(o, face);
  const ceiling = parseUsd(o.ceiling);
  const seat = `drill-${randomBytes(4).toString('hex')}`;
  try {
    d.must(await d.call('GET', '/readyz', undefined, {}), 'readiness check');
    const key = await d.key(seat);
    d.must(
      await d.call('POST', `/api/budgets/seat:${seat}/ceiling`, {
        amount: o.ceiling,
        reason: 'chokepoint drill: throwaway seat',
      }),
      'setting the drill ceiling',
    );
    o.progress(
      `drill seat ${seat}: ceiling ${usd(ceiling)}, model ${o.model}, ${face.provider} face (${face.face})`,
    );
    const loop = await runaway(d, key, seat);
    const budget = d.must(
      await d.call('GET', `/api/budgets/seat:${seat}`),
      'reading the drill budget',
    ).budget;
    const spent: Micros = budget.spent_micros;
    const ledgerProviders = await providersOf(d, seat);
    o.progress(
      `  ledger: ${ledgerProviders.map((p) => `${p.calls} call(s) under provider ${p.provider}`).join(', ') || 'no entries'}`,
    );
    const killSwitch = await killPhase(d, `${seat}-k`);
    const drift = await driftPhase(d, `${seat}-d`);

    const refusal = loop.refusal ? face.refusal(loop.refusal) : null;
    const withinCeiling = spent <= ceiling;
    const refusedRight =
      loop.refusal?.status === face.budgetRefusal.status &&
      refusal?.errorType === face.budgetRefusal.errorType &&
      refusal.code === 'budget_exhausted';
    return {
      seat,
      model: o.model,
      provider: face.provider,
      face: face.face,
      ceilingUsd: formatUsd(ceiling),
      callsThrough: loop.through,
      spentUsd: formatUsd(spent),
      ledgerProviders,
      refusedAtCall: loop.refusedAt,
      refusalStatus: loop.refusal?.status ?? null,
      refusalErrorType: refusal?.errorType ?? null,
      refusalCode: refusal?.code ?? null,
      refusalMessage: refusal?.message ?? null,
      secondsToRefusal: loop.refusal ? loop.seconds : null,
      withinCeiling,
      unbounded: unbounded(o, face),
      killSwitch,
      drift,
      passed: Boolean(refusedRight && withinCeiling),
    };
  } finally {
    for (const scope of d.kills)
      await d
        .call('POST', `/api/kill-switches/${scope}/lift`, { reason: 'chokepoint drill cleanup' })
        .catch(() => undefined);
    for (const k of d.keys)
      await d
        .call('POST', `/api/keys/${k}/revoke`, { reason: 'chokepoint drill cleanup' })
        .catch(() => undefined);
  }
}

function drillOf(o: DrillOptions, face: DrillFace): Drill {
  const call: Drill['call'] = async (method, path, body, auth) => {
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
    return { status: res.status, headers: Object.fromEntries(res.headers), body: parsed };
  };
  const d: Drill = {
    o,
    face,
    call,
    keys: [],
    kills: [],
    must: (r, what) => {
      if (r.status >= 300)
        throw new Error(`${what} failed (${r.status}): ${r.body?.error?.message ?? JSON.stringify(r.body)}`);
      return r.body;
    },
    key: async (seat) => {
      const k = d.must(
        await call('POST', '/api/keys', { team: 'drill', env: 'drill', seat, label: 'chokepoint drill' }),
        'creating a drill key',
      );
      d.keys.push(k.record.id);
      return k.key as string;
    },
    ask: (turn, key, session) => {
      const r = face.request(turn, key, session);
      return call('POST', r.path, r.body, r.headers);
    },
  };
  return d;
}

/** The runaway: every turn resends the whole, growing context until the face refuses it. */
async function runaway(d: Drill, key: string, seat: string) {
  const messages: Turn['messages'] = [{ role: 'user', content: 'Fix the failing ledger tests.' }];
  let through = 0;
  let refusedAt: number | null = null;
  let refusal: Http | null = null;
  const started = Date.now();
  for (let i = 1; i <= d.o.maxCalls; i++) {
    const r = await d.ask({ max_tokens: 1024, system: PROJECT, messages: [...messages] }, key, seat);
    if (r.status !== 200) {
      refusedAt = i;
      refusal = r;
      break;
    }
    through++;
    const text = (r.body.content ?? []).map((b: { text?: string }) => b.text ?? '').join('');
    messages.push({ role: 'assistant', content: text || 'Running the tests again.' });
    messages.push({ role: 'user', content: `Tests still fail. Here is the file again:\n${FILE_CHUNK}` });
    if (i % 5 === 0) d.o.progress(`  call ${i}: through, context ${messages.length} messages`);
  }
  const seconds = (Date.now() - started) / 1000;
  if (refusal) {
    const f = d.face.refusal(refusal);
    d.o.progress(`  call ${refusedAt}: refused ${refusal.status} ${f.errorType} ${f.code}: ${f.message}`);
  } else d.o.progress(`  no refusal within ${d.o.maxCalls} calls`);
  return { through, refusedAt, refusal, seconds };
}

/** The seat's spend by the provider its ledger entries name. */
async function providersOf(d: Drill, seat: string): Promise<DrillReport['ledgerProviders']> {
  const rows = d.must(
    await d.call('GET', `/api/spend?by=provider&scope=${encodeURIComponent(`seat:${seat}`)}`),
    'reading the drill seat spend by provider',
  ).rows as Array<{ key: string; calls: number; cost_usd: string }>;
  return rows
    .filter((r) => r.calls > 0)
    .map((r) => ({ provider: r.key, calls: r.calls, costUsd: r.cost_usd }));
}

/** What the same loop costs unbounded, priced as the face's calls are: input grows by one turn per call. */
function unbounded(o: DrillOptions, face: DrillFace): DrillReport['unbounded'] {
  const prices = new PriceTable();
  const now = Date.now();
  const perTurn = Math.ceil(Buffer.byteLength(FILE_CHUNK) / 4) + 60;
  const base = Math.ceil(Buffer.byteLength(PROJECT) / 4) + 20;
  let inputTokens = 0;
  let uncached = 0;
  let cached = 0;
  for (let i = 0; i < o.unboundedCalls; i++) {
    const input = base + i * perTurn;
    inputTokens += input;
    const tokens = { input, cacheWrite5m: 0, cacheWrite1h: 0, cacheRead: 0, output: 300 };
    uncached += prices.cost(o.model, tokens, now, face.prices);
    const prev = i === 0 ? 0 : base + (i - 1) * perTurn;
    cached += prices.cost(
      o.model,
      { ...tokens, input: 0, cacheWrite5m: input - prev, cacheRead: prev },
      now,
      face.prices,
    );
  }
  return {
    calls: o.unboundedCalls,
    inputTokens,
    uncachedUsd: formatUsd(uncached),
    cachedUsd: formatUsd(cached),
  };
}

/** Kill switch: flip it on a fresh seat, then the very next request on the face must be refused. */
async function killPhase(d: Drill, seat: string): Promise<DrillReport['killSwitch']> {
  const key = await d.key(seat);
  const ping = () => d.ask({ max_tokens: 16, messages: [{ role: 'user', content: 'ping' }] }, key);
  await ping();
  const flip = Date.now();
  d.must(
    await d.call('POST', '/api/kill-switches', { scope: `seat:${seat}`, reason: 'chokepoint drill' }),
    'flipping a kill switch',
  );
  d.kills.push(`seat:${seat}`);
  const next = await ping();
  const ms = Date.now() - flip;
  const { code, errorType } = d.face.refusal(next);
  const ok = next.status === 403 && code === 'killed';
  d.o.progress(
    `kill switch: next request ${ok ? `refused (${errorType})` : `NOT refused (${next.status})`} ${ms} ms after the flip`,
  );
  return { tookEffectOnNextRequest: ok, msFromFlipToRefusal: ok ? ms : null, status: next.status, code };
}

/** Drift: a timestamp pasted into the system prompt must be caught. */
async function driftPhase(d: Drill, seat: string): Promise<DrillReport['drift']> {
  const key = await d.key(seat);
  for (let i = 0; i < 2; i++) {
    await d.ask(
      {
        max_tokens: 16,
        system: `${PROJECT}\nCurrent time: ${new Date(Date.now() + i * 1000).toISOString()}`,
        messages: [{ role: 'user', content: 'hi' }],
      },
      key,
    );
  }
  const alarms = d.must(await d.call('GET', '/api/alarms?limit=200'), 'reading alarms').alarms as Array<{
    kind: string;
    message: string;
    identity?: { seat?: string };
  }>;
  const drift = alarms.find((a) => a.kind === 'prefix_drift' && a.identity?.seat === seat);
  d.o.progress(`drift: ${drift ? `caught — ${drift.message}` : 'NOT caught'}`);
  return { caught: Boolean(drift), description: drift?.message ?? null };
}
