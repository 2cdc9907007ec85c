import { performance } from 'node:perf_hooks';
import type { Provider } from '../../adapters/provider.ts';
import type { Identity } from '../identity.ts';
import type { Micros } from '../money.ts';
import type { PriceEntry } from '../pricing/prices.ts';
import { type PriceTable, serverToolsCost } from '../pricing/pricing.ts';
import { type Admission, EnforcementUnavailableError, type Reservation } from '../store/port.ts';
import { ledgerEntry } from './account.ts';
import type { CallDeps, CallRecord, ModelCall } from './call.ts';
import { callCost, fitMaxTokens, worstCase } from './cost.ts';
import { type BodyFacts, inspect } from './messages.ts';
import type { CallTiming } from './observe.ts';
import type { Fingerprint } from './prefix.ts';
import { priceKind } from './providers.ts';
import { rateCharges } from './rate-limits.ts';
import {
  budgetExhausted,
  invalidRequest,
  killed,
  Refusal,
  rateLimited,
  unavailable,
  unknownModel,
} from './refusal.ts';

/** An admitted call: the model and provider it goes to, its output cap, and the reservation that pays for it. */
export interface Admitted {
  ok: true;
  model: string;
  /** The provider (config name) the call goes to. */
  provider: string;
  /** The providers to try next, in order, if this one fails before answering. */
  failover: string[];
  maxTokens: number;
  reservation: Reservation;
  /** Who it was admitted as: the caller, with the provider when that provider has a budget of its own. */
  identity: Identity;
  /** How it was priced (the provider's rows, a regional endpoint): account prices the usage the same way. */
  pricing: { provider?: string; regional?: boolean };
}

/** A failover: the same call, already checked and routed, admitted anew for the next provider. */
export interface Retry {
  model: string;
  provider: string;
  failover: string[];
  /** Budget-aware: a provider whose own budget cannot pay for the call passes it to the next. */
  choice?: 'order' | 'budget';
}

export type Decision = Admitted | { ok: false; refusal: Refusal; record: CallRecord };

/**
 * Decide: prefix check → gate → route → price → admit (the worst case reserved on every budget,
 * the kill switches checked in the same atomic step), or a typed refusal, ledgered.
 */
export async function decide(
  d: CallDeps,
  call: ModelCall,
  fp: Fingerprint,
  timing: CallTiming,
  retry?: Retry,
): Promise<Decision> {
  const routed = { model: retry?.model ?? call.body.model, provider: retry?.provider };
  try {
    const admitted = await admit(d, call, fp, routed, retry);
    timing.admitted = performance.now();
    return admitted;
  } catch (err) {
    const refusal = await refusalOf(d, call.identity, err);
    // Unknown models are ledgered too (code unknown_model): `chokepoint prices` lists what
    // clients asked for that the table cannot price.
    const unpriced = refusal.details.prices_entry !== undefined;
    if (refusal.code !== 'invalid_request' || unpriced) {
      const code = unpriced ? 'unknown_model' : refusal.code;
      await d.store
        .appendLedger(
          ledgerEntry(call, timing, {
            name: routed.model,
            outcome: 'refused',
            code,
            ...(routed.provider ? { provider: routed.provider } : {}),
          }),
        )
        .catch((e) =>
          d.log.error('could not record a refusal in the ledger', { error: e, requestId: call.requestId }),
        );
    }
    const record: CallRecord = {
      status: refusal.status,
      model: routed.model,
      ...(routed.provider ? { provider: routed.provider } : {}),
      tokens: { input: 0, cacheWrite5m: 0, cacheWrite1h: 0, cacheRead: 0, output: 0 },
      cost: 0,
      reserved: 0,
      outcome: 'refused',
      code: refusal.code,
      refusal,
    };
    return { ok: false, refusal, record };
  }
}

async function admit(
  d: CallDeps,
  call: ModelCall,
  fp: Fingerprint,
  routed: { model: string; provider?: string },
  retry: Retry | undefined,
): Promise<Admitted> {
  const { identity, body } = call;
  let model: string;
  let order: string[];
  let choice = retry?.choice ?? 'order';
  if (retry) {
    model = retry.model;
    order = [retry.provider, ...retry.failover];
  } else {
    checkPrefix(d, call, fp);
    if (call.gate) await call.gate();
    // Both answer at once unless a budget must be read (a downgrade rule, a budget-aware choice):
    // awaited only then.
    const r = d.router.route(body.model, identity, () => d.utilisation(identity));
    const route = r instanceof Promise ? await r : r;
    model = route.model;
    routed.model = model;
    const o = providerOrder(d, call, route.providers, route.providerChoice);
    order = o instanceof Promise ? await o : o;
    choice = route.providerChoice ?? 'order';
  }
  const name = order[0]!;
  routed.provider = name;
  const provider = d.providers.get(name);
  if (!provider) throw unavailable(`no provider named ${JSON.stringify(name)} is open`);
  const pricing = {
    ...(priceKind(provider) ? { provider: priceKind(provider) } : {}),
    ...(provider.regional?.(model, call.geo) ? { regional: true } : {}),
  };
  const prices = d.prices;
  const at = d.now();
  const price = prices.lookup(model, at, pricing.provider);
  if (!price) throw unknownModel(pricing.provider ? `${model} on ${name}` : model);
  const est = call.openai
    ? openaiEstimate(prices, call.openai, model, price, at, pricing)
    : messagesEstimate(d, body, model, price, at, pricing);
  const { worst, facts } = est;
  // A provider with a budget of its own (a committed spend) is one more scope of the call.
  const own = d.providers.budgetOf(name);
  const who: Identity = own ? { ...identity, provider: name } : identity;
  const provision = own ? { ...call.provision, [`provider:${name}`]: own } : call.provision;
  const reserve = (amount: Micros) =>
    d.store.admit({
      identity: who,
      amount,
      provision,
      requestId: call.requestId,
      kind: 'model',
      name: model,
      provider: name,
      // Rate limits (rate-limits.ts): admitted in the same atomic step as the money.
      rates: rateCharges(d.rateLimits, who, model, est.tokens(maxTokens)),
    });
  let maxTokens = est.maxTokens;
  let admission = await reserve(worst(maxTokens));
  if (facts) admission = await recount(d, call, provider, model, facts, worst, maxTokens, admission, reserve);
  // `fit`: a call whose worst case does not fit asks for fewer output tokens instead of being
  // refused — as many as the fullest budget can still pay for, never below the floor. The store
  // admits the lowered worst case atomically, so the ceiling stays exact.
  for (let i = 0; i < 3 && call.maxTokens?.mode === 'fit' && !call.openai; i++) {
    if (admission.ok || admission.refusal.code !== 'budget_exhausted') break;
    const b = admission.refusal.budget;
    if (b.state === 'frozen') break;
    const fitted = fitMaxTokens(worst, b.ceiling - b.spent - b.reserved, maxTokens, call.maxTokens.floor);
    if (fitted === undefined) break;
    maxTokens = fitted;
    admission = await reserve(worst(maxTokens));
  }
  if (!admission.ok) {
    const r = admission.refusal;
    if (
      choice === 'budget' &&
      order.length > 1 &&
      r.code === 'budget_exhausted' &&
      r.budget.scope === `provider:${name}`
    ) {
      // Its committed spend cannot pay for this call: the next provider, admitted anew.
      return admit(d, call, fp, routed, { model, provider: order[1]!, failover: order.slice(2), choice });
    }
    throw r.code === 'killed'
      ? killed(r.kill)
      : r.code === 'rate_limited'
        ? rateLimited(r, d.now())
        : budgetExhausted(r.budget, r.amount, d.now());
  }
  return {
    ok: true,
    model,
    provider: name,
    failover: order.slice(1),
    maxTokens,
    reservation: admission.reservation,
    identity: who,
    pricing,
  };
}

interface Estimate {
  /** The worst case with at most this many output tokens. */
  worst: (maxTokens: number) => Micros;
  maxTokens: number;
  /** A Messages body's facts (recount and fitting read them); undefined for the OpenAI format. */
  facts?: BodyFacts;
  /** The input tokens estimated and the output tokens allowed with this cap (rate limits). */
  tokens: (maxTokens: number) => { input: number; output: number };
}

/** A Messages body: its output cap checked against the model's, its worst case read off its fields. */
function messagesEstimate(
  d: CallDeps,
  body: ModelCall['body'],
  model: string,
  price: PriceEntry,
  at: number,
  pricing: Admitted['pricing'],
): Estimate {
  if (body.max_tokens > price.maxOutputTokens) {
    throw invalidRequest(
      'max_tokens',
      `${body.max_tokens} is above ${model}'s limit of ${price.maxOutputTokens}`,
    );
  }
  const facts = inspect(body);
  const cost = callCost(d.prices, body, model, price, facts, at, d.policy.inferenceGeo);
  Object.assign(cost.options, pricing);
  return {
    worst: (out) => worstCase(d.prices, model, facts, cost, out, at),
    maxTokens: body.max_tokens,
    facts,
    tokens: (out) => ({ input: facts.inputTokens, output: out }),
  };
}

/** Input a call that continues stored state (responses' previous_response_id) may carry: its whole context. */
const STORED_CONTEXT_TOKENS = 1_050_000;

/**
 * An OpenAI-format body (a GPT model through the OpenAI face): every input token at full price,
 * the output cap (the model's maximum when absent) times `n`, plus each billed built-in tool
 * at the bound the request allows.
 */
function openaiEstimate(
  prices: PriceTable,
  o: NonNullable<ModelCall['openai']>,
  model: string,
  price: PriceEntry,
  at: number,
  pricing: Admitted['pricing'],
): Estimate {
  const { facts, endpoint } = o;
  const cap = facts.maxOutput ?? price.maxOutputTokens;
  if (cap > price.maxOutputTokens) {
    const field = endpoint === 'responses' ? 'max_output_tokens' : 'max_completion_tokens';
    throw invalidRequest(field, `${cap} is above ${model}'s limit of ${price.maxOutputTokens}`);
  }
  const input = facts.storedContext ? Math.max(facts.inputTokens, STORED_CONTEXT_TOKENS) : facts.inputTokens;
  const fees = serverToolsCost(facts.builtinTools, 'openai');
  return {
    worst: (out) => prices.worstCase(model, input, out * facts.n, at, 'none', pricing) + fees,
    maxTokens: cap,
    tokens: (out) => ({ input, output: out * facts.n }),
  };
}

/**
 * Which providers a call goes to, in failover order: the one the face pinned; else the routing
 * rule's or the model class's list; else a provider of the caller's own wire format (Claude
 * Code in Bedrock mode reaches Bedrock); else the default.
 */
function providerOrder(
  d: CallDeps,
  call: ModelCall,
  routed: string[] | undefined,
  choice: 'order' | 'budget' = 'order',
): string[] | Promise<string[]> {
  if (call.provider) return [call.provider];
  if (routed?.length) return choice === 'budget' ? byRoom(d, routed) : routed;
  const own = call.prefer ? d.providers.ofKind(call.prefer) : undefined;
  return [own ?? d.providers.defaultName];
}

/**
 * Budget-aware choice: the list in its order, but a provider whose own budget (its committed
 * spend, `provider:<name>`) is frozen or has no room left goes to the end — tried only if the
 * others fail. Admission still decides: this only orders, it never admits.
 */
async function byRoom(d: CallDeps, names: string[]): Promise<string[]> {
  const full = await Promise.all(
    names.map(async (n) => {
      if (!d.providers.budgetOf(n)) return false;
      const b = await d.store.getBudget(`provider:${n}`);
      return b !== undefined && (b.state === 'frozen' || b.spent + b.reserved >= b.ceiling);
    }),
  );
  return [...names.filter((_, i) => !full[i]), ...names.filter((_, i) => full[i])];
}

/** Prompt prefix: a changed frozen part is drift — reported, or refused where policy says so. */
function checkPrefix(d: CallDeps, call: ModelCall, fp: Fingerprint): void {
  const { identity } = call;
  const drift = d.streams.drift(call.streamKey, fp);
  if (drift) {
    d.events.prefixDrift(identity, call.streamKey, drift);
    if (call.driftPolicy === 'refuse') {
      throw new Refusal(
        'prefix_drift',
        `prefix_drift: the frozen prompt prefix changed: ${drift.description}`,
        {
          drift,
        },
      );
    }
  }
}

/**
 * Near the ceiling a precise count may show the call fits after all: ask the provider's
 * count_tokens, and admit again if the worst case it gives is lower.
 */
async function recount(
  d: CallDeps,
  call: ModelCall,
  provider: Provider,
  model: string,
  facts: BodyFacts,
  worst: (maxTokens: number) => Micros,
  maxTokens: number,
  admission: Admission,
  reserve: (amount: Micros) => Promise<Admission>,
): Promise<Admission> {
  if (admission.ok || admission.refusal.code !== 'budget_exhausted' || !d.policy.countTokensNearCeiling) {
    return admission;
  }
  const amount = worst(maxTokens);
  const exact = await provider.countTokens({ ...call.body, model }, call.headers).catch(() => undefined);
  if (exact === undefined || exact >= facts.inputTokens) return admission;
  facts.inputTokens = exact;
  const precise = worst(maxTokens);
  return precise < amount ? reserve(precise) : admission;
}

/** Turns whatever stopped a call before the provider into a Refusal; killed wins over the rest. */
export async function refusalOf(
  d: Pick<CallDeps, 'store' | 'log'>,
  identity: Identity,
  err: unknown,
): Promise<Refusal> {
  if (err instanceof EnforcementUnavailableError) return unavailable(err.message);
  if (!(err instanceof Refusal)) {
    d.log.error('call path failed', { error: err });
    return unavailable('internal error while deciding');
  }
  // Admission's own refusals have checked the kill switches already, in the same atomic step.
  const admitted = ['killed', 'enforcement_unavailable', 'budget_exhausted', 'rate_limited'];
  if (!admitted.includes(err.code)) {
    const kill = await d.store.killedBy(identity).catch(() => undefined);
    if (kill) return killed(kill);
  }
  return err;
}
