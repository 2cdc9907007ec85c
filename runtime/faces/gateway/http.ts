import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { readAll } from '../../../adapters/provider.ts';
import type { ApiKey, KeyRing } from '../../auth/keys.ts';
import type { Services } from '../../compose.ts';
import { checkBody } from '../../gateway/messages.ts';
import { Refusal, unavailable } from '../../gateway/refusal.ts';
import { respondJson, respondRefusal, type Sink } from '../../gateway/sink.ts';
import { TailMemo } from '../../gateway/tail-memo.ts';
import type { Identity } from '../../identity.ts';
import { newId } from '../../ids.ts';
import { Batches } from './batches.ts';
import {
  authenticate,
  identify,
  maxTokensPolicy,
  mayCount,
  parseJson,
  queryOf,
  readLimited,
  responseSink,
} from './common.ts';
import type { FastRequest, FastResponse, FastRoute } from './fast-h1.ts';
import { listModels, listOpenAIModels } from './models.ts';
import { OPENAI_PATHS, openaiCall } from './openai.ts';

/**
 * The Anthropic-compatible face: every `/v1/*` path. `POST /v1/messages` and its count_tokens
 * take the call path; `GET /v1/models` lists what the key may call; Message Batches are admitted
 * as a whole at the batch price; any other `/v1` path is a JSON 404 in the Anthropic envelope
 * (never the inbox). A plain node:http handler — and, for POST /v1/messages and its count_tokens,
 * a fast-path one (`fast`, runtime/faces/gateway/fast-h1.ts): bytes in, identity and enforcement,
 * bytes out.
 * Bad input is answered before anything is reserved, with the field named.
 */
export function gatewayHandler(rt: Services, keys: KeyRing) {
  const batches = new Batches(rt);
  // A stream's unchanged body tail (Claude Code's tools and system prompt) is not parsed again.
  const tails = new TailMemo();
  const messages: Messages = (req, raw, key, identity, sink, requestId) =>
    callModel(rt, tails, req, raw, key, identity, sink, requestId);
  const handle = async (req: IncomingMessage, res: ServerResponse, path: string): Promise<void> => {
    const requestId = newId('req');
    const sink = responseSink(req, res);
    try {
      const known = authenticate(keys, req);
      const key = known instanceof Promise ? await known : known;
      const identity = identify(key, req);
      const method = req.method ?? 'GET';
      if (method === 'POST' && path === '/v1/messages') {
        const raw = await readLimited(req, rt.config.server.maxBodyBytes);
        return await messages(req, raw, key, identity, sink, requestId);
      }
      if (method === 'POST' && path === '/v1/messages/count_tokens') {
        const raw = await readLimited(req, rt.config.server.maxBodyBytes);
        return await countTokens(rt, identity, parseJson(raw), raw, req, sink, requestId);
      }
      const openai = method === 'POST' ? OPENAI_PATHS[path] : undefined;
      if (openai) {
        const raw = await readLimited(req, rt.config.server.maxBodyBytes);
        return await openaiCall(rt, key, identity, openai, raw, req, sink, requestId);
      }
      if (method === 'GET' && (path === '/v1/models' || path.startsWith('/v1/models/'))) {
        req.resume();
        // The Anthropic SDK sends anthropic-version; the OpenAI SDK does not.
        const list = req.headers['anthropic-version']
          ? listModels(rt, identity, path, req.url)
          : listOpenAIModels(rt, identity, path);
        return respondJson(sink, 200, list, requestId);
      }
      if (path === '/v1/messages/batches' || path.startsWith('/v1/messages/batches/')) {
        return await batches.handle({
          identity,
          requestId,
          method,
          path,
          req,
          sink,
          readBody: () => readLimited(req, rt.config.server.maxBodyBytes),
        });
      }
      req.resume();
      throw new Refusal(
        'not_found',
        `not_found: no route ${method} ${path} on this gateway (it serves /v1/messages, /v1/messages/count_tokens, /v1/models, /v1/messages/batches, /v1/chat/completions, /v1/responses and /v1/embeddings)`,
      );
    } catch (err) {
      gatewayFailed(rt, err, requestId, sink, res.headersSent, () => res.end());
    }
  };
  return Object.assign(handle, { fast: fastRoute(rt, keys, messages) });
}

type Messages = (
  req: { url?: string; headers: IncomingHttpHeaders },
  raw: Buffer,
  key: ApiKey,
  identity: Identity,
  sink: Sink,
  requestId: string,
) => Promise<void>;

/** POST /v1/messages: the call path, from a request read whole (either server's). */
async function callModel(
  rt: Services,
  tails: TailMemo,
  ...[req, raw, key, identity, sink, requestId]: Parameters<Messages>
): Promise<void> {
  const streamKey = `${key.id}:${identity.workflow ?? ''}:${identity.session ?? ''}`;
  const body = checkBody(tails.parse(streamKey, raw, parseJson));
  await rt.calls.model(
    {
      identity,
      requestId,
      body,
      raw,
      query: queryOf(req.url),
      headers: req.headers,
      streamKey,
      driftPolicy: key.driftPolicy,
      maxTokens: maxTokensPolicy(rt, key, identity),
      ...(key.sessionTimeBox ? { gate: () => rt.sessions.check(key, identity) } : {}),
    },
    sink,
  );
}

/** A gateway call that failed: its refusal answered (or the answer cut short) and counted. */
function gatewayFailed(
  rt: Services,
  err: unknown,
  requestId: string,
  sink: Sink,
  headersSent: boolean,
  end: () => void,
): void {
  if (!(err instanceof Refusal)) rt.log.error('gateway failed', { error: err, requestId });
  const refusal = err instanceof Refusal ? err : unavailable('internal error');
  rt.calls.rejected(requestId, refusal.code, refusal.status);
  if (!headersSent) respondRefusal(sink, refusal, requestId);
  else end();
}

/**
 * The requests the fast HTTP/1.1 path (runtime/faces/gateway/fast-h1.ts) serves, the body already
 * read: POST /v1/messages, and its count_tokens — so that a client's connection stays on the path
 * (Claude Code counts between its calls) and is not handed to node:http for the rest of its life.
 */
type FastCall = (
  req: FastRequest,
  key: ApiKey,
  identity: Identity,
  res: FastResponse,
  requestId: string,
) => Promise<void>;

function fastRoute(rt: Services, keys: KeyRing, messages: Messages): FastRoute {
  const serve =
    (fn: FastCall) =>
    async (req: FastRequest, res: FastResponse): Promise<void> => {
      const requestId = newId('req');
      try {
        const known = authenticate(keys, req);
        const key = known instanceof Promise ? await known : known;
        await fn(req, key, identify(key, req), res, requestId);
      } catch (err) {
        gatewayFailed(rt, err, requestId, res, res.headersSent, () => res.end());
      }
    };
  const fastMessages = serve((req, key, identity, res, requestId) =>
    messages(req, req.body, key, identity, res, requestId),
  );
  const fastCount = serve((req, _key, identity, res, requestId) =>
    countTokens(rt, identity, parseJson(req.body), req.body, req, res, requestId),
  );
  return (method, path) =>
    method !== 'POST'
      ? undefined
      : path === '/v1/messages'
        ? fastMessages
        : path === '/v1/messages/count_tokens'
          ? fastCount
          : undefined;
}

async function countTokens(
  rt: Services,
  identity: Identity,
  json: unknown,
  raw: Buffer,
  req: { url?: string; headers: IncomingHttpHeaders },
  sink: Sink,
  requestId: string,
): Promise<void> {
  const body = checkBody(json, false);
  await mayCount(rt, identity, body.model);
  const provider = rt.provider;
  if (!provider.passthrough) {
    throw new Refusal('not_found', `not_found: the ${provider.kind} provider has no count_tokens`);
  }
  const res = await provider.passthrough(
    'POST',
    `v1/messages/count_tokens${queryOf(req.url)}`,
    raw,
    req.headers,
  );
  const buf = await readAll(res.body);
  sink.head(res.status, { 'content-type': 'application/json', 'request-id': requestId });
  sink.chunk(buf);
  sink.end();
}
