/**
 * An OpenAI request as the emulator reads it: the prompt as ordered units (tools, then
 * instructions/system, then each message or input item) with the emulator's token estimate, and
 * what the script sees (system text, last user text, turn). The estimate is the Anthropic face's
 * (`ceil(utf8 bytes / 4)` per text, +3 per request, +4 per message, +16 per tool, 1,600 per
 * image), so one emulator counts one way.
 */
import type { ScriptContext } from '../script.ts';
import { canonicalJson, TOKEN_COSTS, textTokens } from '../tokens.ts';
import { badParam } from './http.ts';

/** One cacheable unit of the prompt, in the order the model reads it. */
export interface Unit {
  /** The unit's canonical JSON: what the prefix hash covers. */
  readonly key: string;
  readonly tokens: number;
}

/** A function tool the model may call: its name and parameter schema. */
export interface FunctionTool {
  name: string;
  parameters?: Record<string, unknown>;
}

export interface Prompt {
  readonly units: Unit[];
  readonly ctx: Omit<ScriptContext, 'model' | 'modelId'>;
  readonly functions: FunctionTool[];
  /** Built-in tools declared (responses): `web_search`, `file_search`, `code_interpreter`. */
  readonly builtins: Set<string>;
  /** The function the request forces (`tool_choice`), if any. */
  readonly forced?: string;
  /** The conversation's turns as text (a forced call's arguments are drawn from them). */
  readonly turns: readonly Turn[];
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Text of a content value: a string, or the text parts of an array of parts. */
function textOf(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content
    .map((p) => (isObj(p) && typeof p.text === 'string' ? p.text : ''))
    .filter(Boolean)
    .join('\n');
}

function contentTokens(content: unknown): number {
  if (typeof content === 'string') return textTokens(content);
  if (!Array.isArray(content))
    return content === undefined || content === null ? 0 : textTokens(canonicalJson(content));
  let n = 0;
  for (const part of content) {
    if (!isObj(part)) continue;
    if (typeof part.text === 'string') n += textTokens(part.text);
    else if (part.type === 'image_url' || part.type === 'input_image') n += TOKEN_COSTS.image;
    else n += textTokens(canonicalJson(part));
  }
  return n;
}

function toolUnits(tools: unknown, functions: FunctionTool[], builtins: Set<string>): Unit[] {
  if (tools === undefined || tools === null) return [];
  if (!Array.isArray(tools)) throw badParam('tools', "Invalid type for 'tools': expected an array.");
  return tools.map((t, i) => {
    if (!isObj(t) || typeof t.type !== 'string')
      throw badParam(
        `tools[${i}].type`,
        `Missing required parameter: 'tools[${i}].type'.`,
        'missing_required_parameter',
      );
    // Chat nests the function (`{type:'function', function:{name, parameters}}`); responses flattens it.
    const fn = isObj(t.function) ? t.function : t;
    if (t.type === 'function') {
      if (typeof fn.name !== 'string')
        throw badParam(
          `tools[${i}].function.name`,
          `Missing required parameter: 'tools[${i}].function.name'.`,
        );
      functions.push({ name: fn.name, ...(isObj(fn.parameters) ? { parameters: fn.parameters } : {}) });
    } else builtins.add(t.type.replace(/_preview$/, ''));
    const key = canonicalJson(t);
    return { key, tokens: TOKEN_COSTS.tool + textTokens(key) };
  });
}

function forcedOf(choice: unknown, functions: FunctionTool[]): string | undefined {
  if (choice === 'required') return functions[0]?.name;
  if (!isObj(choice)) return undefined;
  if (isObj(choice.function) && typeof choice.function.name === 'string') return choice.function.name;
  return typeof choice.name === 'string' ? choice.name : undefined;
}

export interface Turn {
  role: string;
  text: string;
  toolResult: boolean;
}

function scriptView(turns: Turn[], system: string): Prompt['ctx'] {
  let lastUser: Turn | undefined;
  for (let i = turns.length - 1; i >= 0 && !lastUser; i--) {
    const t = turns[i]!;
    if (t.role === 'user' || t.toolResult) lastUser = t;
  }
  const last = turns.at(-1);
  return {
    system,
    lastUserText: lastUser?.text ?? '',
    afterToolResult: last?.toolResult === true,
    turn: turns.filter((t) => t.role === 'assistant').length + 1,
  };
}

/** A chat completions request's prompt. */
export function chatPrompt(body: Obj): Prompt {
  const messages = body.messages;
  if (!Array.isArray(messages) || messages.length === 0) {
    throw badParam('messages', "Missing required parameter: 'messages'.", 'missing_required_parameter');
  }
  const functions: FunctionTool[] = [];
  const builtins = new Set<string>();
  const units = toolUnits(body.tools, functions, builtins);
  const turns: Turn[] = [];
  const system: string[] = [];
  messages.forEach((m, i) => {
    if (!isObj(m) || typeof m.role !== 'string') {
      throw badParam(`messages[${i}].role`, `Missing required parameter: 'messages[${i}].role'.`);
    }
    const text = textOf(m.content);
    if (m.role === 'system' || m.role === 'developer') system.push(text);
    turns.push({ role: m.role, text, toolResult: m.role === 'tool' });
    const key = canonicalJson(m);
    const calls = m.tool_calls === undefined ? 0 : textTokens(canonicalJson(m.tool_calls));
    units.push({ key, tokens: TOKEN_COSTS.message + contentTokens(m.content) + calls });
  });
  return {
    units,
    ctx: scriptView(turns, system.join('\n')),
    functions,
    builtins,
    forced: forcedOf(body.tool_choice, functions),
    turns,
  };
}

/** A responses request's prompt (`instructions` + `input`). */
export function responsesPrompt(body: Obj): Prompt {
  const input = body.input;
  if (input === undefined || input === null) {
    throw badParam('input', "Missing required parameter: 'input'.", 'missing_required_parameter');
  }
  const functions: FunctionTool[] = [];
  const builtins = new Set<string>();
  const units = toolUnits(body.tools, functions, builtins);
  const system: string[] = [];
  if (typeof body.instructions === 'string' && body.instructions) {
    system.push(body.instructions);
    units.push({
      key: canonicalJson({ instructions: body.instructions }),
      tokens: textTokens(body.instructions),
    });
  }
  const items: unknown[] =
    typeof input === 'string' ? [{ role: 'user', content: input }] : Array.isArray(input) ? input : [];
  if (!Array.isArray(input) && typeof input !== 'string')
    throw badParam('input', "Invalid type for 'input'.");
  const turns: Turn[] = [];
  items.forEach((item, i) => {
    if (!isObj(item)) throw badParam(`input[${i}]`, `Invalid type for 'input[${i}]': expected an object.`);
    const type = typeof item.type === 'string' ? item.type : 'message';
    const role = typeof item.role === 'string' ? item.role : type === 'function_call' ? 'assistant' : 'tool';
    const toolResult = type === 'function_call_output';
    const text = toolResult
      ? typeof item.output === 'string'
        ? item.output
        : textOf(item.output)
      : textOf(item.content);
    if (role === 'system' || role === 'developer') system.push(text);
    turns.push({ role, text, toolResult });
    const body = toolResult ? item.output : type === 'function_call' ? item.arguments : item.content;
    units.push({ key: canonicalJson(item), tokens: TOKEN_COSTS.message + contentTokens(body) });
  });
  return {
    units,
    ctx: scriptView(turns, system.join('\n')),
    functions,
    builtins,
    forced: forcedOf(body.tool_choice, functions),
    turns,
  };
}

/** The prompt's whole size: units plus the per-request framing. */
export function promptTokens(units: readonly Unit[]): number {
  let n = TOKEN_COSTS.request;
  for (const u of units) n += u.tokens;
  return n;
}
