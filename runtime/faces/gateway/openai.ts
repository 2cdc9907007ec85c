import type { IncomingMessage } from 'node:http';
import { USAGE_INJECTED_HEADER, UsageStripper } from '../../../adapters/openai/stream.ts';
import type { ApiKey } from '../../auth/keys.ts';
import type { Services } from '../../compose.ts';
import type { ModelCall } from '../../gateway/call.ts';
import { checkBody, type MessagesBody } from '../../gateway/messages.ts';
import {
  checkOpenAIBody,
  inspectOpenAI,
  type OpenAIBody,
  type OpenAIEndpoint,
} from '../../gateway/openai-body.ts';
import { invalidRequest, Refusal } from '../../gateway/refusal.ts';
import type { Sink } from '../../gateway/sink.ts';
import type { Identity } from '../../identity.ts';
import { maxTokensPolicy, parseJson } from './common.ts';
import { chatToMessages } from './openai/chat-to-messages.ts';
import { toOpenAIError } from './openai/errors.ts';
import { ChatStreamTranslator, messageToChat } from './openai/messages-to-chat.ts';
import { messageToResponse, ResponsesStreamTranslator } from './openai/messages-to-responses.ts';
import { responsesToMessages } from './openai/responses-to-messages.ts';
import { reframed, type Whole } from './reframe.ts';

/** The OpenAI-format endpoints the gateway serves, by path. */
export const OPENAI_PATHS: Record<string, OpenAIEndpoint> = {
  '/v1/chat/completions': 'chat/completions',
  '/v1/responses': 'responses',
  '/v1/embeddings': 'embeddings',
};

/**
 * The OpenAI face: chat completions, responses and embeddings in OpenAI's wire format, through
 * the one call path. A GPT model (one OpenAI's price rows name) goes as it came to the OpenAI
 * provider, admitted from the body's own facts; a Claude model (or a model class) is translated
 * to a Messages call and its answer back, so OpenAI-format clients spend from the same budgets.
 * Errors and refusals are OpenAI error envelopes with our `chokepoint` object; a budget refusal
 * carries `x-should-retry: false`, which the `openai` SDK honours (one attempt, a typed error).
 */
export async function openaiCall(
  rt: Services,
  key: ApiKey,
  identity: Identity,
  endpoint: OpenAIEndpoint,
  raw: Buffer,
  req: IncomingMessage,
  http: Sink,
  requestId: string,
): Promise<void> {
  const sink = openAIErrors(http);
  try {
    const body = checkOpenAIBody(endpoint, parseJson(raw));
    const base = {
      identity,
      requestId,
      headers: req.headers,
      streamKey: `${key.id}:${identity.workflow ?? ''}:${identity.session ?? ''}`,
      driftPolicy: key.driftPolicy,
      ...(key.sessionTimeBox ? { gate: () => rt.sessions.check(key, identity) } : {}),
    } satisfies Partial<ModelCall>;
    const gpt = rt.prices.lookup(body.model, rt.now())?.provider === 'openai';
    if (gpt || endpoint === 'embeddings') {
      const provider = rt.providers.ofFamily('openai');
      if (!provider) {
        throw invalidRequest(
          'model',
          `${body.model} is an OpenAI model and no provider of kind openai is configured (add providers: { openai: { kind: openai } })`,
        );
      }
      const call: ModelCall = {
        ...base,
        body: body as unknown as MessagesBody,
        raw,
        provider,
        openai: { endpoint, facts: inspectOpenAI(endpoint, body) },
      };
      await rt.calls.model(call, gptAnswers(sink));
      return;
    }
    const messages = checkBody(
      endpoint === 'chat/completions' ? chatToMessages(body) : responsesToMessages(body),
    );
    await rt.calls.model(
      { ...base, body: messages, maxTokens: maxTokensPolicy(rt, key, identity) },
      claudeAnswers(sink, endpoint, body),
    );
  } catch (err) {
    if (!(err instanceof Refusal)) throw err;
    rt.calls.rejected(requestId, err.code, err.status);
    sink.head(err.status, err.headers(requestId));
    sink.chunk(Buffer.from(JSON.stringify(err.envelope(requestId))));
    sink.end();
  }
}

/**
 * Every error and refusal in OpenAI's envelope: the call path's (Anthropic's `{type:'error'}`
 * envelope, a Claude model's errors) rewritten, an OpenAI provider's own passed as it came.
 */
function openAIErrors(inner: Sink): Sink {
  return reframed(inner, {
    error: (a: Whole) => (anthropicEnvelope(a.body) ? toOpenAIError(a.status, a.headers, a.body) : a),
  });
}

function anthropicEnvelope(body: Buffer): boolean {
  try {
    return (JSON.parse(body.toString('utf8')) as { type?: unknown }).type === 'error';
  } catch {
    return true;
  }
}

/** A GPT model's answer is OpenAI's own; only a usage chunk the gateway asked for is taken out. */
function gptAnswers(sink: Sink): Sink {
  return reframed(sink, {
    error: (a) => a,
    stream: (headers) => {
      if (headers[USAGE_INJECTED_HEADER] === undefined) return undefined;
      delete headers[USAGE_INJECTED_HEADER];
      const strip = new UsageStripper();
      return { contentType: 'text/event-stream', push: (c) => strip.push(c), end: () => strip.end() };
    },
  });
}

/** A Claude model's answer (a Messages answer) in the chat completions or responses format. */
function claudeAnswers(sink: Sink, endpoint: OpenAIEndpoint, body: OpenAIBody): Sink {
  const ctx = { model: body.model };
  const chat = endpoint === 'chat/completions';
  return reframed(sink, {
    error: (a) => a,
    json: (a) => {
      const message = JSON.parse(a.body.toString('utf8')) as Record<string, unknown>;
      const answer = chat
        ? messageToChat(message, ctx)
        : messageToResponse(message, { ...ctx, request: body });
      return {
        status: a.status,
        headers: { ...a.headers, 'content-type': 'application/json' },
        body: Buffer.from(JSON.stringify(answer)),
      };
    },
    stream: () => {
      const includeUsage = (body.stream_options as { include_usage?: boolean } | undefined)?.include_usage;
      const t = chat
        ? new ChatStreamTranslator({ ...ctx, includeUsage })
        : new ResponsesStreamTranslator({ ...ctx, request: body });
      return { contentType: 'text/event-stream', push: (c) => t.push(c), end: () => t.end() };
    },
  });
}
