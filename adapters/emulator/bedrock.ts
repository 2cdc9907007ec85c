/**
 * The emulator's Amazon Bedrock Runtime face, under `/bedrock`: InvokeModel
 * (`POST /bedrock/model/{modelId}/invoke`), InvokeModelWithResponseStream
 * (`…/invoke-with-response-stream`, AWS event-stream framing), CountTokens (`…/count-tokens`)
 * and the control plane's ListInferenceProfiles / GetInferenceProfile
 * (`GET /bedrock/inference-profiles[/{id}]`). Every request is SigV4-verified against the
 * emulator's AWS credentials; the call itself is `serveMessages` (billed to provider `bedrock`,
 * at the regional price where the model has one and the profile is not `global`), its answer
 * re-framed the way Bedrock frames it. Converse (`…/converse`, `…/converse-stream`) is translated
 * to and from Messages (`../bedrock/converse.ts`).
 */
import type { Hono } from 'hono';
import {
  anthropicToConverse,
  ConverseError,
  ConverseStreamWriter,
  converseToAnthropic,
} from '../bedrock/converse.ts';
import { bedrockErrorOf } from '../bedrock/errors.ts';
import { BedrockStreamWriter } from '../bedrock/eventstream.ts';
import { billedRegional, type ParsedModelId, parseModelId } from '../bedrock/models.ts';
import { listInferenceProfiles } from '../bedrock/profiles.ts';
import { BedrockFault, verifySigV4 } from './aws-auth.ts';
import { lifecycleOf, MODELS, resolveModel } from './catalog.ts';
import type { EmulatorState } from './http.ts';
import { newId } from './ids.ts';
import { countTokensCall, serveMessages } from './messages.ts';

const JSON_TYPE = 'application/json';
const INVALID_MODEL = 'The provided model identifier is invalid.';
const END_OF_LIFE =
  'This model version has reached the end of its life. Please refer to the AWS documentation for more details.';

function faultResponse(e: unknown, requestId: string): Response {
  const f =
    e instanceof BedrockFault ? e : new BedrockFault(500, 'InternalServerException', 'Internal server error');
  if (!(e instanceof BedrockFault)) console.error('[emulator] bedrock face error', e);
  return new Response(JSON.stringify({ message: f.message }), {
    status: f.status,
    headers: { 'content-type': JSON_TYPE, 'x-amzn-errortype': f.errorType, 'x-amzn-requestid': requestId },
  });
}

/** The `{modelId}` segment of `/bedrock/model/{modelId}/<action>`, as a Claude model. */
function modelOfPath(raw: Request): ParsedModelId & { id: string } {
  const seg = new URL(raw.url).pathname.split('/');
  const id = seg.at(-2) ?? '';
  try {
    const parsed = parseModelId(id);
    const model = resolveModel(parsed.model);
    if (!model) throw new BedrockFault(400, 'ValidationException', INVALID_MODEL);
    return { ...parsed, model: model.id, id };
  } catch (e) {
    if (e instanceof BedrockFault) throw e;
    throw new BedrockFault(400, 'ValidationException', INVALID_MODEL);
  }
}

/** Bedrock's own body checks: JSON, `anthropic_version` present, no `model` or `stream`. */
function invokeBody(bytes: Uint8Array): Record<string, unknown> {
  let body: unknown;
  try {
    body = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    throw new BedrockFault(
      400,
      'ValidationException',
      'Malformed input request, please reformat your input and try again.',
    );
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new BedrockFault(400, 'ValidationException', 'Malformed input request: expected a JSON object');
  }
  const b = body as Record<string, unknown>;
  if (typeof b.anthropic_version !== 'string') {
    throw new BedrockFault(
      400,
      'ValidationException',
      'Malformed input request: #: required key [anthropic_version] not found, please reformat your input and try again.',
    );
  }
  for (const key of ['model', 'stream']) {
    if (key in b) {
      throw new BedrockFault(
        400,
        'ValidationException',
        `Malformed input request: #: extraneous key [${key}] is not permitted, please reformat your input and try again.`,
      );
    }
  }
  return b;
}

/** The Anthropic request `serveMessages` takes, and the headers it reads (betas, request id). */
function canonical(
  raw: Request,
  body: Record<string, unknown>,
  model: string,
  stream: boolean,
): { body: Record<string, unknown>; req: Request } {
  const { anthropic_version: _v, anthropic_beta, ...rest } = body;
  const headers = new Headers({ 'content-type': JSON_TYPE });
  if (Array.isArray(anthropic_beta) && anthropic_beta.length)
    headers.set('anthropic-beta', anthropic_beta.join(','));
  const rid = raw.headers.get('x-chokepoint-request-id');
  if (rid) headers.set('x-chokepoint-request-id', rid);
  const req = new Request(raw.url, { method: 'POST', headers, signal: raw.signal });
  return { body: { ...rest, model, ...(stream ? { stream: true } : {}) }, req };
}

/** The API a call came in through: InvokeModel's or Converse's body and answers. */
type Api = 'invoke' | 'converse';

/**
 * InvokeModel[WithResponseStream] and Converse[Stream]: verify, read the model from the path,
 * turn the body into a Messages request, serve it (billed to `bedrock`), and frame the answer.
 */
async function call(raw: Request, state: EmulatorState, api: Api, stream: boolean): Promise<Response> {
  const requestId = crypto.randomUUID();
  const started = Date.now();
  try {
    const bytes = new Uint8Array(await raw.arrayBuffer());
    await verifySigV4(raw, bytes, state.aws);
    const { model, geo } = modelOfPath(raw);
    const req =
      api === 'invoke'
        ? canonical(raw, invokeBody(bytes), model, stream)
        : converseCall(raw, bytes, model, stream);
    const answer = await serveMessages(req.body, req.req, state, {
      requestId,
      apiKey: state.aws.accessKeyId,
      provider: 'bedrock',
      regional: billedRegional(model, geo),
    });
    if (answer.status !== 200) {
      const text = await answer.text();
      // The catalogue's retired models: Bedrock answers an end-of-life model this way.
      if (answer.status === 404 && text.includes('"message":"model: ')) {
        throw new BedrockFault(404, 'ResourceNotFoundException', END_OF_LIFE);
      }
      const e = bedrockErrorOf(answer.status, text);
      return new Response(e.body, {
        status: e.status,
        headers: { ...e.headers, 'x-amzn-requestid': requestId },
      });
    }
    if (!stream && api === 'invoke') return jsonAnswer(await answer.text(), requestId, started);
    if (!stream) {
      const converse = anthropicToConverse(JSON.parse(await answer.text()), Date.now() - started);
      return Response.json(converse, { headers: { 'x-amzn-requestid': requestId } });
    }
    const writer = api === 'invoke' ? new BedrockStreamWriter(started) : new ConverseStreamWriter(started);
    return new Response(eventStream(answer.body!, writer), {
      status: 200,
      headers: {
        'content-type': 'application/vnd.amazon.eventstream',
        ...(api === 'invoke' ? { 'x-amzn-bedrock-content-type': JSON_TYPE } : {}),
        'x-amzn-requestid': requestId,
      },
    });
  } catch (e) {
    return faultResponse(e, requestId);
  }
}

/** A Converse body as the Messages request `serveMessages` takes. */
function converseCall(
  raw: Request,
  bytes: Uint8Array,
  model: string,
  stream: boolean,
): { body: Record<string, unknown>; req: Request } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    throw new BedrockFault(
      400,
      'ValidationException',
      'Malformed input request, please reformat your input and try again.',
    );
  }
  try {
    const { body, betas } = converseToAnthropic(parsed, model, stream);
    const { model: _m, stream: _s, ...rest } = body;
    return canonical(raw, { ...rest, ...(betas.length ? { anthropic_beta: betas } : {}) }, model, stream);
  } catch (e) {
    if (e instanceof ConverseError) throw new BedrockFault(400, 'ValidationException', e.message);
    throw e;
  }
}

/** InvokeModel's answer: the message JSON, and its token counts in `x-amzn-bedrock-*` headers. */
function jsonAnswer(text: string, requestId: string, started: number): Response {
  const usage = (JSON.parse(text) as { usage?: Record<string, number | undefined> }).usage ?? {};
  return new Response(text, {
    status: 200,
    headers: {
      'content-type': JSON_TYPE,
      'x-amzn-requestid': requestId,
      'x-amzn-bedrock-invocation-latency': String(Date.now() - started),
      'x-amzn-bedrock-input-token-count': String(usage.input_tokens ?? 0),
      'x-amzn-bedrock-output-token-count': String(usage.output_tokens ?? 0),
      'x-amzn-bedrock-cache-read-input-token-count': String(usage.cache_read_input_tokens ?? 0),
      'x-amzn-bedrock-cache-write-input-token-count': String(usage.cache_creation_input_tokens ?? 0),
    },
  });
}

/**
 * The SSE answer re-framed as event-stream chunks; the final `message_stop` carries Bedrock's
 * `amazon-bedrock-invocationMetrics`. A client that goes away cancels the SSE body (and so is
 * billed for what was generated, as on the Messages face).
 */
function eventStream(
  sse: ReadableStream<Uint8Array>,
  frames: { push(chunk: Uint8Array): Uint8Array; end?(): Uint8Array },
): ReadableStream<Uint8Array> {
  const reader = sse.getReader();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const { done, value } = await reader.read();
      if (done) {
        const rest = frames.end?.();
        if (rest?.length) controller.enqueue(rest);
        controller.close();
        return;
      }
      const out = frames.push(value);
      if (out.length) controller.enqueue(out);
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  });
}

/** `POST /bedrock/model/{id}/count-tokens`: `{input: {invokeModel: {body}}}` → `{inputTokens}`. */
async function countTokens(raw: Request, state: EmulatorState): Promise<Response> {
  const requestId = crypto.randomUUID();
  try {
    const bytes = new Uint8Array(await raw.arrayBuffer());
    await verifySigV4(raw, bytes, state.aws);
    const { model } = modelOfPath(raw);
    let inner: Uint8Array;
    try {
      const b64 = (
        JSON.parse(Buffer.from(bytes).toString('utf8')) as { input?: { invokeModel?: { body?: string } } }
      ).input?.invokeModel?.body;
      if (typeof b64 !== 'string') throw new Error('missing');
      inner = Buffer.from(b64, 'base64');
    } catch {
      throw new BedrockFault(
        400,
        'ValidationException',
        'input.invokeModel.body: required (base64 of an InvokeModel body)',
      );
    }
    const call = canonical(raw, invokeBody(inner), model, false);
    // count_tokens takes the request without the fields that only shape the answer.
    const { max_tokens: _m, ...counted } = call.body;
    const countReq = new Request(raw.url, {
      method: 'POST',
      headers: call.req.headers,
      body: JSON.stringify(counted),
    });
    const { input_tokens } = await countTokensCall(countReq, state);
    return new Response(JSON.stringify({ inputTokens: input_tokens }), {
      headers: { 'content-type': JSON_TYPE, 'x-amzn-requestid': requestId },
    });
  } catch (e) {
    return faultResponse(e, requestId);
  }
}

/** The catalogue's models a client may still call (retired ones are not listed). */
function listedModels(state: EmulatorState): string[] {
  return MODELS.filter((m) => lifecycleOf(m, state.now()) !== 'retired').map((m) => m.id);
}

async function profiles(raw: Request, state: EmulatorState, one: boolean): Promise<Response> {
  const requestId = crypto.randomUUID();
  try {
    const region = await verifySigV4(raw, new Uint8Array(0), state.aws);
    const url = new URL(raw.url);
    const type = url.searchParams.get('type') ?? url.searchParams.get('typeEquals');
    const all = listInferenceProfiles(listedModels(state), region).inferenceProfileSummaries;
    if (one) {
      const id = decodeURIComponent(url.pathname.split('/').at(-1) ?? '');
      const found = all.find((p) => p.inferenceProfileId === id || p.inferenceProfileArn === id);
      if (!found)
        throw new BedrockFault(404, 'ResourceNotFoundException', `Inference profile ${id} not found`);
      return Response.json(found, { headers: { 'x-amzn-requestid': requestId } });
    }
    const list = type === 'APPLICATION' ? [] : all;
    return Response.json({ inferenceProfileSummaries: list }, { headers: { 'x-amzn-requestid': requestId } });
  } catch (e) {
    return faultResponse(e, requestId);
  }
}

/** Registers the Bedrock face's routes on the emulator's app. */
export function bedrockRoutes(app: Hono, state: EmulatorState): void {
  app.post('/bedrock/model/:id/invoke', (c) => call(c.req.raw, state, 'invoke', false));
  app.post('/bedrock/model/:id/invoke-with-response-stream', (c) => call(c.req.raw, state, 'invoke', true));
  app.post('/bedrock/model/:id/converse', (c) => call(c.req.raw, state, 'converse', false));
  app.post('/bedrock/model/:id/converse-stream', (c) => call(c.req.raw, state, 'converse', true));
  app.post('/bedrock/model/:id/count-tokens', (c) => countTokens(c.req.raw, state));
  app.get('/bedrock/inference-profiles', (c) => profiles(c.req.raw, state, false));
  app.get('/bedrock/inference-profiles/:id', (c) => profiles(c.req.raw, state, true));
  app.all('/bedrock/*', (c) =>
    faultResponse(
      new BedrockFault(404, 'UnknownOperationException', `Unknown operation: ${c.req.method} ${c.req.path}`),
      newId('req_011C'),
    ),
  );
}
