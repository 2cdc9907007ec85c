import type { IncomingMessage, ServerResponse } from 'node:http';
import { toGoogleError } from '../../../adapters/vertex/errors.ts';
import {
  COUNT_TOKENS_MODEL,
  parseVertexPath,
  toCanonical,
  VertexPathError,
} from '../../../adapters/vertex/models.ts';
import type { KeyRing } from '../../auth/keys.ts';
import type { Services } from '../../compose.ts';
import { checkBody } from '../../gateway/messages.ts';
import { invalidRequest, Refusal, unavailable } from '../../gateway/refusal.ts';
import { respondJson, respondRefusal, type Sink } from '../../gateway/sink.ts';
import type { Identity } from '../../identity.ts';
import { newId } from '../../ids.ts';
import {
  authenticate,
  identify,
  maxTokensPolicy,
  mayCount,
  parseJson,
  readLimited,
  responseSink,
} from './common.ts';
import { reframed, type Whole } from './reframe.ts';

/**
 * The Google Vertex AI face: Claude on Vertex in Vertex's own wire format, so a client only
 * changes its base URL. `POST /vertex/[v1/]projects/{p}/locations/{l}/publishers/anthropic/models/{m}:rawPredict`
 * (and `:streamRawPredict`, and `count-tokens:rawPredict`): the model comes from the URL, the
 * location is the call's geo (a regional one is priced 1.1×), the body is a Messages body with
 * `anthropic_version`. The call takes the one call path, to the Vertex provider when one is
 * configured (routing may name others); answers are Anthropic's (Vertex's own format), errors and
 * refusals in Google's envelope with our `chokepoint` object. Callers authenticate with a
 * Chokepoint key as a Bearer token (Claude Code: `ANTHROPIC_AUTH_TOKEN`).
 */
export function vertexHandler(rt: Services, keys: KeyRing) {
  return async (req: IncomingMessage, res: ServerResponse, path: string): Promise<void> => {
    const requestId = newId('req');
    const sink = googleErrors(responseSink(req, res));
    try {
      const known = authenticate(keys, req);
      const key = known instanceof Promise ? await known : known;
      const identity = identify(key, req);
      const target = vertexTarget(path, req.method);
      const raw = await readLimited(req, rt.config.server.maxBodyBytes);
      const json = parseJson(raw);
      if (target.model === COUNT_TOKENS_MODEL) {
        return await countTokens(rt, identity, json, req, sink, requestId);
      }
      const body = checkBody(
        canonical(json, toCanonical(target.model), target.method === 'streamRawPredict'),
      );
      await rt.calls.model(
        {
          identity,
          requestId,
          body,
          headers: req.headers,
          streamKey: `${key.id}:${identity.workflow ?? ''}:${identity.session ?? ''}`,
          driftPolicy: key.driftPolicy,
          maxTokens: maxTokensPolicy(rt, key, identity),
          ...(key.sessionTimeBox ? { gate: () => rt.sessions.check(key, identity) } : {}),
          prefer: 'vertex',
          geo: target.location,
        },
        sink,
      );
    } catch (err) {
      if (!(err instanceof Refusal)) rt.log.error('vertex face failed', { error: err, requestId });
      const refusal = err instanceof Refusal ? err : unavailable('internal error');
      rt.calls.rejected(requestId, refusal.code, refusal.status);
      if (!res.headersSent) respondRefusal(sink, refusal, requestId);
      else res.end();
    }
  };
}

function vertexTarget(path: string, method: string | undefined) {
  if (method !== 'POST') {
    throw new Refusal(
      'not_found',
      `not_found: no route ${method} ${path} on the Vertex face (it serves POST …:rawPredict and :streamRawPredict)`,
    );
  }
  try {
    return parseVertexPath(path);
  } catch (err) {
    if (err instanceof VertexPathError) {
      throw new Refusal('not_found', `not_found: ${path} is not a Vertex Claude path (${err.message})`, {
        field: err.part,
      });
    }
    throw err;
  }
}

/**
 * The canonical Messages body of a Vertex body: the model from the URL, `stream` from the method
 * unless the body says, without `anthropic_version` (the Vertex provider puts it back). A body
 * that names a model of its own is refused as Vertex refuses it.
 */
export function canonical(json: unknown, model: string, streamed: boolean): unknown {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) return json;
  const { anthropic_version: _v, ...rest } = json as Record<string, unknown>;
  if (rest.model !== undefined) {
    throw invalidRequest('model', 'not allowed in the body on Vertex: the model is named in the URL');
  }
  return { ...rest, model, stream: typeof rest.stream === 'boolean' ? rest.stream : streamed };
}

/** Vertex answers errors in Google's envelope; the Anthropic type rides in an ErrorInfo detail. */
function googleErrors(inner: Sink): Sink {
  return reframed(inner, {
    error: (a: Whole) => ({
      status: a.status,
      headers: a.headers,
      body: Buffer.from(JSON.stringify(toGoogleError(a.status, a.body))),
    }),
  });
}

async function countTokens(
  rt: Services,
  identity: Identity,
  json: unknown,
  req: IncomingMessage,
  sink: Sink,
  requestId: string,
): Promise<void> {
  const body = checkBody(json, false);
  const model = toCanonical(body.model);
  await mayCount(rt, identity, model);
  const name = rt.providers.ofKind('vertex') ?? rt.providers.defaultName;
  const n = await rt.providers
    .get(name)!
    .countTokens({ ...(body as Record<string, unknown>), model }, req.headers)
    .catch(() => undefined);
  if (n === undefined) throw unavailable(`the ${name} provider could not count the tokens`);
  respondJson(sink, 200, { input_tokens: n }, requestId);
}
