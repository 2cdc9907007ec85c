import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import {
  anthropicToConverse,
  ConverseError,
  ConverseStreamWriter,
  converseToAnthropic,
} from '../../../adapters/bedrock/converse.ts';
import { bedrockErrorOf } from '../../../adapters/bedrock/errors.ts';
import { BedrockStreamWriter } from '../../../adapters/bedrock/eventstream.ts';
import { ModelIdError, parseModelId } from '../../../adapters/bedrock/models.ts';
import { listInferenceProfiles } from '../../../adapters/bedrock/profiles.ts';
import type { KeyRing } from '../../auth/keys.ts';
import type { Services } from '../../compose.ts';
import { checkBody } from '../../gateway/messages.ts';
import { invalidRequest, Refusal, unavailable } from '../../gateway/refusal.ts';
import { respondJson, respondRefusal, type Sink } from '../../gateway/sink.ts';
import { newId } from '../../ids.ts';
import { authenticate, identify, maxTokensPolicy, parseJson, readLimited, responseSink } from './common.ts';
import { retired } from './models.ts';
import { reframed, type StreamCodec } from './reframe.ts';

const ACTIONS = ['invoke', 'invoke-with-response-stream', 'converse', 'converse-stream'] as const;
type Action = (typeof ACTIONS)[number];

/**
 * The Amazon Bedrock Runtime face: Claude on Bedrock in Bedrock's own wire format, so a client
 * only changes its endpoint. `POST /bedrock/model/{modelId}/invoke` (and
 * `invoke-with-response-stream`, answered in AWS event-stream framing; `converse` and
 * `converse-stream`), and the `GET /bedrock/inference-profiles` listing Claude Code asks for
 * first. The model id names the model and its geography (`us.anthropic.claude-opus-5-5`: a
 * regional profile, priced 1.1×); the call takes the one call path, to the Bedrock provider
 * when one is configured (routing may name others). Callers authenticate with a Chokepoint key
 * as a Bearer token (Claude Code: `ANTHROPIC_AUTH_TOKEN`; the AWS SDK: a Bedrock API key,
 * `AWS_BEARER_TOKEN_BEDROCK`). Errors are Bedrock's (`x-amzn-ErrorType`, `{message}`), a budget
 * refusal a 400 ServiceQuotaExceededException that neither AWS client retries.
 */
export function bedrockHandler(rt: Services, keys: KeyRing) {
  return async (req: IncomingMessage, res: ServerResponse, path: string): Promise<void> => {
    const requestId = newId('req');
    const http = responseSink(req, res);
    const sink = bedrockErrors(http);
    try {
      if (req.method === 'GET' && path === '/bedrock/inference-profiles') {
        // Public list of what exists (Claude Code asks before it has any credential to send).
        req.resume();
        return respondJson(http, 200, profiles(rt), requestId);
      }
      const known = authenticate(keys, req);
      const key = known instanceof Promise ? await known : known;
      const identity = identify(key, req);
      const { model, geo, action } = target(path, req.method);
      const raw = await readLimited(req, rt.config.server.maxBodyBytes);
      const started = Date.now();
      const { body, headers } = canonical(parseJson(raw), model, action, req.headers);
      await rt.calls.model(
        {
          identity,
          requestId,
          body: checkBody(body),
          headers,
          streamKey: `${key.id}:${identity.workflow ?? ''}:${identity.session ?? ''}`,
          driftPolicy: key.driftPolicy,
          maxTokens: maxTokensPolicy(rt, key, identity),
          ...(key.sessionTimeBox ? { gate: () => rt.sessions.check(key, identity) } : {}),
          prefer: 'bedrock',
          ...(geo ? { geo } : {}),
        },
        action.startsWith('converse') ? converseAnswers(sink, started) : invokeAnswers(sink, started),
      );
    } catch (err) {
      if (!(err instanceof Refusal)) rt.log.error('bedrock face failed', { error: err, requestId });
      const refusal = err instanceof Refusal ? err : unavailable('internal error');
      rt.calls.rejected(requestId, refusal.code, refusal.status);
      if (!res.headersSent) respondRefusal(sink, refusal, requestId);
      else res.end();
    }
  };
}

/** `/bedrock/model/{modelId}/{action}` → the canonical model, its geography and the action. */
function target(path: string, method: string | undefined): { model: string; geo?: string; action: Action } {
  const m = /^\/bedrock\/model\/([^/]+)\/([a-z-]+)$/.exec(path);
  const action = m?.[2] as Action | undefined;
  if (method !== 'POST' || !m || !action || !ACTIONS.includes(action)) {
    throw new Refusal(
      'not_found',
      `not_found: no route ${method} ${path} on the Bedrock face (it serves POST /bedrock/model/{modelId}/${ACTIONS.join('|')} and GET /bedrock/inference-profiles)`,
    );
  }
  try {
    const parsed = parseModelId(decodeURIComponent(m[1]!));
    return { model: parsed.model, ...(parsed.geo ? { geo: parsed.geo } : {}), action };
  } catch (err) {
    if (err instanceof ModelIdError || err instanceof URIError) {
      throw new Refusal('not_found', `not_found: ${(err as Error).message}`, { field: 'modelId' });
    }
    throw err;
  }
}

/**
 * The canonical Messages body of a Bedrock body: the model from the URL, `stream` from the
 * action, without `anthropic_version`; the body's `anthropic_beta` list joins the
 * `anthropic-beta` header (the Bedrock provider moves it back).
 */
function canonical(
  json: unknown,
  model: string,
  action: Action,
  headers: IncomingHttpHeaders,
): { body: unknown; headers: IncomingHttpHeaders } {
  const stream = action.endsWith('stream');
  let body: Record<string, unknown>;
  let betas: string[] = [];
  if (action.startsWith('converse')) {
    try {
      const c = converseToAnthropic(json, model, stream);
      body = c.body;
      betas = c.betas;
    } catch (err) {
      if (err instanceof ConverseError) throw invalidRequest('body', err.message);
      throw err;
    }
  } else {
    if (json === null || typeof json !== 'object' || Array.isArray(json)) {
      throw invalidRequest('(body)', 'expected a JSON object');
    }
    const { anthropic_version: _v, anthropic_beta, ...rest } = json as Record<string, unknown>;
    if (anthropic_beta !== undefined) {
      if (!Array.isArray(anthropic_beta) || !anthropic_beta.every((b) => typeof b === 'string')) {
        throw invalidRequest('anthropic_beta', 'expected an array of beta names');
      }
      betas = anthropic_beta as string[];
    }
    body = { ...rest, model, stream };
  }
  const given = headers['anthropic-beta'];
  const all = [...new Set([...(given ? String(given).split(',') : []), ...betas].map((b) => b.trim()))];
  return {
    body,
    headers: all.length ? { ...headers, 'anthropic-beta': all.filter(Boolean).join(',') } : headers,
  };
}

/** Errors and refusals as Bedrock answers them: the status AWS uses, `x-amzn-ErrorType`, `{message}`. */
function bedrockErrors(inner: Sink): Sink {
  return reframed(inner, {
    error: (a) => {
      const e = bedrockErrorOf(a.status, a.body);
      const requestId = a.headers['request-id'];
      // A throttle (a rate limit's refusal) keeps when to retry, and whether to.
      const retry =
        e.status === 429
          ? Object.fromEntries(
              ['retry-after', 'x-should-retry'].filter((h) => a.headers[h]).map((h) => [h, a.headers[h]!]),
            )
          : {};
      return {
        status: e.status,
        headers: { ...e.headers, ...retry, ...(requestId ? { 'x-amzn-requestid': requestId } : {}) },
        body: Buffer.from(e.body),
      };
    },
  });
}

const EVENT_STREAM = 'application/vnd.amazon.eventstream';

/** InvokeModel's answer is the Messages JSON itself; a stream is event-stream framed. */
function invokeAnswers(sink: Sink, started: number): Sink {
  return reframed(sink, {
    error: (a) => a,
    stream: (): StreamCodec => {
      const w = new BedrockStreamWriter(started);
      return {
        contentType: EVENT_STREAM,
        push: (c) => Buffer.from(w.push(c)),
        end: () => Buffer.from(w.end()),
      };
    },
  });
}

/** Converse answers in its own shape, ConverseStream in its own events. */
function converseAnswers(sink: Sink, started: number): Sink {
  return reframed(sink, {
    error: (a) => a,
    json: (a) => {
      const message = JSON.parse(a.body.toString('utf8')) as Record<string, unknown>;
      const body = Buffer.from(JSON.stringify(anthropicToConverse(message, Date.now() - started)));
      return { status: a.status, headers: { ...a.headers, 'content-type': 'application/json' }, body };
    },
    stream: (): StreamCodec => {
      const w = new ConverseStreamWriter(started);
      return { contentType: EVENT_STREAM, push: (c) => Buffer.from(w.push(c)), end: () => Buffer.alloc(0) };
    },
  });
}

/** The Claude models the price table knows, as Bedrock's system-defined inference profiles. */
function profiles(rt: Services) {
  const now = rt.now();
  const models = rt.prices
    .current(now)
    .filter((e) => e.provider === undefined && !retired(e, now))
    .map((e) => e.model);
  const name = rt.providers.ofKind('bedrock');
  const region = name ? (rt.config.providers[name]?.options.region as string | undefined) : undefined;
  return listInferenceProfiles(models, region ?? 'us-east-1');
}
