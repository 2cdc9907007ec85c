/**
 * The emulated model's answer: content blocks, stop reason and output tokens, from the request and
 * an optional {@link ReplySpec}. Deterministic: the same request and spec give the same text.
 */
import { invalid } from './errors.ts';
import { newId } from './ids.ts';
import type { Message, MessagesRequest, Tool } from './request.ts';
import {
  parseDirectives,
  type ReplySpec,
  type ScriptContext,
  type StopReason,
  stripDirectives,
} from './script.ts';
import { runServerTools, type ServerResultOut, type ServerToolUseOut } from './server-tools.ts';
import { makeThinking, type ThinkingOut, thinkingTokensOf } from './thinking.ts';
import { canonicalJson, TOKEN_COSTS, textTokens } from './tokens.ts';
import { inputFromConversation } from './tool-input.ts';

export interface TextOut {
  type: 'text';
  text: string;
}
export interface ToolUseOut {
  type: 'tool_use';
  id: string;
  name: string;
  input: Record<string, unknown>;
}
export type BlockOut = TextOut | ToolUseOut | ThinkingOut | ServerToolUseOut | ServerResultOut;

export interface Reply {
  content: BlockOut[];
  stopReason: StopReason;
  stopSequence: string | null;
  outputTokens: number;
  /** Of `outputTokens`, the thinking tokens. */
  thinkingTokens: number;
  /** Server tool results, fed back to the model: billed as uncached input. */
  extraInputTokens: number;
  webSearchRequests: number;
  webFetchRequests: number;
}

/** Output tokens of a generated block (same estimate as input blocks; server results are input). */
export function outTokens(b: BlockOut): number {
  switch (b.type) {
    case 'text':
      return textTokens(b.text);
    case 'thinking':
      return thinkingTokensOf(b);
    case 'web_search_tool_result':
    case 'web_fetch_tool_result':
      return 0;
    default:
      return TOKEN_COSTS.toolUse + textTokens(b.name) + textTokens(canonicalJson(b.input));
  }
}

/** How the call is served, as far as the reply is concerned. */
export interface ReplyOptions {
  thinking?: { display: 'summarized' | 'omitted' };
}

function textOf(content: Message['content']): string {
  if (typeof content === 'string') return content;
  let s = '';
  for (const b of content) {
    if (b.type === 'text' && b.text) s += (s ? '\n' : '') + b.text;
    else if (b.type === 'tool_result') s += (s ? '\n' : '') + textOf(b.content ?? '');
  }
  return s;
}

/** The request as the script sees it, plus the directives of its last user turn. */
export function scriptView(
  req: MessagesRequest,
  modelId: string,
): { ctx: ScriptContext; directives?: ReplySpec } {
  let last: Message | undefined;
  let turn = 1;
  for (const m of req.messages) {
    if (m.role === 'user') last = m;
    else if (m.role === 'assistant') turn++;
  }
  const raw = last ? textOf(last.content) : '';
  const afterToolResult =
    !!last && typeof last.content !== 'string' && last.content.some((b) => b.type === 'tool_result');
  const system =
    typeof req.system === 'string' ? req.system : (req.system ?? []).map((b) => b.text ?? '').join('\n');
  return {
    ctx: { model: req.model, modelId, system, lastUserText: stripDirectives(raw), afterToolResult, turn },
    directives: parseDirectives(raw),
  };
}

function firstWords(text: string, n: number): string {
  return text.trim().split(/\s+/).slice(0, n).join(' ');
}

function defaultText(ctx: ScriptContext): string {
  const words = firstWords(ctx.lastUserText, 12);
  if (ctx.afterToolResult)
    return words ? `Emulated reply after tool result: ${words}` : 'Emulated reply after tool result.';
  return words ? `Emulated reply: ${words}` : 'Emulated reply.';
}

/** Cuts text to at most `tokens` tokens (4 UTF-8 bytes each) on a character boundary. */
export function truncateToTokens(text: string, tokens: number): string {
  const limit = tokens * 4;
  if (Buffer.byteLength(text, 'utf8') <= limit) return text;
  let bytes = 0;
  let i = 0;
  for (const ch of text) {
    const b = Buffer.byteLength(ch, 'utf8');
    if (bytes + b > limit) break;
    bytes += b;
    i += ch.length;
  }
  return text.slice(0, i);
}

const FILLER = ' The emulator pads this reply deterministically to the requested length.';

/** Text of exactly `tokens` tokens, starting with `base` (ASCII padding keeps the count exact). */
function sizedText(base: string, tokens: number): string {
  if (tokens <= 0) return '';
  let text = truncateToTokens(base, tokens);
  const want = tokens * 4;
  let bytes = Buffer.byteLength(text, 'utf8');
  while (bytes < want) {
    const add = FILLER.slice(0, want - bytes);
    text += add;
    bytes += add.length;
  }
  return text;
}

/**
 * Builds the reply. Precedence: directives in the last user turn over the matched script rule
 * over defaults (a forced `tool_choice`, else a text derived from the last user turn).
 */
export function buildReply(
  req: MessagesRequest,
  spec: ReplySpec | undefined,
  ctx: ScriptContext,
  opts: ReplyOptions = {},
): Reply {
  const tools = req.tools ?? [];
  const choice = req.tool_choice;
  let calls = spec?.toolUse;
  if (!calls && tools.length > 0 && choice && (choice.type === 'tool' || choice.type === 'any')) {
    calls = [{ name: choice.type === 'tool' ? choice.name : (tools[0] as Tool).name }];
  }
  const toolUses: ToolUseOut[] = (calls ?? []).map((c) => {
    const tool = tools.find((t) => t.name === c.name);
    if (!tool || choice?.type === 'none') {
      throw invalid(
        `emulator script: the reply calls tool '${c.name}', which the request ${tool ? 'forbids (tool_choice none)' : 'does not declare in tools'}`,
      );
    }
    return {
      type: 'tool_use',
      id: c.id ?? newId('toolu_01'),
      name: c.name,
      input: c.input ?? inputFromConversation(tool.input_schema, req.messages),
    };
  });

  let text = spec?.text ?? (toolUses.length > 0 ? undefined : defaultText(ctx));
  const toolTokensTotal = toolUses.reduce((n, b) => n + outTokens(b), 0);
  if (spec?.outputTokens !== undefined) {
    const room = spec.outputTokens - toolTokensTotal;
    text = room > 0 ? sizedText(text ?? defaultText(ctx), room) : undefined;
  }

  let stopReason: StopReason = toolUses.length > 0 ? 'tool_use' : 'end_turn';
  let stopSequence: string | null = null;
  if (text && req.stop_sequences?.length) {
    let cut = -1;
    for (const s of req.stop_sequences) {
      const at = s ? text.indexOf(s) : -1;
      if (at >= 0 && (cut < 0 || at < cut)) {
        cut = at;
        stopSequence = s;
      }
    }
    if (cut >= 0) {
      text = text.slice(0, cut);
      toolUses.length = 0;
      stopReason = 'stop_sequence';
    }
  }

  const head: BlockOut[] = [];
  if (opts.thinking) {
    head.push(makeThinking(ctx.lastUserText, opts.thinking.display, spec?.thinkingTokens, req.max_tokens));
  }
  const server = runServerTools(tools, spec?.webSearches ?? 0, spec?.webFetches ?? 0, ctx.lastUserText);
  head.push(...server.blocks);
  const content: BlockOut[] = [...head];
  if (text !== undefined && (text !== '' || (toolUses.length === 0 && head.length === 0))) {
    content.push({ type: 'text', text });
  }
  content.push(...toolUses);
  let outputTokens = content.reduce((n, b) => n + outTokens(b), 0);
  if (outputTokens > req.max_tokens) {
    // Generation stops at max_tokens: text is cut, tool calls that no longer fit are dropped.
    let left = req.max_tokens;
    const kept: BlockOut[] = [];
    for (const b of content) {
      if (left <= 0) break;
      if (b.type === 'text') {
        const cut = truncateToTokens(b.text, left);
        kept.push({ type: 'text', text: cut });
        left -= textTokens(cut);
      } else if (b.type === 'web_search_tool_result' || b.type === 'web_fetch_tool_result') {
        kept.push(b);
      } else if (outTokens(b) <= left) {
        kept.push(b);
        left -= outTokens(b);
      } else break;
    }
    content.splice(0, content.length, ...kept);
    outputTokens = req.max_tokens;
    stopReason = 'max_tokens';
    stopSequence = null;
  } else if (spec?.stopReason) {
    stopReason = spec.stopReason;
  }
  const thinking = content.find((b): b is ThinkingOut => b.type === 'thinking');
  return {
    content,
    stopReason,
    stopSequence,
    outputTokens: Math.max(1, outputTokens),
    thinkingTokens: thinking ? thinkingTokensOf(thinking) : 0,
    extraInputTokens: server.resultTokens,
    webSearchRequests: server.webSearchRequests,
    webFetchRequests: server.webFetchRequests,
  };
}

/** The directives of a request merged over a script rule's reply (directives win). */
export function mergeSpecs(
  rule: ReplySpec | undefined,
  directives: ReplySpec | undefined,
): ReplySpec | undefined {
  if (!directives) return rule;
  if (!rule) return directives;
  return { ...rule, ...directives };
}

/** The API's `usage` object (non-streaming responses and `message_start`). */
export interface ApiUsage {
  input_tokens: number;
  cache_creation_input_tokens: number;
  cache_read_input_tokens: number;
  cache_creation: { ephemeral_5m_input_tokens: number; ephemeral_1h_input_tokens: number };
  output_tokens: number;
  output_tokens_details?: { thinking_tokens: number };
  server_tool_use?: { web_search_requests: number; web_fetch_requests: number };
  service_tier: 'standard' | 'batch';
  inference_geo: string | null;
  speed: 'standard' | 'fast';
}

/** What `apiUsage` adds beyond the token counts. */
export interface UsageExtras {
  serviceTier?: 'standard' | 'batch';
  inferenceGeo?: string | null;
  speed?: 'standard' | 'fast';
  thinkingTokens?: number;
  /** Present when the request declared a server tool. */
  serverToolUse?: { web_search_requests: number; web_fetch_requests: number };
}

/**
 * The usage object. `output_tokens_details` appears when the reply thought, `server_tool_use` when
 * the request declared a server tool (both nullable in the SDK's `Usage`, so omitted otherwise).
 */
export function apiUsage(
  u: { input: number; cacheWrite5m: number; cacheWrite1h: number; cacheRead: number },
  outputTokens: number,
  x: UsageExtras = {},
): ApiUsage {
  return {
    input_tokens: u.input,
    cache_creation_input_tokens: u.cacheWrite5m + u.cacheWrite1h,
    cache_read_input_tokens: u.cacheRead,
    cache_creation: { ephemeral_5m_input_tokens: u.cacheWrite5m, ephemeral_1h_input_tokens: u.cacheWrite1h },
    output_tokens: outputTokens,
    ...(x.thinkingTokens ? { output_tokens_details: { thinking_tokens: x.thinkingTokens } } : {}),
    ...(x.serverToolUse ? { server_tool_use: x.serverToolUse } : {}),
    service_tier: x.serviceTier ?? 'standard',
    inference_geo: x.inferenceGeo ?? null,
    speed: x.speed ?? 'standard',
  };
}
