import { invalidRequest } from './refusal.ts';
import { sealedValues } from './tail-memo.ts';

/**
 * The `/v1/messages` body, validated only as far as enforcement needs it — validate what you
 * enforce, forward the rest. The Messages API grows every month (mid-conversation `system`
 * messages, adaptive thinking, effort, context management, deferred tools, new block types); a
 * gateway that re-validated the provider's schema would refuse them the day they ship. So the
 * gateway checks: a model, `max_tokens` as a positive integer, `messages` as an array of objects,
 * and size and nesting bounds; everything else reaches the provider byte for byte.
 */
export interface Message {
  role?: unknown;
  content?: unknown;
  [field: string]: unknown;
}

export interface MessagesBody {
  model: string;
  max_tokens: number;
  messages: Message[];
  system?: unknown;
  tools?: unknown[];
  stream?: boolean;
  [field: string]: unknown;
}

export type ContentBlock = Record<string, unknown> & { type?: unknown; cache_control?: unknown };

/** Deeper than this is refused (400): no prompt needs it, and recursion over it could overflow. */
export const MAX_DEPTH = 128;

/**
 * Checks what admission needs and answers a 400 naming the field otherwise. `requireMaxTokens`
 * is false for count_tokens. The nesting bound is checked first, so nothing below ever walks an
 * unbounded structure.
 */
export function checkBody(json: unknown, requireMaxTokens = true): MessagesBody {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw invalidRequest('(body)', 'expected a JSON object');
  }
  checkDepth(json);
  const body = json as Record<string, unknown>;
  if (typeof body.model !== 'string' || body.model.length === 0) {
    throw invalidRequest(
      'model',
      body.model === undefined
        ? 'required: the model to call, e.g. "claude-sonnet-5-5"'
        : `expected a model id (a non-empty string), got ${describe(body.model)}`,
    );
  }
  if (requireMaxTokens || body.max_tokens !== undefined) {
    const m = body.max_tokens;
    if (typeof m !== 'number' || !Number.isSafeInteger(m) || m <= 0) {
      throw invalidRequest(
        'max_tokens',
        m === undefined
          ? 'required: the most output tokens to generate (a positive integer)'
          : `expected a positive integer, got ${describe(m)}`,
      );
    }
  }
  if (!Array.isArray(body.messages)) {
    throw invalidRequest(
      'messages',
      body.messages === undefined
        ? 'required: an array of messages'
        : `expected an array of messages, got ${describe(body.messages)}`,
    );
  }
  for (let i = 0; i < body.messages.length; i++) {
    const m = body.messages[i];
    if (m === null || typeof m !== 'object' || Array.isArray(m)) {
      throw invalidRequest(`messages.${i}`, `expected a message object, got ${describe(m)}`);
    }
  }
  if (body.tools !== undefined && !Array.isArray(body.tools)) {
    throw invalidRequest('tools', `expected an array of tools, got ${describe(body.tools)}`);
  }
  if (body.stream !== undefined && typeof body.stream !== 'boolean') {
    throw invalidRequest('stream', `expected true or false, got ${describe(body.stream)}`);
  }
  return body as MessagesBody;
}

/** A value as an error message names it (`the string "…"`, `an array`, `42`). */
export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
  if (typeof v === 'number') return String(v);
  return `a ${typeof v}`;
}

/** Iterative (no recursion to overflow); on failure a second walk names the deepest path. */
export function checkDepth(root: object): void {
  const stack: Array<[unknown, number]> = [[root, 1]];
  while (stack.length) {
    const [v, depth] = stack.pop()!;
    if (depth > MAX_DEPTH) throw invalidRequest(pathTo(root), `nested deeper than ${MAX_DEPTH} levels`);
    // A sealed value (a stream's unchanged tail, tail-memo.ts) is measured once.
    if (v !== root && sealedValues.has(v as object) && depth + heightOf(v as object) - 1 <= MAX_DEPTH)
      continue;
    if (Array.isArray(v)) {
      for (const x of v) if (x !== null && typeof x === 'object') stack.push([x, depth + 1]);
    } else {
      for (const k in v as object) {
        const x = (v as Record<string, unknown>)[k];
        if (x !== null && typeof x === 'object') stack.push([x, depth + 1]);
      }
    }
  }
}

const heights = new WeakMap<object, number>();

/** Levels of objects and arrays in `v` (1: none under it), remembered for a sealed value. */
function heightOf(v: object): number {
  let h = heights.get(v);
  if (h !== undefined) return h;
  h = 0;
  const stack: Array<[unknown, number]> = [[v, 1]];
  while (stack.length) {
    const [x, d] = stack.pop()!;
    if (d > h) h = d;
    // Deeper than anything allowed: measured no further (the walk that throws finds where).
    if (d > MAX_DEPTH) break;
    if (Array.isArray(x)) {
      for (const y of x) if (y !== null && typeof y === 'object') stack.push([y, d + 1]);
    } else {
      for (const k in x as object) {
        const y = (x as Record<string, unknown>)[k];
        if (y !== null && typeof y === 'object') stack.push([y, d + 1]);
      }
    }
  }
  heights.set(v, h);
  return h;
}

function pathTo(root: object): string {
  const stack: Array<[unknown, string[]]> = [[root, []]];
  while (stack.length) {
    const [v, path] = stack.pop()!;
    if (path.length >= MAX_DEPTH) return `${path.slice(0, 6).join('.')}…`;
    const entries = Array.isArray(v) ? v.map((x, i) => [String(i), x] as const) : Object.entries(v as object);
    for (const [k, x] of entries) if (x !== null && typeof x === 'object') stack.push([x, [...path, k]]);
  }
  return '(body)';
}

/** What admission reads off a body, in one walk over it. */
export interface BodyFacts {
  /** Conservative input-token estimate (see {@link inspect}). */
  inputTokens: number;
  /** The dearest cache write the request can cause: which rate the worst case prices input at. */
  writes: 'none' | '5m' | '1h';
}

/**
 * One iterative walk over the whole body. The input estimate counts the UTF-8 bytes of EVERY
 * string in it — values and keys, known fields or not, so a field added to the API next month
 * can never make a call look cheaper than it is — divided by 2, rounded up (tokenizers average
 * 3–4 bytes per token on text, so this over-counts), plus 32 per request, 8 per message, 16 per
 * tool and 1,600 per image (the API's cap for one image; its base64 is not counted). Near a
 * ceiling the gateway asks the provider's count_tokens for the exact number.
 */
export function inspect(body: MessagesBody): BodyFacts {
  const t = walk(body, true);
  const fixed = t.fixed + 32 + 8 * body.messages.length + 16 * (body.tools?.length ?? 0);
  return { inputTokens: Math.ceil(t.bytes / 2) + fixed, writes: t.has1h ? '1h' : t.has5m ? '5m' : 'none' };
}

/** What {@link inspect} counts in a value: bytes of strings and keys, fixed costs, cache writes. */
interface Tally {
  bytes: number;
  fixed: number;
  has5m: boolean;
  has1h: boolean;
}

const tallies = new WeakMap<object, Tally>();

/** The tally of `root`; with `reuse`, a sealed value under it is tallied once (tail-memo.ts). */
function walk(root: unknown, reuse: boolean): Tally {
  const t: Tally = { bytes: 0, fixed: 0, has5m: false, has1h: false };
  const stack: unknown[] = [root];
  while (stack.length) {
    const v = stack.pop();
    if (typeof v === 'string') t.bytes += Buffer.byteLength(v);
    else if (typeof v === 'number') t.bytes += 4;
    else if (v === null || typeof v !== 'object') continue;
    else if (reuse && v !== root && sealedValues.has(v)) {
      let u = tallies.get(v);
      if (!u) {
        u = walk(v, false);
        tallies.set(v, u);
      }
      t.bytes += u.bytes;
      t.fixed += u.fixed;
      t.has5m ||= u.has5m;
      t.has1h ||= u.has1h;
    } else if (Array.isArray(v)) for (const x of v) stack.push(x);
    else {
      const o = v as Record<string, unknown>;
      if (o.type === 'image') {
        t.fixed += 1600;
        continue;
      }
      const cc = o.cache_control;
      if (cc !== null && typeof cc === 'object') {
        if ((cc as { ttl?: unknown }).ttl === '1h') t.has1h = true;
        else t.has5m = true;
      }
      for (const k in o) {
        t.bytes += Buffer.byteLength(k);
        stack.push(o[k]);
      }
    }
  }
  return t;
}
