/**
 * Bedrock's Converse API ↔ Anthropic Messages, for a face that serves Converse/ConverseStream
 * (the emulator's; the gateway's if it offers one) over the one canonical format.
 *
 * Request: `messages[].content[]` blocks (`text`, `image`, `toolUse`, `toolResult`,
 * `reasoningContent`, `cachePoint`), `system[]`, `inferenceConfig` (`maxTokens`, `temperature`,
 * `topP`, `stopSequences`), `toolConfig` (`tools[].toolSpec`, `toolChoice`) and
 * `additionalModelRequestFields` (merged into the Anthropic body, as Bedrock passes them to the
 * model). Answer: `{output: {message}, stopReason, usage, metrics}`; streamed, the events
 * `messageStart`, `contentBlockStart` (tool use), `contentBlockDelta`, `contentBlockStop`,
 * `messageStop`, `metadata` — each an event-stream message whose `:event-type` names it and whose
 * payload is its JSON (no base64 wrapper, unlike InvokeModel's chunks).
 */

import { exceptionTypeOfAnthropic } from './errors.ts';
import { encodeMessage, exceptionMessage } from './eventstream.ts';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A Converse request that cannot be turned into a Messages request (a 400 ValidationException). */
export class ConverseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConverseError';
  }
}

/** Without `inferenceConfig.maxTokens` Bedrock uses the model's default; ours is this. */
export const DEFAULT_MAX_TOKENS = 4096;

function cacheControl(point: unknown): Obj {
  const ttl = isObj(point) && typeof point.ttl === 'string' ? point.ttl : undefined;
  return { type: 'ephemeral', ...(ttl === '1h' ? { ttl: '1h' } : {}) };
}

/** Converse content blocks → Anthropic ones; a `cachePoint` marks the block before it. */
function blocks(content: unknown, where: string): Obj[] {
  if (!Array.isArray(content)) throw new ConverseError(`${where}: expected an array of content blocks`);
  const out: Obj[] = [];
  content.forEach((b, i) => {
    if (!isObj(b)) throw new ConverseError(`${where}[${i}]: expected a content block`);
    if ('cachePoint' in b) {
      const last = out.at(-1);
      if (!last) throw new ConverseError(`${where}[${i}]: a cachePoint needs a block before it`);
      last.cache_control = cacheControl(b.cachePoint);
    } else out.push(block(b, `${where}[${i}]`));
  });
  return out;
}

function block(b: Obj, where: string): Obj {
  if (typeof b.text === 'string') return { type: 'text', text: b.text };
  if (isObj(b.image)) {
    const src = isObj(b.image.source) ? b.image.source : {};
    return {
      type: 'image',
      source: {
        type: 'base64',
        media_type: `image/${String(b.image.format ?? 'png')}`,
        data: String(src.bytes ?? ''),
      },
    };
  }
  if (isObj(b.toolUse)) {
    return { type: 'tool_use', id: b.toolUse.toolUseId, name: b.toolUse.name, input: b.toolUse.input ?? {} };
  }
  if (isObj(b.toolResult)) {
    const parts = Array.isArray(b.toolResult.content) ? b.toolResult.content : [];
    const content = parts.map((p) =>
      isObj(p) && typeof p.text === 'string'
        ? { type: 'text', text: p.text }
        : { type: 'text', text: JSON.stringify(isObj(p) ? (p.json ?? p) : p) },
    );
    return {
      type: 'tool_result',
      tool_use_id: b.toolResult.toolUseId,
      content,
      ...(b.toolResult.status === 'error' ? { is_error: true } : {}),
    };
  }
  if (isObj(b.reasoningContent) && isObj(b.reasoningContent.reasoningText)) {
    const r = b.reasoningContent.reasoningText;
    return { type: 'thinking', thinking: String(r.text ?? ''), signature: String(r.signature ?? '') };
  }
  throw new ConverseError(`${where}: unsupported content block (${Object.keys(b).join(', ') || 'empty'})`);
}

function tools(config: unknown): Obj {
  if (!isObj(config)) return {};
  const list: Obj[] = [];
  (Array.isArray(config.tools) ? config.tools : []).forEach((t, i) => {
    if (isObj(t) && 'cachePoint' in t) {
      const last = list.at(-1);
      if (last) last.cache_control = cacheControl(t.cachePoint);
      return;
    }
    const spec = isObj(t) && isObj(t.toolSpec) ? t.toolSpec : undefined;
    if (!spec || typeof spec.name !== 'string')
      throw new ConverseError(`toolConfig.tools[${i}]: expected a toolSpec`);
    const schema = isObj(spec.inputSchema) ? spec.inputSchema.json : undefined;
    list.push({
      name: spec.name,
      ...(typeof spec.description === 'string' ? { description: spec.description } : {}),
      input_schema: schema ?? { type: 'object' },
    });
  });
  const c = config.toolChoice;
  const choice = !isObj(c)
    ? undefined
    : 'any' in c
      ? { type: 'any' }
      : isObj(c.tool)
        ? { type: 'tool', name: c.tool.name }
        : { type: 'auto' };
  return { ...(list.length ? { tools: list } : {}), ...(choice ? { tool_choice: choice } : {}) };
}

/**
 * A Converse request → the Anthropic Messages request (with `model` and `stream`), and the betas
 * `additionalModelRequestFields.anthropic_beta` asks for (they travel as a header).
 */
export function converseToAnthropic(
  req: unknown,
  model: string,
  stream: boolean,
): { body: Obj; betas: string[] } {
  if (!isObj(req)) throw new ConverseError('expected a JSON object');
  if (!Array.isArray(req.messages)) throw new ConverseError('messages: required');
  const messages = req.messages.map((m, i) => {
    if (!isObj(m) || (m.role !== 'user' && m.role !== 'assistant')) {
      throw new ConverseError(`messages[${i}].role: expected user or assistant`);
    }
    return { role: m.role, content: blocks(m.content, `messages[${i}].content`) };
  });
  const inference = isObj(req.inferenceConfig) ? req.inferenceConfig : {};
  const { anthropic_beta, ...extra } = isObj(req.additionalModelRequestFields)
    ? req.additionalModelRequestFields
    : {};
  const body: Obj = {
    model,
    max_tokens: typeof inference.maxTokens === 'number' ? inference.maxTokens : DEFAULT_MAX_TOKENS,
    messages,
    ...(req.system !== undefined ? { system: blocks(req.system, 'system') } : {}),
    ...(typeof inference.temperature === 'number' ? { temperature: inference.temperature } : {}),
    ...(typeof inference.topP === 'number' ? { top_p: inference.topP } : {}),
    ...(Array.isArray(inference.stopSequences) ? { stop_sequences: inference.stopSequences } : {}),
    ...tools(req.toolConfig),
    ...extra,
    ...(stream ? { stream: true } : {}),
  };
  const betas = Array.isArray(anthropic_beta) ? anthropic_beta.map(String) : [];
  return { body, betas };
}

const STOP: Record<string, string> = {
  end_turn: 'end_turn',
  tool_use: 'tool_use',
  max_tokens: 'max_tokens',
  stop_sequence: 'stop_sequence',
  refusal: 'content_filtered',
  pause_turn: 'end_turn',
  model_context_window_exceeded: 'model_context_window_exceeded',
};

/** Anthropic usage → Converse's `usage` (inputTokens are the uncached ones). */
export function converseUsage(u: Obj | undefined): Obj {
  const n = (v: unknown) => (typeof v === 'number' ? v : 0);
  const input = n(u?.input_tokens);
  const output = n(u?.output_tokens);
  const read = n(u?.cache_read_input_tokens);
  const write = n(u?.cache_creation_input_tokens);
  return {
    inputTokens: input,
    outputTokens: output,
    totalTokens: input + output + read + write,
    cacheReadInputTokens: read,
    cacheWriteInputTokens: write,
  };
}

function converseBlock(b: Obj): Obj | undefined {
  if (b.type === 'text') return { text: b.text };
  if (b.type === 'tool_use') return { toolUse: { toolUseId: b.id, name: b.name, input: b.input } };
  if (b.type === 'thinking') {
    return { reasoningContent: { reasoningText: { text: b.thinking, signature: b.signature } } };
  }
  return undefined;
}

/** An Anthropic message → Converse's answer. */
export function anthropicToConverse(message: Obj, latencyMs: number): Obj {
  const content = (Array.isArray(message.content) ? message.content : [])
    .filter(isObj)
    .map(converseBlock)
    .filter((b): b is Obj => b !== undefined);
  return {
    output: { message: { role: 'assistant', content } },
    stopReason: STOP[String(message.stop_reason)] ?? 'end_turn',
    usage: converseUsage(isObj(message.usage) ? message.usage : undefined),
    metrics: { latencyMs },
  };
}

const event = (type: string, payload: Obj) =>
  encodeMessage(
    { ':event-type': type, ':content-type': 'application/json', ':message-type': 'event' },
    Buffer.from(JSON.stringify(payload)),
  );

/**
 * Anthropic SSE → ConverseStream frames, incrementally (SSE cut anywhere). Usage comes from
 * `message_start` and the cumulative `message_delta`, sent in the closing `metadata` event.
 */
export class ConverseStreamWriter {
  private pending = '';
  private name = '';
  private usage: Obj = {};
  private stop = 'end_turn';
  private readonly utf8 = new TextDecoder();

  constructor(
    private readonly started: number,
    private readonly clock: () => number = Date.now,
  ) {}

  push(chunk: Uint8Array): Uint8Array {
    this.pending += this.utf8.decode(chunk, { stream: true });
    const out: Uint8Array[] = [];
    let nl = this.pending.indexOf('\n');
    while (nl !== -1) {
      const line = this.pending.slice(0, nl).replace(/\r$/, '');
      this.pending = this.pending.slice(nl + 1);
      if (line.startsWith('event:')) this.name = line.slice(6).trim();
      else if (line.startsWith('data:')) out.push(...this.convert(this.name, line.slice(5).trim()));
      nl = this.pending.indexOf('\n');
    }
    return Buffer.concat(out);
  }

  private convert(name: string, data: string): Uint8Array[] {
    let e: Obj;
    try {
      e = JSON.parse(data) as Obj;
    } catch {
      return [exceptionMessage('internalServerException', 'the upstream stream carried an unreadable event')];
    }
    const index = typeof e.index === 'number' ? e.index : 0;
    switch (name || e.type) {
      case 'message_start': {
        const m = isObj(e.message) ? e.message : {};
        this.usage = { ...(isObj(m.usage) ? m.usage : {}) };
        return [event('messageStart', { role: 'assistant' })];
      }
      case 'content_block_start': {
        const b = isObj(e.content_block) ? e.content_block : {};
        if (b.type !== 'tool_use') return [];
        const start = { toolUse: { toolUseId: b.id, name: b.name } };
        return [event('contentBlockStart', { contentBlockIndex: index, start })];
      }
      case 'content_block_delta': {
        const delta = this.delta(isObj(e.delta) ? e.delta : {});
        return delta ? [event('contentBlockDelta', { contentBlockIndex: index, delta })] : [];
      }
      case 'content_block_stop':
        return [event('contentBlockStop', { contentBlockIndex: index })];
      case 'message_delta': {
        const d = isObj(e.delta) ? e.delta : {};
        if (typeof d.stop_reason === 'string') this.stop = STOP[d.stop_reason] ?? 'end_turn';
        for (const [k, v] of Object.entries(isObj(e.usage) ? e.usage : {})) if (v !== null) this.usage[k] = v;
        return [];
      }
      case 'message_stop': {
        const metrics = { latencyMs: this.clock() - this.started };
        return [
          event('messageStop', { stopReason: this.stop }),
          event('metadata', { usage: converseUsage(this.usage), metrics }),
        ];
      }
      case 'error': {
        const err = isObj(e.error) ? e.error : {};
        return [
          exceptionMessage(
            exceptionTypeOfAnthropic(String(err.type ?? 'api_error')),
            String(err.message ?? 'error'),
          ),
        ];
      }
      default:
        return [];
    }
  }

  private delta(d: Obj): Obj | undefined {
    if (d.type === 'text_delta') return { text: d.text };
    if (d.type === 'input_json_delta') return { toolUse: { input: d.partial_json } };
    if (d.type === 'thinking_delta') return { reasoningContent: { text: d.thinking } };
    if (d.type === 'signature_delta') return { reasoningContent: { signature: d.signature } };
    return undefined;
  }
}
