/**
 * The input of a tool call the script asks for without giving one (a forced `tool_choice`, or a
 * `tool_use` directive without JSON): every required property of the tool's `input_schema`,
 * taken from the conversation where it says so, from the schema otherwise. So a refund agent
 * asked about order A-1001 calls `issue_refund {"order_id":"A-1001","amount_usd":120}` (the
 * order's total from the lookup), not a placeholder. Deterministic: the same request gives the
 * same input. For property `<name>` of the schema, in order:
 *
 * 1. the latest value under the same key, of the schema's type, in the JSON of the conversation:
 *    earlier tool calls' inputs, tool results and user text that parse as JSON (nested objects
 *    included);
 * 2. a string `<stem>_id` (or `<stem>Id`): the first `<stem> <id>` in the user's text, latest
 *    turn first (`order A-1001`, `order #A-1001`, `order id: A-1001`);
 * 3. a number `<stem>_<unit>`: for `usd`, the first `$12.50` in the user's text, latest turn
 *    first; then the latest number under another key with the same unit (`total_usd`);
 * 4. the schema's own value: `const`, `default`, first `enum` or `examples`, the minimum, or
 *    `emulated-<name>` for a string.
 */
import type { JsonSchema, Message } from './request.ts';
import { stripDirectives } from './script.ts';

/** What the conversation says, in order: JSON key/value pairs, and the user's own text. */
interface Said {
  facts: { key: string; value: unknown }[];
  texts: string[];
}

export function inputFromConversation(
  schema: JsonSchema | undefined,
  messages: readonly Message[],
): Record<string, unknown> {
  return fill(schema, saidIn(messages));
}

/**
 * The same from a conversation as text turns (the OpenAI formats: `user` text, `tool` results;
 * a function call's arguments are not kept there, its result is).
 */
export function inputFromTurns(
  schema: JsonSchema | undefined,
  turns: readonly { role: string; text: string; toolResult?: boolean }[],
): Record<string, unknown> {
  const said: Said = { facts: [], texts: [] };
  for (const t of turns) {
    if (t.toolResult) jsonFacts(t.text, said);
    else if (t.role === 'user') {
      said.texts.push(stripDirectives(t.text));
      jsonFacts(t.text, said);
    }
  }
  return fill(schema, said);
}

function fill(schema: JsonSchema | undefined, said: Said): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of schema?.required ?? []) {
    const s = schema?.properties?.[key];
    const heard = fromConversation(key, s, said);
    out[key] = heard !== undefined ? heard : valueFor(key, s);
  }
  return out;
}

/** A deterministic input for a tool from its schema alone (no conversation to draw from). */
export function inputFromSchema(schema: JsonSchema | undefined): Record<string, unknown> {
  return inputFromConversation(schema, []);
}

/** The key/value pairs of a text that is JSON (most texts are not: one look at the first character). */
function jsonFacts(text: string, said: Said): void {
  const t = text.trim();
  if (!t.startsWith('{') && !t.startsWith('[')) return;
  try {
    flatten(JSON.parse(t), said.facts);
  } catch {
    // Not JSON: text only.
  }
}

function saidIn(messages: readonly Message[]): Said {
  const said: Said = { facts: [], texts: [] };
  const json = (text: string) => jsonFacts(text, said);
  for (const m of messages) {
    if (typeof m.content === 'string') {
      if (m.role === 'user') {
        said.texts.push(stripDirectives(m.content));
        json(m.content);
      }
      continue;
    }
    for (const b of m.content) {
      if (b.type === 'text' && typeof b.text === 'string' && m.role === 'user') {
        said.texts.push(stripDirectives(b.text));
        json(b.text);
      } else if (b.type === 'tool_use' && b.input !== undefined) flatten(b.input, said.facts);
      else if (b.type === 'tool_result') {
        const c = b.content;
        if (typeof c === 'string') json(c);
        else for (const x of c ?? []) if (x.type === 'text' && typeof x.text === 'string') json(x.text);
      }
    }
  }
  return said;
}

function flatten(v: unknown, into: Said['facts'], depth = 0): void {
  if (depth > 4 || typeof v !== 'object' || v === null) return;
  if (Array.isArray(v)) {
    for (const x of v) flatten(x, into, depth + 1);
    return;
  }
  for (const [key, value] of Object.entries(v)) {
    if (typeof value === 'object' && value !== null) flatten(value, into, depth + 1);
    else into.push({ key, value });
  }
}

function typeOf(s: JsonSchema | undefined): string | undefined {
  const t = s?.type ?? (s?.anyOf?.[0] ?? s?.oneOf?.[0])?.type;
  return Array.isArray(t) ? t[0] : t;
}

/** Whether `v` is of the schema's (scalar) type and within its enum and bounds. */
function fits(v: unknown, s: JsonSchema | undefined): boolean {
  const type = typeOf(s);
  if (s?.enum && !s.enum.includes(v)) return false;
  if (type === 'string') return typeof v === 'string' && v.length > 0;
  if (type === 'boolean') return typeof v === 'boolean';
  if (type === 'number' || type === 'integer') {
    if (typeof v !== 'number' || !Number.isFinite(v)) return false;
    if (type === 'integer' && !Number.isInteger(v)) return false;
    const max = s?.maximum;
    return (s?.minimum === undefined || v >= s.minimum) && (typeof max !== 'number' || v <= max);
  }
  return false;
}

function fromConversation(key: string, s: JsonSchema | undefined, said: Said): unknown {
  if (s?.const !== undefined) return undefined;
  for (let i = said.facts.length - 1; i >= 0; i--) {
    const f = said.facts[i]!;
    if (f.key === key && fits(f.value, s)) return f.value;
  }
  const type = typeOf(s);
  const latestFirst = [...said.texts].reverse();
  if (type === 'string') {
    const stem = /^(.+?)(?:_id|Id|_ID)$/.exec(key)?.[1];
    if (!stem) return undefined;
    const words = stem.replace(/([a-z])([A-Z])/g, '$1 $2').replace(/_/g, ' ');
    const re = new RegExp(
      `\\b${escapeRe(words).replace(/ /g, '[ _-]?')}(?:[ _-]?id)?\\s*[:#=]?\\s*#?([A-Za-z0-9][A-Za-z0-9._/-]*\\d[A-Za-z0-9._/-]*)`,
      'i',
    );
    for (const t of latestFirst) {
      const id = re.exec(t)?.[1]?.replace(/[._/-]+$/, '');
      if (id && fits(id, s)) return id;
    }
    return undefined;
  }
  if (type === 'number' || type === 'integer') {
    const unit = /_([a-z]+)$/i.exec(key)?.[1]?.toLowerCase();
    if (!unit) return undefined;
    if (unit === 'usd') {
      for (const t of latestFirst) {
        const m = /\$\s?(\d[\d,]*(?:\.\d+)?)/.exec(t);
        const n = m ? Number(m[1]!.replace(/,/g, '')) : Number.NaN;
        if (fits(n, s)) return n;
      }
    }
    for (let i = said.facts.length - 1; i >= 0; i--) {
      const f = said.facts[i]!;
      if (f.key.toLowerCase().endsWith(`_${unit}`) && fits(f.value, s)) return f.value;
    }
  }
  return undefined;
}

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

function valueFor(name: string, s: JsonSchema | undefined): unknown {
  if (!s) return `emulated-${name}`;
  if (s.const !== undefined) return s.const;
  if (s.default !== undefined) return s.default;
  if (s.enum && s.enum.length > 0) return s.enum[0];
  if (s.examples && s.examples.length > 0) return s.examples[0];
  const variant = s.anyOf?.[0] ?? s.oneOf?.[0];
  if (variant) return valueFor(name, variant);
  const type = Array.isArray(s.type) ? s.type[0] : s.type;
  switch (type) {
    case 'integer':
    case 'number':
      return s.minimum ?? 0;
    case 'boolean':
      return false;
    case 'null':
      return null;
    case 'array':
      return Array.from({ length: s.minItems ?? 0 }, () => valueFor(name, s.items));
    case 'object':
      return inputFromSchema(s);
    default:
      return `emulated-${name}`;
  }
}
