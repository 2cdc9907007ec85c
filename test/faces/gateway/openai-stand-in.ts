import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { chatToMessages } from '../../../runtime/faces/gateway/openai/chat-to-messages.ts';
import { refusalToOpenAI, toOpenAIError } from '../../../runtime/faces/gateway/openai/errors.ts';
import {
  ChatStreamTranslator,
  messageToChat,
} from '../../../runtime/faces/gateway/openai/messages-to-chat.ts';
import {
  messageToResponse,
  ResponsesStreamTranslator,
} from '../../../runtime/faces/gateway/openai/messages-to-responses.ts';
import type { TranslateOptions } from '../../../runtime/faces/gateway/openai/request-parts.ts';
import { responsesToMessages } from '../../../runtime/faces/gateway/openai/responses-to-messages.ts';
import { checkOpenAIBody, type OpenAIEndpoint } from '../../../runtime/gateway/openai-body.ts';
import { Refusal } from '../../../runtime/gateway/refusal.ts';

/**
 * A test-only OpenAI face: takes the `openai` SDK's requests, translates them with the modules
 * under test into Messages bodies, sends them to the emulator (the Anthropic API on loopback) and
 * translates the answers back. It stands in for the gateway's OpenAI face, which calls the same
 * functions; nothing here decides anything the translators do not.
 */
export interface StandIn {
  url: string;
  /** The Messages bodies sent upstream, in order. */
  sent: Array<Record<string, unknown>>;
  close(): Promise<void>;
}

export async function startStandIn(
  emulatorUrl: string,
  apiKey: string,
  opts: TranslateOptions = {},
): Promise<StandIn> {
  const sent: Array<Record<string, unknown>> = [];
  const server: Server = createServer((req, res) => {
    handle(req, emulatorUrl, apiKey, opts, sent)
      .then(({ status, headers, body }) => {
        res.writeHead(status, headers);
        if (Buffer.isBuffer(body)) res.end(body);
        else body.pipe(res);
      })
      .catch((err: unknown) => {
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(String(err));
      });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    sent,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

type Answer = { status: number; headers: Record<string, string>; body: Buffer | Readable };

async function handle(
  req: IncomingMessage,
  emulatorUrl: string,
  apiKey: string,
  opts: TranslateOptions,
  sent: Array<Record<string, unknown>>,
): Promise<Answer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const endpoint = (req.url ?? '').replace(/^\/v1\//, '').split('?')[0] as OpenAIEndpoint;
  try {
    const body = checkOpenAIBody(endpoint, JSON.parse(Buffer.concat(chunks).toString('utf8')));
    const messages =
      endpoint === 'chat/completions' ? chatToMessages(body, opts) : responsesToMessages(body, opts);
    sent.push(messages);
    const upstream = await fetch(`${emulatorUrl}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': apiKey, 'anthropic-version': '2023-06-01' },
      body: JSON.stringify(messages),
    });
    if (upstream.status !== 200) {
      const headers: Record<string, string> = {};
      upstream.headers.forEach((v, k) => {
        headers[k] = v;
      });
      const err = toOpenAIError(upstream.status, headers, Buffer.from(await upstream.arrayBuffer()));
      return err;
    }
    const ctx = { model: body.model };
    if (body.stream === true) {
      const translator =
        endpoint === 'chat/completions'
          ? new ChatStreamTranslator({
              ...ctx,
              includeUsage: (body.stream_options as { include_usage?: boolean } | undefined)?.include_usage,
            })
          : new ResponsesStreamTranslator({ ...ctx, request: body });
      const source = Readable.fromWeb(upstream.body as never);
      const out = Readable.from(
        (async function* () {
          for await (const c of source) yield translator.push(c as Buffer);
          yield translator.end();
        })(),
      );
      return { status: 200, headers: { 'content-type': 'text/event-stream' }, body: out };
    }
    const message = (await upstream.json()) as Record<string, unknown>;
    const answer =
      endpoint === 'chat/completions'
        ? messageToChat(message, ctx)
        : messageToResponse(message, { ...ctx, request: body });
    return {
      status: 200,
      headers: { 'content-type': 'application/json' },
      body: Buffer.from(JSON.stringify(answer)),
    };
  } catch (err) {
    if (err instanceof Refusal) return refusalToOpenAI(err, 'req_standin');
    throw err;
  }
}
