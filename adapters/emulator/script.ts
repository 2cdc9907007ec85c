/**
 * Scripted behaviour: what the emulated model says, decided by inline directives in the last
 * user turn or by programmatic rules, so tests and example agents run deterministically.
 *
 * Directives (in the last user message's text, or in a tool_result's content):
 *
 * ```text
 * [[emulator:text=Hello there]]            reply text
 * [[emulator:tool_use get_weather={"city":"Paris"}]]   call a tool (repeatable; input optional)
 * [[emulator:output_tokens=500]]           size the reply to 500 output tokens
 * [[emulator:stop_reason=end_turn]]        force the stop reason
 * [[emulator:error=529]]                   answer with that HTTP error (not billed)
 * [[emulator:latency=200]]                 wait 200 ms before answering
 * [[emulator:delta_delay=20]]              wait 20 ms between streamed events
 * [[emulator:stream_error=529]]            streaming only: fail mid-stream with an SSE `error` event
 * [[emulator:thinking_tokens=300]]         with `thinking` on: 300 thinking tokens (billed as output)
 * [[emulator:web_search=2]]                run 2 web searches (needs a web_search_* tool)
 * [[emulator:web_fetch=1]]                 run 1 web fetch (needs a web_fetch_* tool)
 * ```
 */
import { z } from 'zod';
import { ApiError } from './errors.ts';

export type StopReason = 'end_turn' | 'max_tokens' | 'stop_sequence' | 'tool_use' | 'pause_turn' | 'refusal';
const STOP_REASONS = [
  'end_turn',
  'max_tokens',
  'stop_sequence',
  'tool_use',
  'pause_turn',
  'refusal',
] as const;

export interface ScriptedToolUse {
  name: string;
  /** Omitted: built from the tool's `input_schema` (required fields, deterministic values). */
  input?: Record<string, unknown>;
  id?: string;
}

/** What to answer. Every field is optional; unset fields take the emulator's defaults. */
export interface ReplySpec {
  text?: string;
  toolUse?: ScriptedToolUse[];
  stopReason?: StopReason;
  outputTokens?: number;
  /** Answer with this HTTP status instead (429, 500, 529 …). */
  error?: number;
  errorMessage?: string;
  latencyMs?: number;
  /** Streaming only: delay between SSE events, so a client can abort mid-stream. */
  deltaDelayMs?: number;
  /**
   * Streaming only: after half the content, send `event: error` with this status's error type
   * and end the stream (HTTP status stays 200, as with the real API). Not billed.
   */
  streamError?: number;
  /** With `thinking` on: how many thinking tokens the reply spends (default: a short sentence). */
  thinkingTokens?: number;
  /** Web searches the model runs (server tool; capped by the tool's `max_uses`). */
  webSearches?: number;
  /** Web fetches the model runs (server tool). */
  webFetches?: number;
}

/**
 * A rule's condition; every given field must hold. Strings match as substrings, except a string
 * written `/source/flags`, which is a regular expression (the same in JSON and in JS).
 */
export interface ScriptCondition {
  /** The requested model or its resolved id: exact match, or `/regex/`. */
  model?: string | RegExp;
  system?: string | RegExp;
  lastUserText?: string | RegExp;
  /** Whether the last user turn carries a tool_result. */
  afterToolResult?: boolean;
  /** 1 for the first assistant reply of a conversation, 2 for the next … */
  turn?: number;
}

export interface ScriptRule {
  when?: ScriptCondition;
  reply: ReplySpec;
  /** How many times the rule may fire (default: unlimited). */
  times?: number;
}

/** What a request looks like to the script. */
export interface ScriptContext {
  model: string;
  modelId: string;
  system: string;
  lastUserText: string;
  afterToolResult: boolean;
  turn: number;
}

function toMatcher(p: string | RegExp): (s: string) => boolean {
  if (p instanceof RegExp) return (s) => p.test(s);
  const m = /^\/(.*)\/([dgimsuvy]*)$/s.exec(p);
  if (m) {
    const re = new RegExp(m[1]!, m[2]!.replace('g', ''));
    return (s) => re.test(s);
  }
  return (s) => s.includes(p);
}

interface CompiledRule {
  test: (ctx: ScriptContext) => boolean;
  reply: ReplySpec;
  left: number;
}

function compile(rule: ScriptRule): CompiledRule {
  const w = rule.when ?? {};
  const tests: ((ctx: ScriptContext) => boolean)[] = [];
  if (w.model !== undefined) {
    const m = w.model;
    const re = typeof m === 'string' && !m.startsWith('/') ? undefined : toMatcher(m);
    tests.push((c) => (re ? re(c.model) || re(c.modelId) : c.model === m || c.modelId === m));
  }
  if (w.system !== undefined) {
    const t = toMatcher(w.system);
    tests.push((c) => t(c.system));
  }
  if (w.lastUserText !== undefined) {
    const t = toMatcher(w.lastUserText);
    tests.push((c) => t(c.lastUserText));
  }
  if (w.afterToolResult !== undefined) tests.push((c) => c.afterToolResult === w.afterToolResult);
  if (w.turn !== undefined) tests.push((c) => c.turn === w.turn);
  return {
    test: (c) => tests.every((t) => t(c)),
    reply: rule.reply,
    left: rule.times ?? Number.POSITIVE_INFINITY,
  };
}

/** The programmatic script: ordered rules, first match wins. */
export class Script {
  private rules: CompiledRule[] = [];

  /** Replaces the rules (an empty list clears them). */
  set(rules: readonly ScriptRule[]): void {
    this.rules = rules.map(compile);
  }

  get size(): number {
    return this.rules.length;
  }

  /** The reply of the first rule that holds (and still has uses left), if any. */
  match(ctx: ScriptContext): ReplySpec | undefined {
    if (this.rules.length === 0) return undefined;
    for (const r of this.rules) {
      if (r.left > 0 && r.test(ctx)) {
        r.left--;
        return r.reply;
      }
    }
    return undefined;
  }
}

const DIRECTIVE = '[[emulator:';

/** Finds the end of a JSON object starting at `start` (a `{`), honouring strings. */
function jsonEnd(s: string, start: number): number {
  let depth = 0;
  let inString = false;
  for (let i = start; i < s.length; i++) {
    const ch = s[i];
    if (inString) {
      if (ch === '\\') i++;
      else if (ch === '"') inString = false;
    } else if (ch === '"') inString = true;
    else if (ch === '{') depth++;
    else if (ch === '}' && --depth === 0) return i + 1;
  }
  return -1;
}

function badDirective(message: string): ApiError {
  return new ApiError(400, 'invalid_request_error', `emulator directive: ${message}`);
}

function intValue(key: string, v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw badDirective(`${key} expects a non-negative integer, got '${v}'`);
  return n;
}

/**
 * Reads the directives in a piece of text. Returns undefined when there are none (the common
 * case, found with one `indexOf`); throws a 400 naming a malformed directive.
 */
export function parseDirectives(text: string): ReplySpec | undefined {
  let at = text.indexOf(DIRECTIVE);
  if (at < 0) return undefined;
  const spec: ReplySpec = {};
  while (at >= 0) {
    let i = at + DIRECTIVE.length;
    const key = /^[a-z_]+/.exec(text.slice(i))?.[0] ?? '';
    i += key.length;
    let value = '';
    if (key === 'tool_use') {
      const m = /^\s+([a-zA-Z0-9_-]+)\s*(=?)\s*/.exec(text.slice(i));
      if (!m) throw badDirective('tool_use needs a tool name: [[emulator:tool_use name={"json":"input"}]]');
      i += m[0].length;
      const call: ScriptedToolUse = { name: m[1]! };
      if (text[i] === '{') {
        const end = jsonEnd(text, i);
        if (end < 0) throw badDirective(`tool_use ${call.name}: unterminated JSON input`);
        try {
          call.input = JSON.parse(text.slice(i, end));
        } catch {
          throw badDirective(`tool_use ${call.name}: input is not valid JSON`);
        }
        i = end;
      }
      spec.toolUse = [...(spec.toolUse ?? []), call];
    } else if (text[i] === '=') {
      const end = text.indexOf(']]', i);
      value = text.slice(i + 1, end < 0 ? text.length : end);
    }
    const close = text.indexOf(']]', i);
    if (close < 0) throw badDirective(`'${key}' is not closed with ]]`);
    switch (key) {
      case 'tool_use':
        break;
      case 'text':
        spec.text = value;
        break;
      case 'output_tokens':
        spec.outputTokens = intValue(key, value);
        break;
      case 'error':
        spec.error = intValue(key, value);
        break;
      case 'latency':
        spec.latencyMs = intValue(key, value);
        break;
      case 'delta_delay':
        spec.deltaDelayMs = intValue(key, value);
        break;
      case 'stream_error':
        spec.streamError = intValue(key, value);
        break;
      case 'thinking_tokens':
        spec.thinkingTokens = intValue(key, value);
        break;
      case 'web_search':
        spec.webSearches = intValue(key, value);
        break;
      case 'web_fetch':
        spec.webFetches = intValue(key, value);
        break;
      case 'stop_reason':
        if (!(STOP_REASONS as readonly string[]).includes(value)) {
          throw badDirective(`stop_reason must be one of ${STOP_REASONS.join(', ')}`);
        }
        spec.stopReason = value as StopReason;
        break;
      default:
        throw badDirective(
          `unknown directive '${key}' (known: text, tool_use, output_tokens, stop_reason, error, latency, delta_delay, stream_error, thinking_tokens, web_search, web_fetch)`,
        );
    }
    at = text.indexOf(DIRECTIVE, close + 2);
  }
  return spec;
}

/** Text with every directive removed (what the default reply quotes). */
export function stripDirectives(text: string): string {
  if (!text.includes(DIRECTIVE)) return text;
  let out = '';
  let from = 0;
  let at = text.indexOf(DIRECTIVE);
  while (at >= 0) {
    out += text.slice(from, at);
    let i = at + DIRECTIVE.length;
    const brace = text.indexOf('{', i);
    const close0 = text.indexOf(']]', i);
    if (brace >= 0 && brace < close0) i = Math.max(i, jsonEnd(text, brace));
    const close = text.indexOf(']]', i);
    from = close < 0 ? text.length : close + 2;
    at = text.indexOf(DIRECTIVE, from);
  }
  return out + text.slice(from);
}

const matcherSchema = z.string();
const specSchema = z.strictObject({
  text: z.string().optional(),
  toolUse: z
    .array(
      z.strictObject({
        name: z.string(),
        input: z.record(z.string(), z.unknown()).optional(),
        id: z.string().optional(),
      }),
    )
    .optional(),
  stopReason: z.enum(STOP_REASONS).optional(),
  outputTokens: z.int().nonnegative().optional(),
  error: z.int().min(400).max(599).optional(),
  errorMessage: z.string().optional(),
  latencyMs: z.int().nonnegative().optional(),
  deltaDelayMs: z.int().nonnegative().optional(),
  streamError: z.int().min(400).max(599).optional(),
  thinkingTokens: z.int().nonnegative().optional(),
  webSearches: z.int().nonnegative().optional(),
  webFetches: z.int().nonnegative().optional(),
});

const ruleSchema = z.strictObject({
  when: z
    .strictObject({
      model: matcherSchema.optional(),
      system: matcherSchema.optional(),
      lastUserText: matcherSchema.optional(),
      afterToolResult: z.boolean().optional(),
      turn: z.int().positive().optional(),
    })
    .optional(),
  reply: specSchema,
  times: z.int().positive().optional(),
});

/** The JSON body of `POST /_emulator/script`: `{ "rules": [...] }` or the bare array of rules. */
export const scriptBodySchema = z.union([
  z.strictObject({ rules: z.array(ruleSchema) }),
  z.array(ruleSchema),
]);
