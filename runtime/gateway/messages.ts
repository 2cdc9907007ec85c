import { z } from 'zod';

/**
 * The `/v1/messages` body: validated only as deep as enforcement needs (model, limits, the
 * prompt's shape) and otherwise passed through untouched, so fields the upstream accepts and we
 * do not know yet still reach it.
 */
const cacheControl = z.looseObject({ type: z.literal('ephemeral'), ttl: z.enum(['5m', '1h']).optional() });

const block = z.looseObject({ type: z.string(), cache_control: cacheControl.optional() });

const content = z.union([z.string(), z.array(block)]);

export const messagesBody = z.looseObject({
  model: z.string({ error: 'required: the model to call, e.g. "claude-sonnet-4-5"' }).min(1),
  max_tokens: z
    .number({ error: 'required: the most output tokens to generate (a positive integer)' })
    .int('expected a positive integer')
    .positive('expected a positive integer'),
  messages: z
    .array(
      z.looseObject({
        role: z.enum(['user', 'assistant'], { error: 'expected "user" or "assistant"' }),
        content,
      }),
      { error: 'required: an array of {role, content} messages' },
    )
    .min(1, 'at least one message is required'),
  system: z.union([z.string(), z.array(block)]).optional(),
  tools: z.array(z.looseObject({ name: z.string() })).optional(),
  stream: z.boolean().optional(),
  metadata: z.looseObject({}).optional(),
});

export type MessagesBody = z.infer<typeof messagesBody>;
export type ContentBlock = z.infer<typeof block>;

export const countTokensBody = messagesBody.omit({ max_tokens: true }).extend({});

/** The first problem with a body, as `field: problem`, for a 400 that names the field. */
export function firstIssue(error: z.ZodError): { field: string; problem: string } {
  const issue = error.issues[0]!;
  const field = issue.path.length ? issue.path.join('.') : '(body)';
  let problem = issue.message;
  if (issue.code === 'invalid_type' && /received undefined/.test(problem)) problem = 'required';
  return { field, problem };
}

/**
 * Conservative input-token estimate used for admission (worst case), documented in the README:
 * the UTF-8 bytes of every prompt-bearing string (system, message text, tool inputs and results,
 * thinking, tool definitions as JSON) divided by 2, rounded up — real tokenizers average 3–4
 * bytes per token on text, so this over-counts, never under-counts in practice — plus 8 tokens
 * per message, 16 per tool definition, 1,600 per image (the API's cap for one image) and 32 for
 * the request. Near a ceiling the gateway asks the provider's count_tokens for the exact number.
 */
export function estimateInputTokens(body: MessagesBody): number {
  let bytes = 0;
  let fixed = 32;
  if (typeof body.system === 'string') bytes += Buffer.byteLength(body.system);
  else if (body.system) for (const b of body.system) bytes += blockBytes(b);
  for (const m of body.messages) {
    fixed += 8;
    if (typeof m.content === 'string') bytes += Buffer.byteLength(m.content);
    else
      for (const b of m.content) {
        if (b.type === 'image') fixed += 1600;
        else bytes += blockBytes(b);
      }
  }
  if (body.tools)
    for (const t of body.tools) {
      fixed += 16;
      bytes += Buffer.byteLength(JSON.stringify(t));
    }
  return Math.ceil(bytes / 2) + fixed;
}

function blockBytes(b: Record<string, unknown>): number {
  switch (b.type) {
    case 'text':
      return typeof b.text === 'string' ? Buffer.byteLength(b.text) : 0;
    case 'thinking':
      return typeof b.thinking === 'string' ? Buffer.byteLength(b.thinking) : 0;
    case 'tool_use':
      return Buffer.byteLength(JSON.stringify(b.input ?? {})) + Buffer.byteLength(String(b.name ?? ''));
    case 'tool_result': {
      const c = b.content;
      if (typeof c === 'string') return Buffer.byteLength(c);
      if (Array.isArray(c))
        return c.reduce((n: number, x) => n + blockBytes(x as Record<string, unknown>), 0);
      return 0;
    }
    default:
      // Documents, search results and block types we do not know: count all of their JSON.
      return Buffer.byteLength(JSON.stringify(b));
  }
}

/** The highest cache-write multiplier the request can incur: which rate the worst case uses. */
export function cacheTtlsRequested(body: MessagesBody): { has5m: boolean; has1h: boolean } {
  let has5m = false;
  let has1h = false;
  const see = (b: { cache_control?: { ttl?: string } }) => {
    if (!b.cache_control) return;
    if (b.cache_control.ttl === '1h') has1h = true;
    else has5m = true;
  };
  if (Array.isArray(body.system)) for (const b of body.system) see(b);
  for (const t of body.tools ?? []) see(t as { cache_control?: { ttl?: string } });
  for (const m of body.messages) if (Array.isArray(m.content)) for (const b of m.content) see(b);
  return { has5m, has1h };
}
